"""Finding the OVN/OVS under test, on PATH or in another root filesystem."""

import os
import subprocess
import sys

import pytest

from pytest_ovnlb.engine import install
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


# Runs in its own mount namespace (`unshare --mount`): the bind mounts that
# make this machine's /usr and /etc a root filesystem vanish with it, even if
# it is killed, so nothing (pytest's tmp_path clean-up included) ever sees them.
CHROOTED_LAB = """
import os, subprocess, sys
from pytest_ovnlb.lab import Lab
from pytest_ovnlb.backends.base import LabSpec
root = sys.argv[1]
for d in ("usr", "etc"):
    subprocess.run(["mount", "--bind", "/" + d, os.path.join(root, d)], check=True)
lab = Lab.up("tchroot%d" % os.getpid(), "single", owner=os.getpid(), spec=LabSpec(ovn_root=root))
try:
    assert lab.backend.install.summary.endswith("in " + root), lab.backend.install.summary
    names = {s.name for s in lab.nb.api.ls_list().execute(check_error=True)}
    assert names == {"web", "clients"}, names
    daemons = lab.daemon_pids()
    assert all(daemons.values()), daemons
    roots = {os.readlink("/proc/%d/root" % pid) for pid in daemons.values()}
    assert roots == {root}, roots
finally:
    lab.down()
print("chrooted lab ok")
"""


@pytest.mark.lab
@pytest.mark.skipif(not all(os.path.islink(f"/{d}") for d in ("bin", "sbin", "lib")),
                    reason="needs a merged-/usr system to assemble a root from /usr")
def test_lab_runs_chrooted(tmp_path):
    """The chroot path end to end, on a root made of this machine's /usr."""
    root = tmp_path / "root"
    for d in ("dev", "proc", "sys", "run", "tmp", "usr", "etc"):
        (root / d).mkdir(parents=True)
    for link in ("bin", "sbin", "lib", "lib64"):
        if os.path.islink(f"/{link}"):
            os.symlink(os.readlink(f"/{link}"), root / link)
    result = subprocess.run(["unshare", "--mount", "--propagation", "private",
                             sys.executable, "-c", CHROOTED_LAB, str(root)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "chrooted lab ok" in result.stdout, result.stderr


@pytest.mark.skipif(not ROOTS or os.geteuid() != 0,
                    reason="set OVNLB_TEST_ROOTS=DIR[:DIR] (ci/make-root.sh) and run as root")
@pytest.mark.parametrize("root", ROOTS)
def test_lab_runs_an_ovn_root(root):
    from pytest_ovnlb.backends.base import LabSpec
    from pytest_ovnlb.lab import Lab
    found = install.find(root)
    lab = Lab.up(f"troot{os.getpid()}", "single", owner=os.getpid(), spec=LabSpec(ovn_root=root))
    try:
        assert lab.versions.ovn == found.ovn_version
        assert lab.run("vm3", ["true"]).returncode == 0
        switches = lab.nb.api.ls_list().execute(check_error=True)
        assert {s.name for s in switches} == {"web", "clients"}
    finally:
        lab.down()
