"""Upgrades on the embedded lab: a lab on this machine's OVN upgraded step by
step to another installation (docs/upgrades.md), with traffic through a
switch and a router load balancer after each step; and conformance tests
with new controllers under an old central, OVN's rolling-upgrade
intermediate state.

The new installation is a root filesystem named by $OVNLB_UPGRADE_ROOT,
made there (`ci/make-root.sh trixie DIR`, about a minute) when it holds no
OVN yet; without the variable these tests are skipped.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from test_lab import leftovers

from pytest_ovnlb import upgrade
from pytest_ovnlb.engine import install, records, unixctl
from pytest_ovnlb.errors import LabError
from pytest_ovnlb.lab import Lab
from pytest_ovnlb.model import upgrades
from pytest_ovnlb.model.versions import Version
from pytest_ovnlb.traffic.harness import Hub, LoadBalancers

pytestmark = pytest.mark.lab

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "pytest_ovnlb.cli"]


@pytest.fixture(scope="module")
def new_root() -> str:
    root = os.environ.get("OVNLB_UPGRADE_ROOT")
    if not root:
        pytest.skip("set OVNLB_UPGRADE_ROOT=DIR to a root filesystem of another OVN release "
                    "(made there with ci/make-root.sh trixie when it holds none, ~1 min)")
    if not os.access(f"{root}/usr/bin/ovn-northd", os.X_OK):
        made = subprocess.run(["bash", str(ROOT / "ci/make-root.sh"), "trixie", root],
                              capture_output=True, text=True, timeout=900)
        assert made.returncode == 0, made.stdout[-2000:] + made.stderr[-2000:]
    try:
        found = install.at(root)
    except LabError as exc:
        pytest.fail(f"OVNLB_UPGRADE_ROOT={root}: {exc}")
    if found.ovn_version == install.at(None).ovn_version:
        pytest.skip(f"{root} holds the same OVN as this machine ({found.ovn_version})")
    return found.root


def reported(lab) -> dict[str, tuple[Version, str]]:
    """Each daemon's version as it answers `version` on its control socket,
    and the root filesystem its process runs in."""
    backend, found = lab.backend, {}
    for key, pid in lab.daemon_pids().items():
        node, daemon = key.split("/")
        if node == "central":
            answer = unixctl.call(str(backend.central_dir() / f"{daemon}.ctl"), "version")
        else:
            answer = backend.appctl(node, daemon, "version")
        version = Version.parse(re.search(r"(\d+\.\d+\.\d+)", answer.splitlines()[0])[1])
        found[key] = (version, os.readlink(f"/proc/{pid}/root"))
    return found


def expected(lab, old: install.Install, new: install.Install, upgraded: set[str]):
    def of(key: str, ins: install.Install):
        ovn = key.endswith(("/ovn-controller", "/northd"))
        return (ins.ovn_version if ovn else ins.ovs_version, ins.root or "/")

    return {key: of(key, new if key in upgraded else old) for key in lab.logs()}


def test_step_by_step_upgrade_keeps_the_lab_whole(new_root):
    old, new = install.at(None), install.at(new_root)
    lab = Lab.up(f"tup{os.getpid()}", "lab", owner=os.getpid())
    hub = Hub(lab)
    try:
        made = []
        for placement in ("switch", "router"):
            lbs = LoadBalancers(lab, hub, placement)
            made.append(lbs(lbs.servers(2)))

        def traffic_flows():
            for lb in made:
                results = hub.connect("vm3", lb.vip, lb.port, 32)  # both answer: 1 - 2**-31
                assert all(r.ok for r in results), (lb, results)
                assert {r.backend for r in results} == {"vm1", "vm2"}, (lb, results)

        traffic_flows()
        upgraded: set[str] = set()
        chassis = lab.backend.chassis_hosts()
        for step, keys in (
                ("controllers", [f"{c}/ovn-controller" for c in chassis]),
                ("central", ["central/nb", "central/sb", "central/northd"]),
                ("ovs", [f"{c}/{d}" for c in chassis for d in ("ovsdb-server", "ovs-vswitchd")])):
            assert sorted(lab.upgrade(new_root, step)) == sorted(keys)
            upgraded |= set(keys)
            want = expected(lab, old, new, upgraded)
            assert reported(lab) == want, step
            daemons = lab.versions.daemons
            assert {k: (d.version, d.root or "/") for k, d in daemons.items()} == want
            # the record names each daemon's root: another process sees the same
            assert Lab.attach(lab.name).versions.daemons == daemons
            traffic_flows()
        assert (lab.versions.ovn, lab.versions.ovs) == (new.ovn_version, new.ovs_version)
        # a daemon that dies is restarted on the program it ran (crashes.py)
        key = "ubuntu2/ovn-controller"
        os.kill(lab.daemon_pids()[key], signal.SIGKILL)
        lab.backend.restart([key])
        lab.sync()
        assert reported(lab)[key] == (new.ovn_version, new_root)
        traffic_flows()
    finally:
        hub.close()
        lab.down()


def test_bad_upgrade_input_is_one_line_and_changes_nothing(new_root, tmp_path):
    name = f"tupb{os.getpid()}"
    up = subprocess.run(CLI + ["up", "--name", name, "--topology", "single"],
                        capture_output=True, text=True, timeout=120)
    assert up.returncode == 0, up.stderr
    try:
        before, pids = records.load(name), Lab.attach(name).daemon_pids()
        for args, says in ((["--to", new_root, "--step", "northd"], "unknown upgrade step"),
                           (["--to", str(tmp_path), "--step", "all"], "programs not found in"),
                           (["--to", new_root, "--step", "ovs", "--chassis", "nope"],
                            "no chassis 'nope'")):
            done = subprocess.run(CLI + ["upgrade", "--name", name, *args],
                                  capture_output=True, text=True, timeout=60)
            assert done.returncode == 1 and says in done.stderr, done.stderr
            assert len(done.stderr.splitlines()) == 1, done.stderr
        after = records.load(name)
        assert (after.roots, after.ovn_root) == (before.roots, before.ovn_root)
        assert Lab.attach(name).daemon_pids() == pids
    finally:
        subprocess.run(CLI + ["down", "--name", name], capture_output=True, timeout=120)


UPGRADED_THEN_KILLED = """
import os, sys, time
from pytest_ovnlb.lab import Lab
lab = Lab.up(sys.argv[1], "single", owner=os.getpid())
lab.upgrade(sys.argv[2], "all")
print("upgraded", flush=True)
time.sleep(600)
"""


def test_a_killed_owner_leaves_nothing_the_upgrade_started(new_root):
    name = f"tupk{os.getpid()}"
    proc = subprocess.Popen([sys.executable, "-c", UPGRADED_THEN_KILLED, name, new_root],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "upgraded"
        record = records.load(name)
        assert set(record.roots.values()) == {new_root}
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    swept = subprocess.run(CLI + ["sweep"], capture_output=True, text=True, timeout=120)
    assert name in swept.stdout, swept.stdout + swept.stderr
    assert leftovers(name) == []


MIXED_TESTS = ("test_placement.py", "test_source_ip.py")


def test_new_controllers_under_an_old_central_pass_conformance_tests(new_root, pytester):
    """OVN's rolling-upgrade intermediate state: the conformance tests hold,
    and the header and the report name each daemon's version."""
    for name in ("conftest.py",) + MIXED_TESTS:
        shutil.copy(ROOT / "conformance" / name, pytester.path / name)
    old, new = install.at(None), install.at(new_root)
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", f"--ovn-chassis-root={new_root}", "--ovnlb-report=report.json",
        "-k", "ipv4")
    out = result.stdout.str()
    assert result.ret == 0, out
    assert result.parseoutcomes().get("passed", 0) >= 4, out
    header = (f"ovnlb: central: OVN {old.ovn_version}, OVS {old.ovs_version}; "
              f"chassis: OVN {new.ovn_version}, OVS {new.ovs_version} in {new_root};*")
    result.stdout.fnmatch_lines([
        header,
        "ovnlb: programs (central, in /): *",
        f"ovnlb: programs (chassis, in {new_root}): *"])
    impl = json.loads((pytester.path / "report.json").read_text())["implementation"]
    # the expectations follow the oldest OVN among northd and the controllers
    assert (impl["ovn"], impl["ovs"]) == (str(old.ovn_version), str(new.ovs_version))
    daemons = impl["daemons"]
    assert daemons["central/northd"] == {"program": "ovn-northd",
                                         "version": str(old.ovn_version), "root": None}
    assert daemons["ubuntu2/ovn-controller"] == {"program": "ovn-controller",
                                                 "version": str(new.ovn_version), "root": new_root}
    assert daemons["ubuntu2/ovs-vswitchd"]["version"] == str(new.ovs_version)


