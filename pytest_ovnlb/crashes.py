"""Lab daemons that die while a lab is in use: what is known of each death
(how it ended, its last log lines, its core), a backtrace from the core,
and the lab's repair, so that one crash costs one test its verdict and not
the rest of the run."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from pytest_ovnlb.backends.base import program_of
from pytest_ovnlb.errors import LabError
from pytest_ovnlb.model.versions import Bug, known_bugs

TAIL_LINES = 5
CRASHED = re.compile(r"\((SIGSEGV|SIGABRT|SIGBUS|SIGILL|SIGFPE)\)")
GDB_TIMEOUT = 120


@dataclass
class Crash:
    key: str  # "<node>/<daemon>", as in Lab.logs()
    pid: int
    how: str  # "killed by signal 11 (SIGSEGV), core dumped"
    log_tail: list[str] = field(default_factory=list)
    core: Path | None = None  # where the daemon left it; moved into the evidence
    program: tuple[str, str | None] | None = None  # binary, root filesystem
    known: list[Bug] = field(default_factory=list)  # bugs of its version that crash it

    @property
    def summary(self) -> str:
        return f"{self.key} (pid {self.pid}) {self.how}"

    def describe(self) -> str:
        """The summary, then the daemon's last log lines, indented, then the
        known bugs of its version that can explain it."""
        return "\n".join([self.summary] + [f"    {line}" for line in self.log_tail]
                         + [f"  a known bug of this version can explain it: {b.name}: "
                            f"{b.what} (fixed by {b.fix})" for b in self.known])


def tail(path: str, lines: int = TAIL_LINES) -> list[str]:
    try:
        with open(path, "rb") as f:
            f.seek(max(0, f.seek(0, 2) - 8192))
            return f.read().decode(errors="replace").splitlines()[-lines:]
    except OSError:
        return []


def backtrace(program: str, core: Path, root: str | None) -> str:
    """Every thread's stack from `core`, as gdb reads it (its own text when
    gdb is missing or fails: the core itself is kept either way)."""
    gdb = shutil.which("gdb")
    if gdb is None:
        return "# gdb is not installed here: no backtrace (the core is beside this file)\n"
    argv = [gdb, "-batch", "-nx", "-ex", "set pagination off"]
    if root:
        argv += ["-ex", f"set sysroot {root}"]
    argv += ["-ex", "info threads", "-ex", "thread apply all bt", program, str(core)]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=GDB_TIMEOUT)
    except subprocess.TimeoutExpired:
        return f"# gdb gave no backtrace within {GDB_TIMEOUT} s\n"
    return f"# {' '.join(argv)}\n{done.stdout}{done.stderr}"


class Watchdog:
    """A lab's daemons, compared with how they were at the last look.

    `check()` names the daemons that died since; `repair()` starts them
    again and waits until every chassis follows the Northbound DB.  A lab
    that cannot be repaired is `broken`: one line naming the first crash,
    for every later test to fail with at once."""

    def __init__(self, lab):
        self.lab = lab
        self.pids = lab.daemon_pids()
        self.seen = len(lab.restarted)  # the lab's deliberate restarts accounted for
        self.crashes: list[Crash] = []  # every one seen
        self.pending: list[Crash] = []  # not repaired yet
        self.broken: str | None = None

    def check(self) -> list[Crash]:
        # daemons the lab restarted on purpose: their new pids are the ones to watch
        self.pids.update(self.lab.restarted[self.seen:])
        self.seen = len(self.lab.restarted)
        now = self.lab.daemon_pids()
        logs = self.lab.backend.log_files()
        new = []
        for key, pid in self.pids.items():
            if pid and now.get(key) != pid and all(c.key != key for c in self.pending):
                backend, program = self.lab.backend, program_of(key)
                how = backend.daemon_exit(key, pid)
                versions = self.lab.versions
                version = (versions.daemons[key].version if key in versions.daemons  # its own
                           else versions.ovn if program.startswith("ovn-") else versions.ovs)
                # a bug explains a crash, not a daemon someone killed or stopped
                bugs = known_bugs(program, version) if CRASHED.search(how) else []
                new.append(Crash(key, pid, how, tail(logs[key]) if key in logs else [],
                                 backend.core_file(key), backend.program(key), bugs))
        self.crashes += new
        self.pending += new
        return new

    def repair(self, timeout: float = 30.0) -> None:
        """Start the dead daemons again; on failure the lab is `broken`."""
        if not self.pending or self.broken:
            return
        first = self.crashes[0]
        try:
            self.lab.backend.restart([c.key for c in self.pending])
            self.lab.sync(timeout)
        except Exception as exc:  # whatever it is, later tests get this one line
            why = str(exc) if isinstance(exc, LabError) else f"{type(exc).__name__}: {exc}"
            self.broken = (f"the lab could not be repaired after {first.summary} "
                           f"(the first daemon to die in this run): {why}")
            return
        self.pending.clear()
        self.pids = self.lab.daemon_pids()
