"""The conformance report: its schema and validator, Gateway API profile
results, and a real run (pytester, two xdist workers, a real lab) writing
the report and JUnit with suite properties; exemptions; the skip exit code."""

import copy
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pytest_ovnlb.engine import install
from pytest_ovnlb.reporting import coverage, exempt, features, report
from pytest_ovnlb.reporting.report import TestEntry

IMPL = {"ovn": "23.03.1", "ovs": "3.1.0", "datapath": "netdev", "backend": "netns",
        "topology": "lab", "root": None, "packages": {"ovn-central": "23.03.1-1"}}
SUITE = {"name": "pytest-ovnlb", "version": "0.1.0",
         "samples": {"2": 500, "3": 5700, "5": 5300}}


def rec(nodeid, outcome="passed", placement=None, features=(), **meta):
    """A test as the controller receives it; `features` as its markers name them."""
    path, _, rest = nodeid.partition("::")
    function = rest.partition("[")[0]
    return TestEntry(nodeid=f"conformance/{nodeid}", outcome=outcome,
                      reason="why" if outcome in ("skipped", "exempted") else None,
                      message="boom" if outcome == "failed" else None,
                      meta={"file": path, "function": function, "placement": placement,
                            "params": {"placement": placement or "", **meta},
                            "features": list(features)})


def build(tests, impl=IMPL):
    data = report.build(tests, impl, SUITE, "2026-01-01T00:00:00Z", 1.5, [])
    report.validate(data)
    return data


def profile(data, name):
    return next(p for p in data["profiles"] if p["name"] == name)


def feature(data, profile_name, name):
    return next(f for f in profile(data, profile_name)["features"] if f["name"] == name)


SAMPLE = [
    rec("test_distribution.py::test_client_switch_spreads_new_connections[switch-5]",
        placement="switch", k="5",
        features=["distribution", "switch_lb", "ovs_dp_hash_4_slots_per_bucket"]),
    rec("test_stickiness.py::test_keepalive_requests_all_reach_one_server[router]",
        placement="router", features=["stickiness", "gateway_router_lb"]),
    rec("test_source_ip.py::test_switch_lb_keeps_client_address[switch]", placement="switch",
        features=["source_ip", "switch_lb"]),
    rec("test_placement.py::test_lb_on_client_switch_serves_client[switch]", placement="switch",
        features=["placement", "switch_lb"]),
    rec("test_options.py::test_affinity_timeout_keeps_a_client_on_its_server[switch]",
        placement="switch", features=["affinity_timeout", "switch_lb"]),
]


def test_profiles_follow_the_gateway_api_rule():
    data = build(SAMPLE)
    assert profile(data, "core")["result"] == "success"
    assert profile(data, "core")["statistics"] == {"Passed": 4, "Failed": 0, "Skipped": 0,
                                                   "Exempted": 0}
    skipped = copy.deepcopy(SAMPLE)
    skipped[1].outcome, skipped[1].reason = "skipped", "no reason needed"
    data = build(skipped)
    core = profile(data, "core")
    assert core["result"] == "partial" and feature(data, "core", "stickiness")["result"] == "partial"
    assert core["skippedTests"] == [{"id": "test_stickiness.py::test_keepalive_requests_all_"
                                     "reach_one_server[router]", "reason": "no reason needed"}]
    failed = copy.deepcopy(skipped)
    failed[0].outcome, failed[0].message = "failed", "split wrong"
    failed[0].evidence = "/tmp/evidence/t0"
    data = build(failed)
    assert profile(data, "core")["result"] == "failure" and data["result"] == "failure"
    assert feature(data, "core", "distribution")["result"] == "failure"
    assert feature(data, "core", "placement")["result"] == "success"
    assert profile(data, "core")["failedTests"] == [{
        "id": "test_distribution.py::test_client_switch_spreads_new_connections[switch-5]",
        "message": "split wrong", "evidence": "/tmp/evidence/t0"}]


