"""Processes and network namespaces, by the kernel's own bookkeeping.

A process belongs to a lab if it lives in one of the lab's namespaces, or if
a pidfile in the lab's run directory names it and its command line mentions
that directory.  Nothing else is ever signalled.
"""

from __future__ import annotations

import ctypes
import os
import select
import signal
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from pyroute2 import netns

from pytest_ovnlb.errors import LabError

NETNS_DIR = Path("/run/netns")
CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def require_root(what: str) -> None:
    if os.geteuid() != 0:
        raise LabError(f"{what} needs root; run as root or with sudo")


def start_time(pid: int) -> int | None:
    """Kernel start time of `pid` (clock ticks since boot): tells a process
    from a later one that reused its pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":  # a zombie is as good as dead
        return None
    return int(fields[19])


def alive(pid: int | None, started: int | None = None) -> bool:
    if not pid:
        return False
    now = start_time(pid)
    return now is not None and (started is None or now == started)


def pids_in_netns(names: list[str]) -> set[int]:
    inodes = set()
    for name in names:
        try:
            inodes.add(os.stat(NETNS_DIR / name).st_ino)
        except OSError:
            pass
    if not inodes:
        return set()
    pids = set()
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if os.stat(f"/proc/{entry.name}/ns/net").st_ino in inodes:
                    pids.add(int(entry.name))
            except OSError:
                pass
    pids.discard(os.getpid())
    return pids


def pids_from_pidfiles(rundir: Path) -> set[int]:
    pids = set()
    for pidfile in rundir.rglob("*.pid"):
        try:
            pid = int(pidfile.read_text().split()[0])
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError, IndexError):
            continue
        if str(rundir).encode() in cmdline:
            pids.add(pid)
    return pids


def become_subreaper() -> None:
    """Adopt the daemons this process starts (they detach from their parent)
    so that their exit status is collected here when the lab goes down,
    rather than left as zombies for init."""
    PR_SET_CHILD_SUBREAPER = 36
    _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _gone(pid: int) -> bool:
    """Dead and, if it is our child, collected.  A killed multi-threaded
    daemon shows as a zombie before its last thread has exited; only
    waitpid() tells when it is really over."""
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        return reaped == pid
    except ChildProcessError:  # not ours: its parent (or init) collects it
        return not alive(pid)


def wait_gone(pid: int, timeout: float) -> bool:
    """Wait until `pid` has exited, every thread of it (its pidfd turns
    readable then); False if it outlives `timeout`."""
    try:
        fd = os.pidfd_open(pid)
    except OSError:  # gone already (ESRCH), or a kernel without pidfds
        return not alive(pid)
    try:
        return bool(select.select([fd], [], [], timeout)[0])
    finally:
        os.close(fd)


def kill_all(pids: set[int], timeout: float = 3.0) -> set[int]:
    """SIGKILL every pid and wait until they are gone; returns survivors."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    for pid in pids:
        wait_gone(pid, max(0.0, deadline - time.monotonic()))
    return {p for p in pids if not _gone(p)}


def create_netns(names: list[str]) -> None:
    """Create named network namespaces, as `ip netns add` does, without
    forking (pyroute2's netns.create() forks this multi-threaded process):
    a short-lived thread unshares into each new namespace in turn and
    pyroute2 bind-mounts that thread's namespace under its name."""
    errors: list[BaseException] = []

    def work():
        task = f"self/task/{threading.get_native_id()}"
        try:
            for name in names:
                if _libc.unshare(CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"cannot create namespace {name}")
                netns.attach(name, task)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=work, name="create-netns")
    thread.start()
    thread.join()
    if errors:
        raise LabError(f"cannot create network namespaces: {errors[0]}")


@contextmanager
def in_netns(name: str):
    """Run the body with this thread inside namespace `name` (a name under
    /run/netns, or the absolute path of a namespace file such as
    /proc/PID/ns/net).  Sockets made here stay in that namespace after the
    thread returns; other threads are not affected (setns on CLONE_NEWNET is
    per thread)."""
    home = os.open(f"/proc/self/task/{threading.get_native_id()}/ns/net", os.O_RDONLY)
    target = os.open(name if os.path.isabs(name) else NETNS_DIR / name, os.O_RDONLY)
    try:
        if _libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"cannot enter namespace {name}")
        try:
            yield
        finally:
            if _libc.setns(home, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "cannot return to the original namespace")
    finally:
        os.close(target)
        os.close(home)


class _Held:
    """Signal handler that records signals while held, then forwards them."""

    def __init__(self):
        self.held = True
        self.received: list[int] = []
        self.saved: dict[int, object] = {}

    def __call__(self, signum, frame):
        if self.held:
            self.received.append(signum)
        else:
            _dispatch(self.saved.get(signum), signum)


def _dispatch(handler, signum: int) -> None:
    if callable(handler):
        handler(signum, None)
    elif handler == signal.SIG_DFL or handler is None:
        signal.raise_signal(signum)


@contextmanager
def deferred_interrupts():
    """Hold SIGINT and SIGTERM until the block is done, then act on them as
    usual (Ctrl-C raises KeyboardInterrupt there).  For short steps that must
    not be cut in half: starting worker threads (one interrupted while
    starting is never joined, and goes on starting daemons while the cleanup
    runs) and calls into libraries that do not survive an exception at an
    arbitrary point.  Outside the main thread it does nothing (signal
    handlers only run in the main thread)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    held = _Held()
    try:
        for signum in (signal.SIGINT, signal.SIGTERM):
            held.saved[signum] = signal.signal(signum, held)
        yield
    finally:
        held.held = False  # from here on a signal goes straight to its handler
        for signum, handler in held.saved.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)
        for signum in dict.fromkeys(held.received):
            _dispatch(held.saved[signum], signum)


@contextmanager
def sigterm_as_interrupt():
    """SIGTERM unwinds like Ctrl-C while the block runs, so cleanup runs."""
    def handler(signum, frame):
        raise KeyboardInterrupt
    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