# --- upgrade runs: traffic held through OVN's procedure --------------------

def walk(target: str, procedure: str | None = None):
    """A lab on this machine's OVN walked to `target` with traffic held."""
    path = upgrade.plan("/", target, procedure)
    lab = Lab.up(f"upw{os.getpid()}", owner=os.getpid())
    hub = Hub(lab)
    try:
        return upgrade.Walk(lab, hub, path).run()
    finally:
        hub.close()
        lab.down()


def judged(outcome) -> dict[str, list[str]]:
    return {v.name: v.failures for v in outcome.verdicts}


def test_upgrade_run_passes_and_reports_every_step(new_root, pytester):
    """`--ovn-upgrade-from`: test_upgrade.py walks the path with traffic and
    the report holds the path and each step's figures."""
    shutil.copy(ROOT / "conformance" / "conftest.py", pytester.path / "conftest.py")
    shutil.copy(ROOT / "conformance" / "test_upgrade.py", pytester.path / "test_upgrade.py")
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--ovn-upgrade-from=/", f"--ovn-root={new_root}",
        "--ovnlb-report=report.json")
    out = result.stdout.str()
    assert result.ret == 0, out
    result.assert_outcomes(passed=1)
    old, new = install.at(None), install.at(new_root)
    result.stdout.fnmatch_lines([f"ovnlb: upgrade run, OVN {old.ovn_version} -> "
                                 f"{new.ovn_version} (*)*"])
    report = json.loads((pytester.path / "report.json").read_text())
    walks = [m for t in report["tests"] for m in t.get("measurements", [])
             if m["kind"] == "upgrade"]
    assert len(walks) == 1, report["tests"]
    steps = walks[0]["steps_judged"]
    assert [s["step"] for s in steps] == ["before", *walks[0]["steps"]]
    for s in steps:
        assert s["passed"] and s["held"]["requests"] > 0 and s["new"]["started"] > 0, s
        assert s["held"]["answered"] <= s["held"]["requests"]


