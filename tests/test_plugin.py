"""The plugin itself, driven with pytester: options, markers, placement
parametrization, bad input, keep-on-failure, and that the conformance
verdicts fail when OVN misbehaves."""

import shutil
from pathlib import Path

import pytest

from pytest_ovnlb import lab as lab_mod
from pytest_ovnlb.engine import install, records

ROOT = Path(__file__).resolve().parent.parent


needs_lab = pytest.mark.lab

PLACEMENT_TESTS = """
import pytest

def test_unmarked(placement):
    pass

@pytest.mark.switch
def test_switch_only(placement):
    assert placement == "switch"

@pytest.mark.router
def test_router_only(placement):
    assert placement == "router"

def test_without_lb():
    pass
"""


def test_options_have_ini_twins(pytester):
    result = pytester.runpytest("--help")
    out = result.stdout.str()
    for flag, ini in [("--ovn-topology", "ovn_topology"), ("--ovn-backend", "ovn_backend"),
                      ("--ovnlb-keep-on-failure", "ovnlb_keep_on_failure"),
                      ("--ovnlb-samples", "ovnlb_samples")]:
        assert flag in out and ini in out


def test_markers_are_registered(pytester):
    out = pytester.runpytest("--markers").stdout.str()
    assert "@pytest.mark.router:" in out and "@pytest.mark.switch:" in out


def test_placement_parametrization_follows_markers(pytester):
    pytester.makepyfile(PLACEMENT_TESTS)
    result = pytester.runpytest("--collect-only", "-q")
    ids = {line.split("::")[1] for line in result.stdout.lines if "::" in line}
    assert ids == {"test_unmarked[router]", "test_unmarked[switch]",
                   "test_switch_only[switch]", "test_router_only[router]", "test_without_lb"}


@pytest.mark.parametrize("marker", ["router", "switch"])
def test_marker_selection_is_disjoint(pytester, marker):
    pytester.makepyfile(PLACEMENT_TESTS)
    result = pytester.runpytest("-m", marker, "--collect-only", "-q")
    ids = {line.split("::")[1] for line in result.stdout.lines if "::" in line}
    assert ids and all(i.endswith(f"[{marker}]") for i in ids)


def test_ini_sets_topology(pytester):
    pytester.makeini("[pytest]\novn_topology = nowhere\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown topology 'nowhere' (known: lab, single)*"])


def test_unknown_topology_is_one_line_usage_error(pytester):
    pytester.makepyfile(PLACEMENT_TESTS)
    result = pytester.runpytest("--ovn-topology=nowhere")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.stderr.lines if line.strip()]
    assert errors == ["ERROR: unknown topology 'nowhere' (known: lab, single)"]


def test_unknown_backend_is_usage_error(pytester):
    result = pytester.runpytest("--ovn-backend=cloud")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unknown backend 'cloud' (available: netns, fake-multinode)*"])


def test_missing_ovn_is_one_line_usage_error(pytester, monkeypatch):
    pytester.makepyfile("def test_x(ovn_lab):\n    pass\n")
    monkeypatch.setenv("PATH", "/nonexistent")
    install.find.cache_clear()
    try:
        result = pytester.runpytest()
    finally:
        install.find.cache_clear()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: OVN/OVS programs not found on PATH: ovsdb-server "
                                 "(package openvswitch-switch)*"])


@needs_lab
def test_report_header_names_versions(pytester):
    result = pytester.runpytest()
    found = install.find()
    result.stdout.fnmatch_lines([f"ovnlb: OVN {found.ovn_version}, OVS {found.ovs_version};*"])


def _copy_suite(pytester, *files):
    for name in ("conftest.py",) + files:
        shutil.copy(ROOT / "conformance" / name, pytester.path / name)


@needs_lab
def test_keep_on_failure_leaves_lab_and_says_how_to_reach_it(pytester):
    pytester.makepyfile("def test_fails(ovn_lab):\n    assert False, 'on purpose'\n")
    result = pytester.runpytest_subprocess("--ovn-topology=single", "--ovnlb-keep-on-failure")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    kept = [line for line in result.stdout.lines if "kept after failures" in line]
    assert len(kept) == 1, result.stdout.str()
    name = kept[0].split("lab ")[1].split()[0]
    record = records.load(name)
    try:
        assert record.owner_pid is None and record.state == "ready"
        assert "run directory" in result.stdout.str()  # the failure names the lab's logs
    finally:
        lab_mod.destroy(record)


