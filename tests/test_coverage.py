"""The coverage table (pytest_ovnlb/reporting/coverage.py) against the OVN
installations we know: the parser finds their load balancer knobs, every
knob each documents is in the table, the table names only features that
conformance tests carry, and `-m "ovnlb_feature(name=...)"` selects exactly
the tests marked with a feature."""

import subprocess
import sys
from pathlib import Path

import pytest

from pytest_ovnlb import cli
from pytest_ovnlb.reporting import coverage, features

ROOT = Path(__file__).resolve().parent.parent
SUITE = ROOT / "conformance"
# Where each OVN release we know is installed: this machine's, and root
# filesystems that `make matrix` builds (ci/make-root.sh).
INSTALLS = {"host": None, "trixie": ROOT / ".roots" / "trixie", "sid": ROOT / ".roots" / "sid"}
# Knobs each must document, and some it must not list (no load balancer in
# their description, or a map column that is there as its keys).
EVERYWHERE = ["Load_Balancer:vips", "Load_Balancer:protocol", "Load_Balancer:options:reject",
              "Load_Balancer:options:hairpin_snat_ip", "Load_Balancer:options:affinity_timeout",
              "Load_Balancer:options:ct_flush", "Load_Balancer_Group:load_balancer",
              "Load_Balancer_Health_Check:options:failure_count", "Logical_Switch:load_balancer",
              "Logical_Router:load_balancer_group", "Logical_Router:options:lb_force_snat_ip"]
KNOWN = {"host": EVERYWHERE,
         "trixie": EVERYWHERE + ["Load_Balancer:options:use_stateless_nat",
                                 "Logical_Router:options:dynamic-routing-redistribute"],
         "sid": EVERYWHERE + ["Load_Balancer:options:distributed",
                              "Logical_Switch:other_config:enable-stateless-acl-with-lb"]}
NOT_KNOBS = ["Load_Balancer:options", "Logical_Router:options:chassis",
             "Logical_Router:name", "Logical_Switch:ports"]


def docs(install: str) -> coverage.Docs:
    root = INSTALLS[install]
    if root is not None and not root.is_dir():
        pytest.skip(f"{root} is absent (`make matrix` builds it)")
    return coverage.read(str(root) if root else None)


@pytest.mark.parametrize("install", INSTALLS)
def test_the_parser_finds_the_known_knobs(install):
    found = docs(install)
    assert found.ovn and found.man.endswith("ovn-nb.5.gz")
    assert [k for k in KNOWN[install] if k not in found.knobs] == []
    assert [k for k in NOT_KNOBS if k in found.knobs] == []
    # descriptions are read: what decides whether a router option is a knob
    assert coverage.MENTIONS.search(found.knobs["Logical_Router:options:lb_force_snat_ip"])


@pytest.mark.parametrize("install", INSTALLS)
def test_every_knob_the_ovn_documents_is_in_the_table(install):
    found = docs(install)
    assert coverage.missing(found) == [], (
        f"OVN {found.ovn} ({found.man}) documents load balancer knobs that "
        "pytest_ovnlb/reporting/coverage.py TABLE lacks: add each, with the features "
        "whose tests exercise it or why none does")


def test_table_entries_name_features_or_reasons():
    assert coverage.problems() == []


def test_every_feature_in_the_table_has_a_marked_conformance_test():
    marked = coverage.by_feature(coverage.collect(str(SUITE)))
    named = {f for entry in coverage.TABLE.values() if isinstance(entry, tuple) for f in entry}
    assert sorted(f for f in named if not marked.get(f)) == [], (
        "features the table names that no conformance test carries as ovnlb_feature")


def test_every_conformance_test_names_a_feature_of_its_own():
    """Beyond its placement's feature, which every placement run gets."""
    implied = set(features.PLACEMENT_FEATURES.values())
    collected = coverage.collect(str(SUITE))
    assert collected
    assert [t for t, names in collected.items() if not set(names) - implied] == []


@pytest.mark.parametrize("feature", ["health_check", "switch_self_hairpin", "switch_lb",
                                     "ovs_dp_hash_4_slots_per_bucket", "stickiness"])
def test_marker_expression_selects_exactly_the_marked_tests(feature):
    expected = coverage.by_feature(coverage.collect(str(SUITE))).get(feature, [])
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", "-q",
         f"--rootdir={SUITE}", "-m", f"{features.MARKER}(name='{feature}')", str(SUITE)],
        capture_output=True, text=True, timeout=120, check=False).stdout
    selected = [line for line in out.splitlines() if "::" in line]
    assert expected and sorted(selected) == sorted(expected), out
    if feature == "switch_self_hairpin":  # marked for the switch placement only
        assert all("[switch" in t for t in selected)


def test_a_bad_feature_marker_is_a_usage_error(pytester):
    pytester.makepyfile("""
        import pytest

        @pytest.mark.ovnlb(proves=("stikiness",))
        def test_x():
            pass
    """)
    result = pytester.runpytest("--collect-only")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert "ovnlb(proves=...) names 'stikiness': not one of" in result.stderr.str()


def test_the_command_fails_when_a_documented_knob_is_not_in_the_table(monkeypatch, capsys):
    assert cli.main(["coverage"]) == 0
    out = capsys.readouterr().out
    assert "options:hairpin_snat_ip" in out and coverage.BOOKKEEPING in out
    monkeypatch.delitem(coverage.TABLE, "Load_Balancer:options:ct_flush")
    assert cli.main(["coverage", "--json"]) == 1
    assert "Load_Balancer:options:ct_flush" in capsys.readouterr().err