def test_a_controller_that_clears_flows_on_start_fails_its_step(new_root, tmp_path):
    """A target whose ovn-controller deletes every flow and takes 3 s to
    start: the step that restarts it fails on the stall it causes, the steps
    before it pass in the same walk."""
    broken = tmp_path / "root"
    subprocess.run(["cp", "-al", new_root, str(broken)], check=True)
    program = broken / "usr/bin/ovn-controller"
    program.rename(broken / "usr/bin/ovn-controller.real")  # a new name, same inode
    program.write_text("#!/bin/sh\n"
                       "ovs-ofctl -O OpenFlow15 del-flows br-int\n"
                       "sleep 3\n"
                       'exec /usr/bin/ovn-controller.real "$@"\n')
    program.chmod(0o755)
    outcome = walk(str(broken))
    failures = judged(outcome)
    step = "controllers"
    before = outcome.path.steps[:outcome.path.steps.index(step)]
    assert all(not failures[s] for s in ("before", *before)), failures
    assert any("stalled" in f for f in failures[step]), failures


def test_ovs_before_the_controllers_of_a_pinned_span_fails(new_root, monkeypatch):
    """Fail-safe, with each chassis's OVS restarted while its controller is
    still pinned to the old northd: nothing puts the flows back, so traffic
    stops at that step; the steps before it pass."""
    monkeypatch.setitem(upgrades.STEPS, "fail-safe", ("pin", "central", "ovs", "controllers"))
    failures = judged(walk(new_root, "fail-safe"))
    assert not any(failures[s] for s in ("before", "pin", "central")), failures
    assert any("stalled" in f or "no new connection served" in f for f in failures["ovs"]), \
        failures


