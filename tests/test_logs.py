"""Daemon logs judged like OVN's own tests judge them: the table's entries
(verdicts/logs.py), and a real daemon's complaint failing the test during
which it was logged."""

import pytest

from pytest_ovnlb.verdicts.logs import ALLOWED, complaints
from pytest_ovnlb.model.versions import Version

OLD, NEW = Version.parse("23.3.1"), Version.parse("26.3.1")
LINE = "2026-12-06T11:47:11.346Z|00004|{module}|{level}|{text}"


def line(text: str, level: str = "WARN", module: str = "pinctrl") -> str:
    return LINE.format(module=module, level=level, text=text)


def test_info_and_debug_lines_are_never_complaints():
    text = "\n".join(line("anything at all", level) for level in ("INFO", "DBG"))
    assert complaints("ovn-controller", text, NEW) == []


@pytest.mark.parametrize("level", ["WARN", "ERR", "EMER"])
def test_an_unexplained_line_is_a_complaint(level):
    text = line("something went wrong", level)
    assert complaints("ovn-controller", text, NEW) == [text]


def test_an_entry_holds_for_its_daemon_only():
    text = line("failed to enumerate system datapaths: No such file or directory", "WARN", "dpif")
    assert complaints("ovs-vswitchd", text, NEW) == []
    assert complaints("ovn-northd", text, NEW) == [text]


@pytest.mark.parametrize("text", [
    "2026-12-06T14:16:09.831Z|00001|dpif(revalidator5)|WARN|netdev@ovs-netdev: failed to "
    "put[modify] (No such file or directory) ufid:311088e3 actions:drop",
    "2026-12-06T11:47:11.346Z|00004|ofproto_dpif_upcall(revalidator6)|WARN|Failed to "
    "acquire udpif_key corresponding to unexpected flow (Invalid argument): ufid:1"])
def test_revalidator_races_are_expected_of_ovs_vswitchd(text):
    assert complaints("ovs-vswitchd", text, NEW) == []
    handler = text.replace("(revalidator5)", "(handler1)").replace("(revalidator6)", "(handler1)")
    assert complaints("ovs-vswitchd", handler, NEW) == [handler]


def test_an_entry_holds_for_its_versions_only():
    text = line("handle service check: Service monitor not found")
    assert complaints("ovn-controller", text, OLD) == []
    assert complaints("ovn-controller", text, NEW) == [text]


def test_every_entry_says_why_and_is_a_valid_pattern():
    import re
    names = [a.name for a in ALLOWED]
    assert len(names) == len(set(names))
    for allowed in ALLOWED:
        re.compile(allowed.pattern)
        assert len(allowed.why) > 20, allowed.name


LOGGING_TESTS = """
import pytest

@pytest.mark.switch
@pytest.mark.ipv4
def test_quiet(ovn_lbs, ovn_hub, placement):
    lb = ovn_lbs(ovn_hub.servers(2))
    assert all(r.ok for r in ovn_hub.connect("vm3", lb.vip, lb.port, 4))

@pytest.mark.switch
@pytest.mark.ipv4
def test_makes_ovs_complain(ovn_lab, placement):
    # a port whose device does not exist: ovs-vswitchd says so, at WARN
    ovn_lab.run("ubuntu2", ["ovs-vsctl", "add-port", "br-int", "ovnlbghost0"], check=True)
    ovn_lab.run("ubuntu2", ["ovs-vsctl", "del-port", "br-int", "ovnlbghost0"], check=True)

@pytest.mark.switch
@pytest.mark.ipv4
def test_quiet_after(ovn_lbs, ovn_hub, placement):
    lb = ovn_lbs(ovn_hub.servers(2))
    assert all(r.ok for r in ovn_hub.connect("vm3", lb.vip, lb.port, 4))
"""


@pytest.mark.lab
def test_a_daemon_complaining_during_a_test_fails_it_naming_the_line(pytester):
    """A real ovs-vswitchd warning fails the test that caused it, quoting the
    line; the tests before and after it (a load balancer, traffic) pass."""
    pytester.makepyfile(test_logging=LOGGING_TESTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines([
        "*test_makes_ovs_complain*",
        "*a lab daemon logged * unexpected WARN/ERR/EMER line(s) during the test*",
        "*ubuntu2/ovs-vswitchd: *|WARN|*ovnlbghost0*"])


def test_mixed_version_lines_are_expected_only_while_releases_mix():
    line = ("2026-12-06T15:19:07.160Z|00005|ovsdb_idl|WARN|CT_Zone table in Open_vSwitch "
            "database lacks limit column (database needs upgrade?)")
    v = Version.parse("25.03.0")
    assert complaints("ovn-controller", line, v) == [line]
    assert complaints("ovn-controller", line, v, mixed=True) == []
    rejected = ("2026-12-06T15:19:07.165Z|00059|ofp_actions|WARN|unknown OpenFlow15 action "
                "for vendor 0x2320 and type 51")
    assert complaints("ovs-vswitchd", rejected, v, mixed=True) == []
    assert complaints("ovs-vswitchd", rejected, v) == [rejected]


def test_an_exiting_vswitchd_may_leave_recirculations():
    text = line("recirc_id 14 left allocated when ofproto (br-int) is destructed", "ERR",
                "ofproto_dpif_rid")
    assert complaints("ovs-vswitchd", text, NEW) == []
    assert complaints("ovn-controller", text, NEW) == [text]
