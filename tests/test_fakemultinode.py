"""The fake-multinode backend against real containers: bad input is one
line before anything is made, and a run leaves a shared cluster exactly as
it found it, a load balancer of someone else's included.

Tests marked `fmn` need a running ovn-fake-multinode cluster (`make check`
starts the project's stand-in, ci/fmn-standin.sh); where none runs they are
skipped, unless OVNLB_FMN_REQUIRED=1 makes that an error (=raft: a cluster
with a clustered central too).
"""

import ipaddress
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from pytest_ovnlb.backends.base import LabSpec
from pytest_ovnlb.backends.fakemultinode import PROVIDER_POOL, Cluster, provider6, runtime_of
from pytest_ovnlb.engine.ovsdb import wait_for
from pytest_ovnlb.errors import LabError

ROOT = Path(__file__).resolve().parent.parent
PYTEST = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q"]
FMN = ["--ovn-backend=fake-multinode"]


def _cluster():
    try:
        return Cluster.find(runtime_of(LabSpec()))
    except LabError:
        return None


@pytest.fixture(scope="module")
def cluster():
    found = _cluster()
    if found is None:
        if os.environ.get("OVNLB_FMN_REQUIRED") in ("1", "raft"):
            pytest.fail("OVNLB_FMN_REQUIRED is set but no ovn-fake-multinode cluster runs")
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


def blocks(text: str, start: re.Pattern) -> list[str]:
    """`text` cut where a line starts a block, sorted: ovn-nbctl lists rows
    in the order its IDL got them, which differs from one process to the next."""
    cuts = [m.start() for m in start.finditer(text)] + [len(text)]
    return sorted(text[a:b] for a, b in zip(cuts, cuts[1:]))


def snapshot(cluster):
    """What a run must leave as it was: the NB contents (rows, in any
    order), and each container's namespaces and OVS ports."""
    nbctl = cluster.ctl_argv("nb")
    nb = [blocks(subprocess.run(nbctl + argv, capture_output=True, text=True,
                                check=True).stdout, start)
          for argv, start in ((["show"], re.compile(r"^\S", re.M)),
                              (["--columns=name,vips", "list", "Load_Balancer"],
                               re.compile(r"^name", re.M)))]
    nodes = {c: sorted(cluster.sh(c, "ip netns list; for b in $(ovs-vsctl list-br); do "
                                     "ovs-vsctl list-ports $b | sed \"s/^/$b /\"; done")
                       .splitlines())
             for c in cluster.hosts}
    return "".join(nb[0] + nb[1]), nodes


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


def _db_pids(cluster, member, dbs=("nb", "sb")) -> list[str]:
    return cluster.sh(member, "cat " + " ".join(f"/var/run/ovn/ovn{db}_db.pid"
                                                for db in dbs)).split()


def move_leadership(cluster) -> tuple[str, str]:
    """Pause the servers of the member leading NB and SB until other members
    lead both (as when a central's host stalls), then let them go on;
    returns the new leaders."""
    old = {cluster.leader("nb"), cluster.leader("sb")}
    others = Cluster(cluster.runtime, [m for m in cluster.centrals if m not in old], [], [])
    paused = {m: _db_pids(cluster, m) for m in old}
    for member, pids in paused.items():
        cluster.sh(member, f"kill -STOP {' '.join(pids)}")
    try:
        return wait_for(lambda: _leaders(others), 30, "a new leader of NB and SB")
    finally:
        for member, pids in paused.items():
            cluster.sh(member, f"kill -CONT {' '.join(pids)}")


def _leaders(cluster):
    try:
        return cluster.leader("nb"), cluster.leader("sb")
    except LabError:
        return None


@pytest.fixture
def clustered(cluster):
    """A cluster whose central is clustered (raft); skipped on another one
    unless OVNLB_FMN_REQUIRED=raft."""
    if len(cluster.centrals) < 3:
        if os.environ.get("OVNLB_FMN_REQUIRED") == "raft":
            pytest.fail(f"OVNLB_FMN_REQUIRED=raft but the central {cluster.central} is not "
                        "clustered (OVN_DB_CLUSTER=yes)")
        pytest.skip(f"the central {cluster.central} is not clustered")
    return cluster