def test_extended_features_follow_the_version_table():
    data = build(SAMPLE)
    ext = profile(data, "extended")
    # OVN 23.03 has affinity_timeout; OVS 3.1.0 predates the 4-slot rule (3.1.6)
    assert "affinity_timeout" in ext["supportedFeatures"]
    assert "ovs_dp_hash_4_slots_per_bucket" in ext["unsupportedFeatures"]
    assert feature(data, "extended", "ovs_dp_hash_4_slots_per_bucket")["result"] == "unsupported"
    assert feature(data, "extended", "affinity_timeout")["result"] == "success"
    assert feature(data, "extended", "health_check")["result"] == "untested"
    # the k=5 distribution test also proves the unsupported slot rule; it ran,
    # so it counts for the supported features it proves (switch_lb), not that one
    assert feature(data, "extended", "switch_lb")["statistics"]["Passed"] == 4
    old = build(SAMPLE, dict(IMPL, ovn="22.09.0", ovs="3.5.0"))
    ext = profile(old, "extended")
    assert "affinity_timeout" in ext["unsupportedFeatures"]
    assert "ovs_dp_hash_4_slots_per_bucket" in ext["supportedFeatures"]
    # a test of an unsupported feature that ran counts for its other features
    assert ext["statistics"]["Passed"] == 5
    assert feature(old, "extended", "switch_lb")["statistics"]["Passed"] == 4
    assert feature(old, "extended", "switch_lb")["tests"][0].startswith("test_distribution.py")
    assert feature(old, "extended", "affinity_timeout")["result"] == "unsupported"


def test_every_behaviour_and_every_conformance_file_is_mapped():
    from pytest_ovnlb.model.versions import BEHAVIOURS
    assert features.names("extended") == list(BEHAVIOURS)
    assert features.classify([]) == {"core": [], "extended": []}
    assert features.classify(["switch_lb", "stickiness"]) == {"core": ["stickiness"],
                                                              "extended": ["switch_lb"]}
    data = build([rec("test_new.py::test_thing")])
    assert data["unclassifiedTests"] == ["test_new.py::test_thing"]


@pytest.mark.parametrize("breakage, message", [
    (lambda d: d.pop("implementation"), "missing 'implementation'"),
    (lambda d: d["profiles"][0].update(result="fine"), "is not one of"),
    (lambda d: d["statistics"].update(Passed=-1), "below 0"),
    (lambda d: d["tests"][0].update(outcome=None), "is not one of"),
    (lambda d: d.update(extra=1), "unexpected 'extra'"),
    (lambda d: d["tests"][0]["measurements"].append({"kind": "distribution", "counts": {}}),
     "matches none"),
    (lambda d: d.update(apiVersion="v0"), "expected 'pytest-ovnlb.conformance/v1'"),
    (lambda d: d["implementation"].update(packages={"ovn": 23}), "expected string"),
])
def test_validator_rejects_what_breaks_the_schema(breakage, message):
    data = build(SAMPLE)
    breakage(data)
    with pytest.raises(ValueError, match=message):
        report.validate(data)


def test_a_distribution_measurement_records_its_lost_connections():
    """Per distribution check: how many were lost, of which kind, and the
    loss test's verdict, beside the split's; nothing answered is valid too."""
    from pytest_ovnlb.reporting.measure import Measurements
    from pytest_ovnlb.traffic.client import Result
    from pytest_ovnlb.verdicts import checks

    class Item:
        user_properties = []
    shares = {"vm1:8000": 0.5, "vm2:8000": 0.5}
    answered = [Result(backend="vm1", port=8000), Result(backend="vm2", port=8000)] * 250
    one_lost = checks.distribution(answered + [Result(error="timeout")], shares, planned=500)
    all_lost = checks.distribution([Result(error="reset")] * 64, shares, planned=500)
    for verdict in (one_lost, all_lost):
        Measurements(Item).distribution(verdict, client="vm3")
    (_, kept), (_, gone) = Item.user_properties
    assert kept["lost"] == {"timeout": 1} and kept["passed"] and kept["splitPassed"]
    assert kept["loss"]["passed"] and kept["loss"]["tolerance"] == 0.01
    assert gone["lost"] == {"reset": 64} and gone["n"] == 0 and gone["chi2"] is None
    assert not gone["passed"] and not gone["loss"]["passed"] and gone["splitPassed"] is None
    data = build(SAMPLE, impl={**IMPL, "packages": {"ovn-central": "23.03.1-1"}})
    data["tests"][0]["measurements"] = [kept, gone]
    report.validate(data)


def test_validator_refuses_keywords_it_does_not_check():
    from pytest_ovnlb.reporting.schema import validate
    with pytest.raises(ValueError, match="unsupported keywords"):
        validate("x", {"pattern": "^y$"})


