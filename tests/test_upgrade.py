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
from pathlib import Path

import pytest

from pytest_ovnlb.engine import install, records, unixctl
from pytest_ovnlb.errors import LabError
from pytest_ovnlb.model.versions import Version

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
    from pytest_ovnlb.lab import Lab
    from pytest_ovnlb.traffic.harness import Hub, LoadBalancers

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
    from pytest_ovnlb.lab import Lab

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
    from test_lab import leftovers

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