@pytest.mark.fmn
def test_a_leadership_change_mid_run_is_followed(clustered):
    """Leadership of NB and SB moves to other members while a run makes
    load balancers and sends traffic: the run follows it and passes, with
    tests passing after the move."""
    tests = ["conformance/test_source_ip.py", "conformance/test_distribution.py"]
    run = subprocess.Popen(PYTEST[:-1] + ["-v"] + tests + FMN, cwd=ROOT, text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    before, after, moved = [], [], None
    try:
        for line in run.stdout:
            (after if moved else before).append(line)
            if moved is None and sum("PASSED" in x for x in before) == 5:
                moved = move_leadership(clustered)
    finally:
        run.wait(timeout=600)
    out = "".join(before + after)
    assert run.returncode == 0, out[-3000:]
    assert moved, out[-3000:]
    assert sum("PASSED" in x for x in after) >= 10, out[-3000:]


@pytest.mark.fmn
def test_an_unreachable_central_is_one_line(cluster):
    """Every member's NB server paused: `ovnlb-lab up` says in one line that
    it cannot reach OVN_Northbound on the central, and makes nothing."""
    before = snapshot(cluster)
    paused = {m: _db_pids(cluster, m, ("nb",)) for m in cluster.centrals}
    for member, pids in paused.items():
        cluster.sh(member, f"kill -STOP {' '.join(pids)}")
    try:
        result = subprocess.run([sys.executable, "-m", "pytest_ovnlb.cli", "up", "--backend",
                                 "fake-multinode", "--name", f"unreach{os.getpid()}"],
                                capture_output=True, text=True, timeout=120)
    finally:
        for member, pids in paused.items():
            cluster.sh(member, f"kill -CONT {' '.join(pids)}")
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stderr.count("\n") == 1, result.stderr
    assert f"cannot connect to OVN_Northbound on {cluster.central}" in result.stderr
    assert snapshot(cluster) == before


@pytest.fixture
def extra_load():
    """A third load beside the runs: stress-ng keeping every CPU busy."""
    if not shutil.which("stress-ng"):
        pytest.skip("stress-ng is not installed (ci/setup.sh installs it)")
    load = subprocess.Popen(["stress-ng", "--cpu", "0", "--cpu-load", "50", "--quiet"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    yield
    load.terminate()
    load.wait(timeout=30)


@pytest.mark.fmn
def test_runs_side_by_side_leave_the_cluster_and_a_users_lb_as_found(cluster, extra_load):
    """Two runs at once (one of them with two xdist workers) on one cluster,
    with every CPU half busy beside them: all pass, their distribution
    checks included; a load balancer made by hand before stays, and the NB
    and every container's namespaces and OVS ports end exactly as they
    began."""
    nbctl = cluster.ctl_argv("nb")
    subprocess.run(nbctl + ["ls-add", "users-own-ls", "--", "lb-add", "users-own-lb",
                            "10.99.0.1:80", "10.99.0.2:80", "--", "ls-lb-add", "users-own-ls",
                            "users-own-lb"], check=True)
    try:
        before = snapshot(cluster)
        tests = ["conformance/test_source_ip.py", "conformance/test_placement.py",
                 "conformance/test_distribution.py"]
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


@pytest.mark.fmn
def test_readme_walkthrough_leaves_a_users_lb_and_the_cluster_as_found(cluster, walkthrough):
    """README's walk-through, as it is there, on the cluster: the lab's
    names carry its prefix and its provider subnet is its own; the load
    balancer made through `ovnlb-lab nbctl` goes with `down`, one made with
    the cluster's own ovn-nbctl stays, and the cluster ends as it began."""
    nbctl = cluster.ctl_argv("nb")
    subprocess.run(nbctl + ["lb-add", "users-own-lb2", "10.99.0.1:80", "10.99.0.2:80"],
                   check=True)
    try:
        before = snapshot(cluster)
        name = f"wt{os.getpid()}"
        found = walkthrough(name, "fake-multinode")
        assert found["ROUTER"] == f"{name}-edge1", found
        subnet = ipaddress.ip_network(found["PROVIDER_SUBNET"])
        assert subnet.subnet_of(PROVIDER_POOL), found
        assert ipaddress.ip_address(found["ROUTER_VIP"]) in subnet, found
        try:  # ovn-controller removes the lab's patch ports a moment after `down`
            wait_for(lambda: snapshot(cluster) == before, 30, "the cluster as it began")
        except TimeoutError:
            pass  # the assertion below shows the difference
        after = snapshot(cluster)
        assert "users-own-lb2" in after[0] and f"{name}-lb1" not in after[0], after[0]
        assert after == before
    finally:
        subprocess.run(nbctl + ["--if-exists", "lb-del", "users-own-lb2"], check=True)


def test_an_ovsdbapp_error_without_its_arguments_is_still_one_line():
    """ovsdbapp's own bug (a TimeoutException() wrapped while connecting)
    made str() raise, and the run end in an INTERNALERROR."""
    from ovsdbapp import exceptions

    from pytest_ovnlb.engine.ovsdb import describe
    error = exceptions.OvsdbConnectionUnavailable(db_schema="OVN_Northbound",
                                                  error=exceptions.TimeoutException())
    line = describe(error)
    assert "OVN_Northbound" in line and "\n" not in line
