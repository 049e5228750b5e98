"""Waiting for a process to be gone, on real processes."""

import os
import signal
import subprocess
import time

from pytest_ovnlb.engine.procs import alive, kill_all, wait_gone


def test_wait_gone_tells_a_live_process_from_one_that_exited():
    proc = subprocess.Popen(["sleep", "30"])
    try:
        assert not wait_gone(proc.pid, 0.2)  # still there after the timeout
        os.kill(proc.pid, signal.SIGKILL)
        started = time.monotonic()
        # an unreaped zombie child is gone too: the event, not the timeout
        assert wait_gone(proc.pid, 10) and time.monotonic() - started < 5
        assert not alive(proc.pid)
    finally:
        proc.kill()
        proc.wait()
    assert wait_gone(proc.pid, 0.2)  # reaped: no such process


def test_kill_all_leaves_no_survivor_and_reaps_its_children():
    procs = [subprocess.Popen(["sleep", "30"]) for _ in range(3)]
    assert kill_all({p.pid for p in procs}) == set()
    for p in procs:
        # kill_all collected each exit status: the child is no longer ours
        try:
            os.waitpid(p.pid, os.WNOHANG)
            raise AssertionError(f"{p.pid} was not reaped")
        except ChildProcessError:
            pass
        p.returncode = -9  # for Popen's own bookkeeping