def test_load_says_in_one_line_what_is_wrong(tmp_path):
    bad = tmp_path / "r.json"
    bad.write_text("{")
    with pytest.raises(ValueError, match=r"r.json: not JSON: .* at line 1$"):
        report.load(bad)
    bad.write_text("{}")
    with pytest.raises(ValueError, match=r"r.json: not a conformance report: at /: missing"):
        report.load(bad)
    with pytest.raises(ValueError, match="cannot read"):
        report.load(tmp_path / "none.json")


def test_exemption_file_errors_are_one_line(tmp_path):
    f = tmp_path / "exempt"
    f.write_text("# header\n\ntest_a.py::test_b  flaky here\ntest_a.py::test_c\n")
    with pytest.raises(ValueError, match=r"exempt:4: test_a.py::test_c has no reason$"):
        exempt.load(str(f))
    f.write_text("test_b  reason\n")
    with pytest.raises(ValueError, match="not a test id"):
        exempt.load(str(f))
    f.write_text("test_a.py::test_b  flaky here\n")
    (e,) = exempt.load(str(f))
    assert e.covers("test_a.py::test_b[switch]") and not e.covers("test_a.py::test_bc")


RUN_TESTS = """
import pytest
from pytest_ovnlb.reporting import measure
from pytest_ovnlb.verdicts import stats

pytestmark = pytest.mark.ovnlb(proves=("distribution",))

def test_measured(ovn_lab, ovnlb_measure, placement):
    verdict = stats.chi_square_test({"vm1:8000": 510, "vm2:8000": 490},
                                    {"vm1:8000": 0.5, "vm2:8000": 0.5})
    ovnlb_measure.distribution(verdict, client="vm3")
    measure.current().sources({"vm1:8000": {"10.0.0.1"}}, {"vm1:8000": ["10.0.0.1"]})
    assert placement != "router", "router is wrong on purpose"

def test_skipped(ovn_lab):
    pytest.skip("not on this release")

def test_exempted(ovn_lab):
    raise AssertionError("must not run")
"""


def test_the_evidence_section_of_a_failure_names_its_folder(pytestconfig):
    """What pytest_ovnlb/plugin/evidence.py adds to a failure's report ends up in
    the test's `evidence` field."""
    from pytest_ovnlb.reporting import measure
    from pytest_ovnlb.plugin.collector import Collector
    collector = Collector(pytestconfig)
    meta = [(measure.META, {"file": "test_a.py", "function": "test_b", "placement": None,
                           "params": {}})]
    rep = pytest.TestReport("d/test_a.py::test_b", ("test_a.py", 1, "test_b"), {}, "failed",
                            "AssertionError: no", "call",
                            [("ovnlb evidence", "saved in /ev/test_b")], 0.5,
                            user_properties=meta)
    collector.take(rep)
    (test,) = collector.tests.values()
    assert (test.outcome, test.evidence, test.message) == ("failed", "/ev/test_b",
                                                            "AssertionError: no")
    assert rep.user_properties == []
    rep = pytest.TestReport("d/test_a.py::test_c", ("test_a.py", 1, "test_c"), {}, "failed",
                            "x", "call", [("ovnlb evidence", "could not be saved: OSError")],
                            0.5, user_properties=meta)
    collector.take(rep)
    assert collector.tests["d/test_a.py::test_c"].evidence is None