@needs_lab
def test_lab_is_removed_after_a_failing_run(pytester):
    pytester.makepyfile("def test_fails(ovn_lab):\n    assert False\n")
    result = pytester.runpytest_subprocess("--ovn-topology=single")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    # The failure report describes the lab: "lab NAME: topology single ..."
    name = next(line.split()[1].rstrip(":") for line in result.stdout.lines
                if line.startswith("lab pytest"))
    assert name not in [r.name for r in records.all_records()]
    assert not list(Path("/run/netns").glob(f"ovnlb-{name}-*"))


# --- the verdicts have teeth: break OVN's behaviour, watch the suite fail ----

def _every_lb(body: str) -> str:
    """conftest code that runs `body` (which may change `kw`, the factory's
    arguments) around every load balancer the tests create."""
    return f"""
@pytest.fixture(autouse=True)
def break_every_lb(monkeypatch):
    from pytest_ovnlb.traffic.harness import LoadBalancers
    create = LoadBalancers.__call__
    def broken(self, backends, **kw):
{body}
    monkeypatch.setattr(LoadBalancers, "__call__", broken)
"""


BREAKS = {
    # Every connection from one client to one backend: hash on the source only.
    "one_backend": ("test_distribution.py", "internal", "NOT consistent", _every_lb("""
        lb = create(self, backends, **kw)
        api = self.lab.nb.api
        row = api.lb_get(lb.name).execute(check_error=True)
        api.db_set("Load_Balancer", row.uuid, ("selection_fields", ["ip_src"])).execute(
            check_error=True)
        self.sync()
        return lb""")),
    # The gateway router forgets its SNAT: backends answer vm3 directly
    # through tenant1, bypassing edge1's un-DNAT, so connections fail.
    "no_snat": ("test_source_ip.py", "snats_internal", "connections failed", """
@pytest.fixture(autouse=True)
def drop_snat(ovn_lab):
    api = ovn_lab.nb.api
    api.lr_nat_del("edge1", "snat", "172.16.255.128/25").execute(check_error=True)
    yield
    api.lr_nat_add("edge1", "snat", "10.127.0.129", "172.16.255.128/25").execute(
        check_error=True)
"""),
    # Hairpinned connections come from another address than the VIP.
    "no_hairpin": ("test_source_ip.py", "reaching_the_vip and switch", "expected sources",
                   _every_lb("""
        kw["options"] = {"hairpin_snat_ip": "172.16.255.140"}
        return create(self, backends, **kw)""")),
    # options:reject is ignored: connections to a VIP without backends hang.
    "reject_ignored": ("test_options.py", "reject", "reject=true", _every_lb("""
        kw.pop("options", None)
        return create(self, backends, **kw)""")),
    # options:affinity_timeout is ignored: a client's connections spread.
    "affinity_ignored": ("test_options.py", "affinity", "should reach one backend", _every_lb("""
        kw.pop("options", None)
        return create(self, backends, **kw)""")),
    # The switch load balancer also acts on the client's switch.
    "switch_lb_everywhere": ("test_placement.py", "only_on_server_switch", "answered a client",
                             _every_lb("""
        kw["attach_to"] = ["inside", "dmz"]
        return create(self, backends, **kw)""")),
}


@needs_lab
@pytest.mark.parametrize("breakage", sorted(BREAKS))
def test_suite_fails_when_ovn_misbehaves(pytester, breakage):
    test_file, selection, symptom, conftest_extra = BREAKS[breakage]
    _copy_suite(pytester, test_file)
    conftest = pytester.path / "conftest.py"
    conftest.write_text(conftest.read_text() + "\n" + conftest_extra)
    result = pytester.runpytest_subprocess("-k", selection, "-p", "no:cacheprovider")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) >= 1, result.stdout.str()
    assert outcomes.get("error", 0) == 0, result.stdout.str()
    assert symptom in result.stdout.str()  # failed for the reason it should
