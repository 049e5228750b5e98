"""Finding the OVN/OVS under test, on PATH or in another root filesystem."""

import os

import pytest

from pytest_ovnlb import install
from pytest_ovnlb.errors import LabError


@pytest.fixture(autouse=True)
def fresh_lookup():
    install.find.cache_clear()
    yield
    install.find.cache_clear()


def test_missing_programs_are_named_with_their_packages(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(LabError) as err:
        install.find()
    message = str(err.value)
    assert "\n" not in message
    for program, package in install.PROGRAMS.items():
        assert f"{program} (package {package})" in message


def test_root_that_does_not_exist(tmp_path):
    with pytest.raises(LabError, match="is not a directory"):
        install.find(str(tmp_path / "nowhere"))


def test_root_without_ovn_names_what_is_missing(tmp_path):
    (tmp_path / "usr/sbin").mkdir(parents=True)
    with pytest.raises(LabError, match=f"not found in {tmp_path}: ovsdb-server"):
        install.find(str(tmp_path))


def test_root_commands_run_chrooted_in_a_private_mount_namespace():
    found = install.Install({"ovn-nbctl": "/usr/bin/ovn-nbctl"}, {}, None, None, "/srv/x")
    argv = found.command("ovn-nbctl", "show")
    assert argv[:4] == ["unshare", "--mount", "--propagation", "slave"]
    assert argv[-4:] == ["ovnlb-chroot", "/srv/x", "/usr/bin/ovn-nbctl", "show"]


ROOTS = [r for r in os.environ.get("OVNLB_TEST_ROOTS", "").split(":") if r]


@pytest.mark.skipif(not ROOTS or os.geteuid() != 0,
                    reason="set OVNLB_TEST_ROOTS=DIR[:DIR] (ci/make-root.sh) and run as root")
@pytest.mark.parametrize("root", ROOTS)
def test_lab_runs_an_ovn_root(root):
    from pytest_ovnlb.lab import Lab
    found = install.find(root)
    lab = Lab.up(f"troot{os.getpid()}", "single", owner=os.getpid(), ovn_root=root)
    try:
        assert lab.install.ovn_version == found.ovn_version
        assert lab.run("vm3", ["true"]).returncode == 0
        switches = lab.nb.api.ls_list().execute(check_error=True)
        assert {s.name for s in switches} == {"web", "clients"}
    finally:
        lab.down()