@pytest.mark.lab
def test_a_run_writes_its_report_and_junit_from_the_controller(pytester):
    pytester.makepyfile(test_distribution=RUN_TESTS)
    pytester.path.joinpath("exempt.txt").write_text(
        "test_distribution.py::test_exempted  known to fail on our builders\n")
    result = pytester.runpytest_subprocess(
        "-n", "2", "--ovn-topology=single", "--ovnlb-report=out/report.json",
        "--junitxml=out/junit.xml", "--ovnlb-exempt=exempt.txt")
    assert result.ret == pytest.ExitCode.TESTS_FAILED, result.stdout.str()
    data = report.load(pytester.path / "out/report.json")
    found = install.find()
    impl = data["implementation"]
    assert (impl["ovn"], impl["ovs"], impl["datapath"], impl["backend"]) == (
        str(found.ovn_version), str(found.ovs_version), "netdev", "netns")
    tests = {t["id"]: t for t in data["tests"]}
    core = profile(data, "core")
    assert {i: t["outcome"] for i, t in tests.items()} == {
        "test_distribution.py::test_measured[router]": "failed",
        "test_distribution.py::test_measured[switch]": "passed",
        "test_distribution.py::test_skipped": "skipped",
        "test_distribution.py::test_exempted": "exempted"}
    assert tests["test_distribution.py::test_skipped"]["reason"] == "not on this release"
    assert tests["test_distribution.py::test_exempted"]["reason"] == "known to fail on our builders"
    failed = tests["test_distribution.py::test_measured[router]"]
    assert "router is wrong on purpose" in failed["message"]
    # the evidence folder, where the run keeps one (pytest_ovnlb/plugin/evidence.py)
    if failed["evidence"] is not None:
        assert Path(failed["evidence"]).is_dir() and failed["evidence"] in result.stdout.str()
    assert core["failedTests"][0]["evidence"] == failed["evidence"]
    dist, sources = failed["measurements"]
    assert dist["counts"] == {"vm1:8000": 510, "vm2:8000": 490} and dist["passed"]
    assert dist["context"] == {"client": "vm3"} and 0 < dist["p"] < 1
    assert sources["seen"] == {"vm1:8000": ["10.0.0.1"]}
    assert core["result"] == "failure" and core["statistics"] == {
        "Passed": 1, "Failed": 1, "Skipped": 1, "Exempted": 1}
    assert data["exemptions"] == [{"id": "test_distribution.py::test_exempted",
                                   "reason": "known to fail on our builders", "matched": 1}]
    # the knobs of the OVN under test, with the run's tests by their markers
    knobs = {k["knob"]: k for k in data["coverage"]["knobs"]}
    assert "test_distribution.py::test_measured[switch]" in knobs["Load_Balancer:vips"]["tests"]
    assert knobs["Logical_Switch:load_balancer"]["tests"] == [
        "test_distribution.py::test_measured[switch]"]

    suite = ET.parse(pytester.path / "out/junit.xml").getroot().find("testsuite")
    props = {p.get("name"): p.get("value") for p in suite.find("properties")}
    assert props["ovnlb.ovn"] == str(found.ovn_version)
    assert props["ovnlb.ovs"] == str(found.ovs_version)
    assert props["ovnlb.datapath"] == "netdev" and props["ovnlb.backend"] == "netns"
    assert suite.get("name") == f"ovnlb OVN {found.ovn_version} OVS {found.ovs_version} netdev netns"
    # measurements stay out of the testcases (not valid xunit2)
    assert not [c for c in suite.iter("testcase") if c.find("properties") is not None]
    exempted = [c for c in suite.iter("testcase") if c.get("name") == "test_exempted"]
    assert "exempted: known to fail" in exempted[0].find("skipped").get("message")


@pytest.mark.lab
def test_junit_suite_name_set_by_the_user_is_kept(pytester):
    pytester.makepyfile("def test_x(ovn_lab):\n    pass\n")
    pytester.makeini("[pytest]\njunit_suite_name = mine\n")
    result = pytester.runpytest_subprocess("--ovn-topology=single", "--junitxml=j.xml")
    assert result.ret == 0
    suite = ET.parse(pytester.path / "j.xml").getroot().find("testsuite")
    assert suite.get("name") == "mine"
    assert "ovnlb.ovn" in {p.get("name") for p in suite.find("properties")}


def test_bad_exemption_file_is_a_one_line_usage_error(pytester):
    pytester.path.joinpath("ex").write_text("test_a.py::test_b\n")
    result = pytester.runpytest("--ovnlb-exempt=ex")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert [line for line in result.stderr.lines if line.strip()] == [
        "ERROR: ovnlb: ex:1: test_a.py::test_b has no reason"]


@pytest.mark.parametrize("xdist", [[], ["-n", "2"]])
def test_exemption_naming_no_test_is_warned_once(pytester, xdist):
    """A typo in an exemption file would exempt nothing, silently: it is
    named once (also under xdist), even when -k deselects the test."""
    pytester.makepyfile(test_a="def test_b():\n    pass\n\ndef test_c():\n    pass\n")
    pytester.path.joinpath("ex").write_text("test_a.py::test_b  covered\n"
                                            "test_a.py::test_bb  a typo\n")
    result = pytester.runpytest_subprocess("--ovnlb-exempt=ex", "-k", "test_c", *xdist)
    assert result.ret == 0, result.stdout.str()
    out = result.stdout.str()
    assert out.count("ovnlb: exemption test_a.py::test_bb (ex) names no test of this suite: "
                     "a typo, or a test renamed?") == 1, out
    assert "exemption test_a.py::test_b " not in out