def test_an_upgrade_step_inside_a_run_is_not_a_crash(new_root, pytester):
    """A test that upgrades the session's lab: its restarted daemons are
    watched from their new pids, not reported dead; a daemon killed after
    the step still is."""
    pytester.makepyfile(f"""
        import os, signal
        from pytest_ovnlb.engine.procs import wait_gone

        def test_upgrade(ovn_lab):
            ovn_lab.upgrade({new_root!r}, "all")  # mixed on the way, not at the end

        def test_after(ovn_lab):
            ovn_lab.sync()

        def test_kill(ovn_lab):
            pid = ovn_lab.daemon_pids()["ubuntu2/ovn-controller"]
            os.kill(pid, signal.SIGKILL)
            assert wait_gone(pid, 10)  # dies during the test, not after it
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly")
    out = result.stdout.str()
    result.assert_outcomes(passed=2, failed=1)
    assert "test_kill" in out and "ubuntu2/ovn-controller" in out, out
    assert "test_upgrade FAILED" not in out and "test_after FAILED" not in out, out


@pytest.mark.parametrize("args,message", [
    (["--ovn-upgrade-from=/nonexistent"], "--ovn-upgrade-from=/nonexistent: not an OVN "
                                          "installation: OVN root /nonexistent is not a directory"),
    (["--ovn-upgrade-from=/"], "the upgrade source and target are both OVN *: nothing to upgrade"),
    (["--ovn-upgrade-procedure=rolling"], "--ovn-upgrade-procedure needs --ovn-upgrade-from"),
    (["--ovn-upgrade-from=/", "--ovn-chassis-root=/"],
     "--ovn-upgrade-from walks every daemon from the source to the target: drop *"),
    (["--ovn-upgrade-from=/", "--ovn-backend=fake-multinode"],
     "--ovn-upgrade-from: the fake-multinode backend does not upgrade daemons*"),
])
def test_bad_upgrade_run_input_is_one_line_before_anything_is_built(pytester, args, message):
    # the test would write this file once its lab is up: it must never run
    pytester.makepyfile("def test_x(ovn_lab):\n    open('ran', 'w').close()\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.stdout.str()
    result.stderr.fnmatch_lines([f"ERROR: {message}"])
    assert len([line for line in result.stderr.lines if line.strip()]) == 1, result.stderr.str()
    assert not (pytester.path / "ran").exists()


def test_an_interrupted_upgrade_run_leaves_nothing(new_root, pytester):
    """Ctrl-C in the middle of the walk: the walk's lab, half upgraded, is
    removed like any other."""
    shutil.copy(ROOT / "conformance" / "conftest.py", pytester.path / "conftest.py")
    shutil.copy(ROOT / "conformance" / "test_upgrade.py", pytester.path / "test_upgrade.py")
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--ovn-upgrade-from=/",
         f"--ovn-root={new_root}", "test_upgrade.py"], cwd=pytester.path,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    name = f"pytest{proc.pid}u"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # until a step has run on the new programs
            try:
                if new_root in records.load(name).roots.values():
                    break
            except (OSError, ValueError, LabError):
                pass
            time.sleep(0.2)
        else:
            pytest.fail(f"the walk's lab {name} never ran a step on {new_root}")
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, out
    assert leftovers(name) == [], out


def test_nightly_runs_an_upgrade_path_as_a_row_of_its_own(new_root, tmp_path):
    """ci/nightly upgrade:host:ROOT: the upgrade test runs in an upgrade
    run, the summary says the walk's result, the page has its row."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "ci" / "nightly"), "--out", "out", f"upgrade:host:{new_root}",
         "host", "--", "-k", "test_upgrade or keepalive", "-m", "ipv4 or not ipv4"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    old, new = install.at(None), install.at(new_root)
    summary = (tmp_path / "out" / "summary.txt").read_text()
    assert (f"walk {old.ovn_version} -> {new.ovn_version} "
            f"({upgrade_procedure(old, new)}): passed") in summary, summary
    page = (tmp_path / "out" / "matrix.html").read_text()
    assert 'id="upgrades"' in page and f"{old.ovn_version} → {new.ovn_version}" in page
    assert page.count('<th class="column"') == 1  # host alone is a column


def upgrade_procedure(old, new) -> str:
    return upgrades.documented(old.ovn_version, new.ovn_version)


def test_a_failed_walk_keeps_the_evidence_of_its_lab(new_root, pytester):
    """The walk's lab is gone after the run; a failed walk's evidence (its
    daemons' logs, the databases, the failure with each step's figures) is
    saved first, and the report names where."""
    shutil.copy(ROOT / "conformance" / "conftest.py", pytester.path / "conftest.py")
    shutil.copy(ROOT / "conformance" / "test_upgrade.py", pytester.path / "test_upgrade.py")
    with open(pytester.path / "conftest.py", "a") as f:  # the TEETH breakage of the walk
        f.write("\nfrom pytest_ovnlb.model import upgrades\n"
                "upgrades.STEPS['fail-safe'] = ('pin', 'central', 'ovs', 'controllers')\n")
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--ovn-upgrade-from=/", f"--ovn-root={new_root}",
        "--ovn-upgrade-procedure=fail-safe", "--ovnlb-evidence-dir=ev")
    out = result.stdout.str()
    result.assert_outcomes(failed=1)
    saved = re.search(r"saved in (\S+)", out)
    assert saved, out
    folder = Path(saved.group(1))
    assert "ovs: " in (folder / "failure.txt").read_text()
    logs = {p.name for p in (folder / "logs").iterdir()}
    assert {"central_northd.log", "ubuntu1_ovn-controller.log"} <= logs, logs
    # the walk's own controller: pinned, it said so
    assert "mismatch with northd version" in (
        folder / "logs" / "ubuntu1_ovn-controller.log").read_text()
