"""The fake-multinode backend against real containers: bad input is one
line before anything is made, and a run leaves a shared cluster exactly as
it found it, a load balancer of someone else's included.

Tests marked `fmn` need a running ovn-fake-multinode cluster (`make check`
starts the project's stand-in, ci/fmn-standin.sh); where none runs they are
skipped, unless OVNLB_FMN_REQUIRED=1 makes that an error.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from pytest_ovnlb.backends.base import Request
from pytest_ovnlb.backends.fakemultinode import PROVIDER_POOL, Cluster, provider6, runtime_of
from pytest_ovnlb.errors import LabError

ROOT = Path(__file__).resolve().parent.parent
PYTEST = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"]
FMN = ["--ovn-backend=fake-multinode"]


def _cluster():
    try:
        return Cluster.find(runtime_of(Request()))
    except LabError:
        return None


@pytest.fixture(scope="module")
def cluster():
    found = _cluster()
    if found is None:
        if os.environ.get("OVNLB_FMN_REQUIRED") == "1":
            pytest.fail("OVNLB_FMN_REQUIRED=1 but no ovn-fake-multinode cluster runs")
        pytest.skip("no ovn-fake-multinode cluster runs here (ci/fmn-standin.sh start)")
    return found


def run_pytest(*args, env=None, cwd=ROOT, timeout=600):
    return subprocess.run(PYTEST + list(args), cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def one_line_error(result, *words):
    """The run stopped before any test, saying so in one line with `words`."""
    assert result.returncode == pytest.ExitCode.USAGE_ERROR, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("ERROR:")]
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def snapshot(cluster):
    """What a run must leave as it was: the NB contents, and each container's
    namespaces and OVS ports."""
    rt = cluster.runtime
    nb = subprocess.run([rt, "exec", cluster.central, "sh", "-c",
                         "ovn-nbctl show; ovn-nbctl --columns=name,vips list Load_Balancer"],
                        capture_output=True, text=True, check=True).stdout
    nodes = {c: cluster.sh(c, "ip netns list; for b in $(ovs-vsctl list-br); do "
                              "echo $b; ovs-vsctl list-ports $b; done")
             for c in cluster.hosts}
    return nb, nodes


def test_each_provider_subnet_has_an_ipv6_subnet_of_its_own():
    """A lab's IPv6 provider /64 follows from its IPv4 /25: distinct /25s,
    distinct /64s, so labs that do not share one never share the other."""
    assert provider6("10.127.0.0/25") == "fd00:127::/64"
    assert provider6("10.127.0.128/25") == "fd00:127:0:1::/64"
    assert provider6("10.127.255.128/25") == "fd00:127:0:1ff::/64"
    all6 = {provider6(str(n)) for n in PROVIDER_POOL.subnets(new_prefix=25)}
    assert len(all6) == 512


def test_runtime_that_is_not_there_is_one_line(pytester):
    pytester.makepyfile("def test_x(ovn_lab):\n    pass\n")
    result = pytester.runpytest_subprocess(*FMN, "--ovn-fmn-runtime=nosuchruntime")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*container runtime 'nosuchruntime' not found*"])


def test_runtime_without_deployment_is_one_line(tmp_path):
    """A real podman with an empty storage of its own: no cluster to find."""
    if not shutil.which("podman"):
        pytest.skip("podman is not installed")
    with tempfile.TemporaryDirectory(prefix="ovnlb-", dir="/tmp") as empty:
        wrapper = Path(empty) / "podman-empty"  # podman wants a short runroot
        wrapper.write_text(f"#!/bin/sh\nexec podman --root {empty}/root "
                           f"--runroot {empty}/run \"$@\"\n")
        wrapper.chmod(0o755)
        result = run_pytest("conformance/test_placement.py", *FMN,
                            f"--ovn-fmn-runtime={wrapper}")
    one_line_error(result, "no running deployment", "podman-empty")


def test_directory_that_is_not_a_checkout_is_one_line(tmp_path):
    result = run_pytest("conformance/test_placement.py", *FMN, f"--ovn-fmn-dir={tmp_path}")
    one_line_error(result, "not an ovn-fake-multinode checkout")


def test_unbuilt_image_is_one_line(tmp_path):
    (tmp_path / "ovn_cluster.sh").write_text("#!/bin/sh\nexit 1\n")
    """Every unbuilt image is named, in a stable order, whatever else this
    machine holds (the default image may or may not be built here)."""
    env = dict(os.environ, CENTRAL_IMAGE="localhost/ovnlb-never-built:one",
               GW_IMAGE="localhost/ovnlb-never-built:two")
    result = run_pytest("conformance/test_placement.py", *FMN, f"--ovn-fmn-dir={tmp_path}",
                        env=env)
    line = one_line_error(result, "images localhost/ovnlb-never-built:one, ", "not built")
    assert line.index(":one") < line.index(":two"), line


@pytest.mark.fmn
def test_stopped_ovn_controller_fails_the_health_gate(cluster):
    """An ovn-controller that does not answer (SIGSTOPped here) is named
    before anything is made; the cluster is left as it was."""
    node = cluster.hosts[-1]
    before = snapshot(cluster)
    cluster.sh(node, "kill -STOP $(cat /var/run/ovn/ovn-controller.pid)")
    try:
        result = run_pytest("conformance/test_placement.py", *FMN)
    finally:
        cluster.sh(node, "kill -CONT $(cat /var/run/ovn/ovn-controller.pid)")
    one_line_error(result, node, "does not answer")
    assert snapshot(cluster) == before


@pytest.mark.fmn
def test_runs_side_by_side_leave_the_cluster_and_a_users_lb_as_found(cluster):
    """Two runs at once (one of them with two xdist workers) on one cluster:
    all pass; a load balancer made by hand before stays, and the NB and every
    container's namespaces and OVS ports end exactly as they began."""
    nbctl = [cluster.runtime, "exec", cluster.central, "ovn-nbctl"]
    subprocess.run(nbctl + ["ls-add", "users-own-ls", "--", "lb-add", "users-own-lb",
                            "10.99.0.1:80", "10.99.0.2:80", "--", "ls-lb-add", "users-own-ls",
                            "users-own-lb"], check=True)
    try:
        before = snapshot(cluster)
        tests = ["conformance/test_source_ip.py", "conformance/test_placement.py"]
        runs = [subprocess.Popen(PYTEST + tests + FMN + extra, cwd=ROOT, text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
                for extra in ([], ["-n", "2"])]
        outputs = [r.communicate(timeout=600)[0] for r in runs]
        for run, out in zip(runs, outputs):
            assert run.returncode == 0, out[-3000:]
        assert snapshot(cluster) == before
        lbs = subprocess.run(nbctl + ["--format=json", "--columns=name,vips", "list",
                                      "Load_Balancer"], capture_output=True, text=True,
                             check=True).stdout
        assert "users-own-lb" in json.dumps(json.loads(lbs)), lbs
    finally:
        subprocess.run(nbctl + ["--if-exists", "ls-del", "users-own-ls", "--", "--if-exists",
                                "lb-del", "users-own-lb"], check=True)