def test_skip_exit_code_when_the_suite_cannot_run_here(pytester, tmp_path):
    pytester.makepyfile("def test_x(ovn_lab):\n    pass\n")
    result = pytester.runpytest_subprocess(f"--ovn-root={tmp_path}/none",
                                           "--ovnlb-skip-exit-code=77", "-n", "2")
    assert result.ret == 77
    assert [line for line in result.stderr.lines if line.strip()] == [
        f"ovnlb: skipped, cannot run here: OVN root {tmp_path}/none is not a directory"]
    # without the option the same run is an error, not a skip
    result = pytester.runpytest_subprocess(f"--ovn-root={tmp_path}/none")
    assert result.ret == pytest.ExitCode.USAGE_ERROR


def test_report_path_from_ini(pytester):
    pytester.makepyfile("def test_x():\n    pass\n")
    pytester.makeini("[pytest]\novnlb_report = r/out.json\n")
    assert pytester.runpytest_subprocess().ret == 0
    data = json.loads((pytester.path / "r/out.json").read_text())
    report.validate(data)
    assert data["unclassifiedTests"] == ["test_report_path_from_ini.py::test_x"]
    # the coverage section: the installed OVN's knobs, none exercised by this run
    assert data["coverage"]["ovn"] == coverage.read().ovn and data["coverage"]["knobs"]
    assert not any(k["tests"] for k in data["coverage"]["knobs"])


def test_bad_skip_exit_code_in_ini_is_one_line(pytester):
    pytester.makeini("[pytest]\novnlb_skip_exit_code = often\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert [line for line in result.stderr.lines if line.strip()] == [
        f"ERROR: ovnlb_skip_exit_code = often ({pytester.path}/tox.ini): not a whole number"]


def test_a_feature_whose_tests_ran_is_never_untested():
    """A test that ran counts for every supported feature it proves, even
    when it also proves one this OVN lacks (neighbor_responder=all beside a
    26.09 behaviour on 23.03); only a test skipped for an unsupported one
    counts for none."""
    impl = {"ovn": "23.3.1", "ovs": "3.1.0", "datapath": "netdev", "backend": "netns",
            "topology": "lab", "root": None, "packages": {}}
    ran = report.TestEntry("t.py::test_nr[router-all]", meta={"features": [
        "neighbor_responder", "switch_ns_to_routers_only_for_their_addresses"]})
    skipped = report.TestEntry("t.py::test_new[router]", outcome="skipped",
                                reason="OVN 23.3.1 predates 26.9.0", meta={"features": [
                                    "reject_no_backends",
                                    "switch_ns_to_routers_only_for_their_addresses"]})
    data = report.build([ran, skipped], impl, {"name": "x", "version": "0", "samples": {}},
                        "2026-12-06T00:00:00Z", 1.0, [])
    rows = {f["name"]: f for f in profile(data, "extended")["features"]}
    assert rows["neighbor_responder"]["result"] == "success"
    assert rows["neighbor_responder"]["tests"] == ["t.py::test_nr[router-all]"]
    assert rows["switch_ns_to_routers_only_for_their_addresses"]["result"] == "unsupported"
    assert rows["reject_no_backends"]["result"] == "untested"  # its only test was skipped
    ran_features = set(ran.features()["extended"])
    assert all(row["result"] != "untested" for name, row in rows.items()
               if name in ran_features and row["supported"] is not False)


def test_every_behaviour_has_a_test():
    """No row of the page is untested for want of a test: every behaviour of
    the version table is proved by some conformance test (its marker), or
    by a placement's or the distribution tests' automatic one."""
    from pytest_ovnlb.model.versions import BEHAVIOURS
    from pytest_ovnlb.reporting.coverage import collect
    from pytest_ovnlb.reporting.features import OVS_BEHAVIOURS, PLACEMENT_FEATURES
    suite = Path(__file__).resolve().parent.parent / "conformance"
    marked = {name for names in collect(str(suite)).values() for name in names}
    automatic = set(PLACEMENT_FEATURES.values()) | OVS_BEHAVIOURS
    assert [b for b in BEHAVIOURS if b not in marked | automatic] == []
