"""The version table: parsing, ordering, releases and backports."""

import pytest

from pytest_ovnlb.model.versions import BEHAVIOURS, Version, expects


@pytest.mark.parametrize("text, version", [
    ("23.03.1", Version(23, 3, 1)), ("20.03", Version(20, 3, 0)),
    ("v24.09.0-rc1", Version(24, 9, 0)), ("3.1.0", Version(3, 1, 0)),
])
def test_parse(text, version):
    assert Version.parse(text) == version


def test_printing_follows_each_project():
    assert str(Version(23, 3, 1)) == "23.03.1"  # OVN: YY.MM.patch
    assert str(Version(3, 1, 0)) == "3.1.0"  # OVS


def test_order():
    assert Version.parse("20.03.0") < Version.parse("20.06.0") < Version.parse("21.03.0")


def test_bad_version():
    with pytest.raises(ValueError):
        Version.parse("main")


@pytest.mark.parametrize("version, expected", [
    ("20.03.0", True), ("20.06.2", True), ("26.03.1", True), ("2.12.0", False),
    ("2.6.0", False)])
def test_switch_self_hairpin_since_20_03(version, expected):
    assert expects("switch_self_hairpin", Version.parse(version)) is expected


@pytest.mark.parametrize("version, expected", [
    ("23.06.0", True), ("23.03.1", True), ("23.03.0", False), ("22.12.1", True),
    ("22.12.0", False), ("22.03.3", True), ("22.03.2", False), ("22.06.0", False),
    ("21.12.5", False)])
def test_backports_count_only_on_their_branch(version, expected):
    assert expects("empty_lb_drops", Version.parse(version)) is expected


@pytest.mark.parametrize("version, expected", [
    ("3.1.0", False), ("3.1.6", True), ("3.2.3", False), ("3.2.4", True),
    ("3.4.0", False), ("3.4.1", True), ("3.5.0", True), ("2.17.9", False)])
def test_ovs_dp_hash_slot_rule(version, expected):
    assert expects("ovs_dp_hash_4_slots_per_bucket", Version.parse(version)) is expected


def test_every_behaviour_says_what_changed():
    for b in BEHAVIOURS.values():
        assert isinstance(b.what, str) and b.what.strip(), b.name
        assert isinstance(b.since, Version) and b.since >= Version(2, 6, 0), b.name
        # A backport is an older branch's patch release, never the release itself.
        assert all(isinstance(v, Version) and v < b.since for v in b.backports), b.name


def test_quirks_apply_only_to_their_datapath_and_placement():
    from pytest_ovnlb.model.versions import QUIRKS, quirk

    assert quirk("affinity_first_connection_lost", "netdev", "switch")
    assert not quirk("affinity_first_connection_lost", "system", "switch")
    assert not quirk("affinity_first_connection_lost", "netdev", "router")
    for q in QUIRKS.values():
        assert q.seen_on and q.what and q.datapaths and q.placements


def test_known_bugs_follow_their_fixes():
    from pytest_ovnlb.model.versions import BUGS, known_bugs

    uaf = BUGS["controller_lb_use_after_free"]
    # every 23.03 release has it (no fixed one was tagged); fixed in 23.06.5,
    # 23.09.5, 24.03.3 and from 24.09.0 on
    for version in ("23.3.1", "23.3.3", "23.6.4", "23.9.4", "24.3.2"):
        assert known_bugs("ovn-controller", Version.parse(version)) == [uaf], version
    for version in ("23.6.5", "23.9.5", "24.3.3", "24.9.0", "25.3.0", "26.3.1"):
        assert known_bugs("ovn-controller", Version.parse(version)) == [], version
    assert known_bugs("ovn-northd", Version.parse("23.3.1")) == []
    assert [b.name for b in known_bugs("ovs-vswitchd", Version.parse("3.1.0"))] == [
        "vswitchd_conntrack_conn_type_assertion"]
    assert known_bugs("ovs-vswitchd", Version.parse("3.1.3")) == []
    assert known_bugs("ovs-vswitchd", Version.parse("3.5.0")) == []
    for b in BUGS.values():
        assert b.what and b.fix and b.daemon.startswith(("ovn-", "ovs"))
