"""Topologies and deployment backends other packages add: through pytest
hooks (pytest_ovnlb_topologies, pytest_ovnlb_backends) and through Python
entry points, which `ovnlb-lab` sees too."""

import os
import subprocess
import sys

import pytest

from pytest_ovnlb import backends
from pytest_ovnlb.engine import topology

PLUGIN = """
from dataclasses import replace

from pytest_ovnlb.backends.netns import NetnsBackend
from pytest_ovnlb.engine import topology

MINI = replace(topology.SINGLE, name="mini", description="single, under another name")


class Stub(NetnsBackend):
    name = "stub"

    @classmethod
    def preflight(cls, spec):
        return "stub ready: " + super().preflight(spec)
"""

HOOKS = PLUGIN + """

def pytest_ovnlb_topologies():
    return [MINI]


def pytest_ovnlb_backends():
    return [Stub]
"""


def test_a_plugin_adds_a_topology_and_a_backend(pytester):
    pytester.makeconftest(HOOKS)
    pytester.makepyfile("""
from pytest_ovnlb import backends
from pytest_ovnlb.engine import topology
from pytest_ovnlb.plugin.options import SETTINGS

def test_chosen(request):
    s = request.config.stash[SETTINGS]
    assert (s.topology, s.backend) == ("mini", "stub")
    assert topology.get("mini").description == "single, under another name"
    assert backends.get("stub").name == "stub"
""")
    result = pytester.runpytest_subprocess("--ovn-topology=mini", "--ovn-backend=stub")
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    result.stdout.fnmatch_lines(["ovnlb: stub ready: *; topology mini, backend stub"])
    # an unknown name lists the added ones with the built-in ones
    result = pytester.runpytest_subprocess("--ovn-topology=nowhere", "--ovn-backend=cloud")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --ovn-topology=nowhere (command line): unknown "
                                 "topology 'nowhere' (known: lab, single, mini)"])


def test_added_names_are_gone_after_an_inline_run(pytester):
    pytester.makeconftest(HOOKS)
    pytester.makepyfile("def test_x():\n    pass\n")
    for _ in range(2):  # the same names again: not "defined twice"
        assert pytester.runpytest("--ovn-topology=mini").ret == 0
    assert "mini" not in topology.REGISTRY.names()
    assert "stub" not in backends.REGISTRY.names()


def test_a_name_taken_is_a_usage_error(pytester):
    pytester.makeconftest("""
from dataclasses import replace
from pytest_ovnlb.engine import topology

def pytest_ovnlb_topologies():
    return [replace(topology.SINGLE, name="lab")]
""")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: ovnlb: topology 'lab' is defined twice"])


@pytest.mark.lab
def test_a_lab_is_built_on_the_added_topology_and_backend(pytester):
    pytester.makeconftest(HOOKS)
    pytester.makepyfile("""
def test_lab(ovn_lab):
    assert ovn_lab.topology.name == "mini"
    assert ovn_lab.record.backend == "stub"
""")
    result = pytester.runpytest_subprocess("--ovn-topology=mini", "--ovn-backend=stub")
    assert result.ret == 0, result.stdout.str() + result.stderr.str()


def test_entry_points_reach_ovnlb_lab(tmp_path):
    (tmp_path / "mini_topo.py").write_text(PLUGIN)
    info = tmp_path / "mini_topo-0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mini-topo\nVersion: 0\n")
    (info / "entry_points.txt").write_text(
        "[pytest_ovnlb.topologies]\nmini = mini_topo:MINI\n\n"
        "[pytest_ovnlb.backends]\nstub = mini_topo:Stub\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "pytest_ovnlb.cli", *args], env=env,
                              capture_output=True, text=True, timeout=60)

    done = cli("topologies")
    assert done.returncode == 0, done.stderr
    assert "mini: single, under another name" in done.stdout.splitlines()
    done = cli("up", "--name", "nobackend", "--backend", "cloud")
    assert done.returncode == 1
    assert done.stderr.strip().endswith(
        "unknown backend 'cloud' (known: netns, fake-multinode, stub)"), done.stderr
