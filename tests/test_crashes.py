"""A lab daemon that crashes during a run fails the test during which it
died (naming it, its signal and its last log lines; its core and a
backtrace kept with the evidence), the lab is repaired, and the tests
after it get verdicts of their own.  A lab that cannot be repaired fails
every later test at once with one line naming the first crash."""

import json
import re
import subprocess

import pytest

from pytest_ovnlb.backends.base import program_of
from pytest_ovnlb.crashes import backtrace
from pytest_ovnlb.engine import install, records
from pytest_ovnlb.model.versions import known_bugs

pytestmark = pytest.mark.lab

CRASH_TESTS = """
import os, signal, pytest
from pytest_ovnlb.engine.procs import wait_gone

def killed(lab, key, sig):
    pid = lab.daemon_pids()[key]
    os.kill(pid, sig)
    assert wait_gone(pid, 10)  # dies during the test, not after it

@pytest.mark.switch
@pytest.mark.ipv4
def test_1_before(ovn_lbs, ovn_hub, placement):
    lb = ovn_lbs(ovn_hub.servers(2))
    assert all(r.ok for r in ovn_hub.connect("vm3", lb.vip, lb.port, 4))

@pytest.mark.switch
@pytest.mark.ipv4
def test_2_crash(ovn_lab, ovn_lbs, placement):
    killed(ovn_lab, "VICTIM", signal.SIGSEGV)

@pytest.mark.switch
@pytest.mark.ipv4
@pytest.mark.parametrize("round", [1, 2])
def test_3_after(ovn_lab, ovn_lbs, ovn_hub, placement, round):
    assert all(ovn_lab.daemon_pids().values()), ovn_lab.daemon_pids()
    # a Northbound change every chassis must install, then traffic through it
    lb = ovn_lbs(ovn_hub.servers(2))
    results = ovn_hub.connect("vm3", lb.vip, lb.port, 8)
    assert all(r.ok for r in results), results
"""


def _run(pytester, victim: str, *args: str):
    pytester.makepyfile(test_crash=CRASH_TESTS.replace("VICTIM", victim))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-v", *args)
    labs = set(re.findall(r"^lab (pytest\d+):", result.stdout.str(), re.M))
    assert labs and not labs & {r.name for r in records.all_records()}, "a lab was left behind"
    return result


@pytest.mark.parametrize("victim", ["ubuntu2/ovn-controller", "ubuntu1/ovs-vswitchd",
                                    "central/sb", "central/northd"])
def test_segfault_fails_one_test_and_the_lab_is_repaired(pytester, victim):
    report = pytester.path / "report.json"
    result = _run(pytester, victim, f"--ovnlb-report={report}")
    out = result.stdout.str()
    result.assert_outcomes(passed=3, failed=1)
    assert re.search(r"test_2_crash\S* FAILED", out), out
    result.stdout.fnmatch_lines([
        f"*lab daemon died during the test: {victim} (pid *) killed by signal 11 "
        "(SIGSEGV), core dumped*"])
    # its last log lines follow, indented; then the known bugs of this
    # version that can crash this daemon, if any
    section = out[out.index("lab daemon died during the test"):]
    assert re.search(r"\n    \S.*\|", section), section
    found = install.find()
    program = program_of(victim)
    bugs = known_bugs(program, found.ovn_version if program.startswith("ovn-")
                      else found.ovs_version)
    for bug in bugs:
        assert f"a known bug of this version can explain it: {bug.name}: " in section
    assert bugs or "a known bug" not in section

    folder = next((pytester.path / "ovnlb-evidence").iterdir()) / \
        "test_crash.py__test_2_crash[switch-ipv4]"
    crash = folder / "crashes" / victim.replace("/", "_")
    cores = list(crash.glob("core*"))
    assert len(cores) == 1 and cores[0].stat().st_size > 0, list(crash.iterdir())
    trace = (crash / "backtrace.txt").read_text()
    assert re.search(r"^Thread \d+ .*\n#0 ", trace, re.M), trace[-2000:]
    assert victim in (folder / "README.txt").read_text()

    result.stdout.fnmatch_lines(["ovnlb: 1 lab daemon crash in this run:",
                                 f"  {victim} (pid *) killed by signal 11 (SIGSEGV), core "
                                 "dumped, during call of *test_2_crash*; core: *"])
    crashes = json.loads(report.read_text())["crashes"]
    assert [(c["daemon"], c["phase"], c["core"]) for c in crashes] == [
        (victim, "call", str(cores[0]))]


# conftest of a run (a process of its own) whose lab cannot restart daemons
REPAIR_FAILS = """
from pytest_ovnlb.backends.netns import NetnsBackend
from pytest_ovnlb.errors import LabError

def refuse(self, keys):
    raise LabError("restart refused on purpose")

NetnsBackend.restart = refuse
"""


def test_unrepairable_lab_fails_later_tests_at_once_naming_the_first_crash(pytester):
    pytester.makeconftest(REPAIR_FAILS)
    result = _run(pytester, "ubuntu3/ovn-controller", "--durations=0", "--durations-min=0")
    result.assert_outcomes(passed=1, failed=1, errors=2)
    out = result.stdout.str()
    line = ("ovnlb: the lab could not be repaired after ubuntu3/ovn-controller (pid *) "
            "killed by signal 11 (SIGSEGV), core dumped (the first daemon to die in this "
            "run): restart refused on purpose")
    result.stdout.fnmatch_lines([line] * 2, consecutive=False)
    # at once: no waiting on a lab that will not answer
    setups = [float(m) for m in re.findall(r"^([\d.]+)s setup .*test_3_after", out, re.M)]
    assert len(setups) == 2 and max(setups) < 2, out


def test_backtrace_without_gdb_says_so(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert "gdb is not installed" in backtrace("/bin/true", tmp_path / "core", None)


def test_backtrace_reads_a_real_core(tmp_path):
    if subprocess.run(["which", "gdb"], capture_output=True).returncode:
        pytest.skip("gdb is not installed")
    done = subprocess.run(["sh", "-c", 'ulimit -c "$(ulimit -H -c)"; exec sleep 30 & '
                           'kill -SEGV $!; wait $!'], cwd=tmp_path)
    assert done.returncode == 128 + 11
    core = next(tmp_path.glob("core*"))
    trace = backtrace("/bin/sleep", core, None)
    assert re.search(r"^#0 ", trace, re.M), trace


LATE_TESTS = """
import os, signal, pytest
from pytest_ovnlb.engine.procs import wait_gone

@pytest.fixture
def killed_at_teardown(ovn_lab):
    yield
    pid = ovn_lab.daemon_pids()["ubuntu2/ovn-controller"]
    os.kill(pid, signal.SIGKILL)
    assert wait_gone(pid, 10)

def test_first(ovn_lab):
    pass

def test_last(killed_at_teardown):
    pass
"""


def test_a_daemon_that_dies_in_the_last_teardown_is_not_lost(pytester):
    """After the last test no test's check follows: the lab looks once more
    before it goes down, and the death is that teardown's error."""
    pytester.makepyfile(test_late=LATE_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_last*",
                                 "*lab daemon died at the end of the run: ubuntu2/ovn-controller "
                                 "(pid *) killed by signal 9 (SIGKILL)*"])
