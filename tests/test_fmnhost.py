"""What a spin-up needs of the host: checked in one line, prepared on
request with real OVS daemons of the run's own, and undone to the last
bridge.  OVS_RUNDIR points `ovs-vsctl` at an empty directory, so these hold
whether or not the machine runs an OVS of its own (which is not touched)."""

import os
import subprocess
from pathlib import Path

import pytest

from pytest_ovnlb.backends import fmnhost
from pytest_ovnlb.engine import procs, records
from pytest_ovnlb.engine.ovsdb import wait_for
from pytest_ovnlb.engine.records import Record
from pytest_ovnlb.errors import LabError

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (OVS daemons)")


@pytest.fixture
def bare_host(tmp_path, monkeypatch):
    """A host whose ovs-vsctl finds no OVS, and a record to prepare it in."""
    monkeypatch.setenv("OVS_RUNDIR", str(tmp_path / "no-ovs"))
    monkeypatch.setenv("OVNLB_RUN_DIR", str(tmp_path / "run"))
    record = Record(name="hostprep", topology="", backend="fake-multinode",
                    data={"runtime": "podman"})
    record.rundir.mkdir(parents=True)
    return record


def vsctl(record, *args):
    return subprocess.run(["ovs-vsctl", "--timeout=5", *args], env=fmnhost.environment(record),
                          capture_output=True, text=True)


def test_a_host_without_ovs_is_one_line_and_nothing_is_made(bare_host):
    with pytest.raises(LabError) as failed:
        fmnhost.prepare(bare_host, prepare_host=False)
    message = str(failed.value)
    assert "\n" not in message
    assert "an OVS answering ovs-vsctl" in message and "br-ovn and br-ovn-ext" in message
    assert "--ovn-fmn-prepare-host" in message
    assert "host" not in bare_host.data
    assert list(bare_host.rundir.iterdir()) == []


def test_prepared_host_has_ovs_and_bridges_and_undo_removes_them(bare_host):
    fmnhost.prepare(bare_host, prepare_host=True)
    rundir = Path(bare_host.data["host"]["ovs_rundir"])
    pids = procs.pids_from_pidfiles(rundir)
    try:
        assert len(pids) == 2 and all(procs.alive(p) for p in pids)
        # what ovn_cluster.sh does with the bridges works
        for bridge in fmnhost.BRIDGES:
            assert vsctl(bare_host, "br-exists", bridge).returncode == 0
        assert vsctl(bare_host, "add-port", "br-ovn", "hostprep0", "--", "set", "Interface",
                     "hostprep0", "type=internal").returncode == 0
        assert fmnhost.lacks(fmnhost.environment(bare_host)) == []
    finally:
        # from the record on disk alone, as a sweep after a kill -9 reads it
        fmnhost.undo(records.load(bare_host.name))
    wait_for(lambda: not any(procs.alive(p) for p in pids), 10, "the run's OVS to exit")
    assert vsctl(bare_host, "show").returncode != 0


def test_only_the_missing_bridge_is_made_and_removed(bare_host, monkeypatch):
    """A host with OVS and br-ovn: only br-ovn-ext is made (and later
    removed); the OVS it found is left running."""
    fmnhost.prepare(bare_host, prepare_host=True)  # stands for the user's OVS
    users = bare_host.data.pop("host")
    try:
        monkeypatch.setenv("OVS_RUNDIR", users["ovs_rundir"])
        assert vsctl(bare_host, "del-br", "br-ovn-ext").returncode == 0
        fmnhost.prepare(bare_host, prepare_host=True)
        assert bare_host.data["host"] == {"ovs_rundir": None, "bridges": ["br-ovn-ext"]}
        fmnhost.undo(bare_host)
        assert vsctl(bare_host, "br-exists", "br-ovn").returncode == 0
        assert vsctl(bare_host, "br-exists", "br-ovn-ext").returncode == 2
        assert vsctl(bare_host, "show").returncode == 0
    finally:
        bare_host.data["host"] = users
        fmnhost.undo(bare_host)


@pytest.mark.parametrize("says, hint", [
    ("Error: crun: cgroups in hybrid mode not supported", 'runtime = "runc"'),
    ("Error: error setting rlimit type 7: operation not permitted", "default_ulimits"),
])
def test_a_runtime_that_cannot_run_containers_is_one_line(tmp_path, says, hint):
    runtime = tmp_path / "refusing-runtime"
    runtime.write_text(f"#!/bin/sh\necho '{says}' >&2\nexit 126\n")
    runtime.chmod(0o755)
    with pytest.raises(LabError) as failed:
        fmnhost.check_runtime(str(runtime), "some/image:latest")
    message = str(failed.value)
    assert "\n" not in message and says in message and hint in message
