"""OVN's upgrade procedures as data, and the per-step traffic verdicts
(pure logic: no lab)."""

import pytest

from pytest_ovnlb.model import upgrades
from pytest_ovnlb.model.versions import Version
from pytest_ovnlb.verdicts import upgrade as judge

V = Version.parse


@pytest.mark.parametrize("source,target,procedure", [
    ("25.03.0", "26.03.1", "rolling"),    # a non-LTS to the next LTS
    ("24.03.2", "25.09.0", "rolling"),    # an LTS to a release before the next LTS
    ("24.03.2", "26.03.0", "rolling"),    # an LTS to the next LTS
    ("22.03.0", "24.03.0", "rolling"),
    ("25.03.0", "25.03.3", "rolling"),    # a point release
    ("23.03.1", "25.03.0", "fail-safe"),  # past the next LTS (24.03)
    ("23.03.1", "26.03.1", "fail-safe"),
    ("24.03.0", "26.09.0", "fail-safe"),  # past the next LTS
    ("24.09.0", "25.03.0", "fail-safe"),  # a non-LTS to another non-LTS
    ("22.03.0", "26.03.0", "fail-safe"),  # across an LTS
    ("26.03.1", "25.03.0", "downgrade"),
    ("25.03.3", "25.03.0", "downgrade"),
])
def test_documented_procedure(source, target, procedure):
    assert upgrades.documented(V(source), V(target)) == procedure


@pytest.mark.parametrize("version,lts", [
    ("22.03.0", True), ("24.03.5", True), ("26.03.0", True), ("23.03.1", False),
    ("24.09.0", False), ("25.03.0", False), ("20.03.0", False)])
def test_lts(version, lts):
    assert upgrades.is_lts(V(version)) is lts


@pytest.mark.parametrize("version,lts", [
    ("21.12.0", "22.03.0"), ("22.03.0", "24.03.0"), ("23.03.1", "24.03.0"),
    ("24.01.0", "24.03.0"), ("24.09.0", "26.03.0"), ("26.03.1", "28.03.0")])
def test_next_lts(version, lts):
    assert upgrades.next_lts(V(version)) == V(lts)


def test_steps_follow_the_procedure():
    assert upgrades.plan(V("25.03.0"), V("26.03.1")) == (
        "rolling", ("controllers", "ovs", "central"))
    assert upgrades.plan(V("23.03.1"), V("25.03.0")) == (
        "fail-safe", ("pin", "central", "controllers", "ovs"))
    assert upgrades.plan(V("26.03.1"), V("25.03.0"))[0] == "downgrade"
    assert upgrades.plan(V("23.03.1"), V("25.03.0"), "rolling") == (
        "rolling", ("controllers", "ovs", "central"))


@pytest.mark.parametrize("source,target,forced,message", [
    ("25.03.0", "25.03.0", None, "both OVN 25.03.0"),
    ("23.03.1", "25.03.0", "quick", "unknown upgrade procedure 'quick'"),
    ("26.03.1", "25.03.0", "rolling", "is a downgrade"),
])
def test_bad_plans_are_one_line(source, target, forced, message):
    with pytest.raises(ValueError, match=message) as info:
        upgrades.plan(V(source), V(target), forced)
    assert "\n" not in str(info.value)


def test_pinned_only_between_a_fail_safe_central_and_controllers():
    steps = upgrades.STEPS["fail-safe"]
    assert [upgrades.pinned("fail-safe", steps[:i + 1]) for i in range(len(steps))] == [
        False, True, False, False]
    assert not any(upgrades.pinned("rolling", upgrades.STEPS["rolling"][:i + 1])
                   for i in range(3))


def test_costs_name_their_datapath():
    assert upgrades.cost("netdev", "ovs").why  # the userspace datapath restarts
    assert upgrades.cost("system", "ovs") == upgrades.QUIET
    assert upgrades.cost("netdev", "controllers") == upgrades.QUIET


# --- the verdicts ---------------------------------------------------------

def windows(*bounds, cost=upgrades.QUIET):
    names = ["before", "controllers", "central"]
    return [judge.Window(names[i], a, b, cost) for i, (a, b) in
            enumerate(zip(bounds, bounds[1:]))]


def held(kind, times, server="vm1", errors=None, **kw):
    errors = errors or {}
    return judge.Flow(f"x-{kind}", kind, "router ipv4", [
        [t, t + 0.01, None if t in errors else server, errors.get(t)] for t in times], **kw)


def ticks(start, stop, every=0.2, skip=()):
    out, t = [], start
    while t < stop - 1e-9:
        if not any(a <= t < b for a, b in skip):
            out.append(round(t, 3))
        t += every
    return out


def test_steady_traffic_passes_every_step():
    flows = [held("tcp", ticks(0, 9)), held("udp", ticks(0, 9)), held("new", ticks(0, 9, 0.1))]
    verdicts = judge.judge(flows, windows(0, 3, 6, 9))
    assert [v.passed for v in verdicts] == [True, True, True]
    assert verdicts[1].figures["new"]["fraction"] == 1.0
    assert verdicts[1].figures["held"]["longest_stall"] <= 0.21


def test_a_stall_counts_in_the_step_it_falls_in():
    # answers stop at 5.01 and resume at 7.61: 1.0 s of it in "controllers", 1.6 s in "central"
    flow = held("tcp", ticks(0, 9, skip=[(5.01, 7.5)]))
    verdicts = judge.judge([flow], windows(0, 3, 6, 9))
    assert verdicts[0].passed
    assert verdicts[1].passed, verdicts[1].failures  # 1.0 s: at the bound
    assert not verdicts[2].passed and "stalled 1.6 s" in verdicts[2].failures[0]


def test_a_broken_connection_fails_its_step():
    flow = held("tcp", ticks(0, 4.5), errors={4.4: "reset"})
    verdicts = judge.judge([flow], windows(0, 3, 6, 9))
    assert verdicts[0].passed
    assert verdicts[1].failures == ["router ipv4: long-lived connection x-tcp broke: reset"]
    # judged where it broke, not again as a silence in the steps after
    assert verdicts[2].passed and verdicts[2].figures["held"]["flows"] == 0


def test_a_moved_flow_fails():
    flow = held("udp", ticks(0, 9))
    for e in flow.events:
        if e[0] >= 7:
            e[2] = "vm2"
    verdicts = judge.judge([flow], windows(0, 3, 6, 9))
    assert verdicts[1].passed and "moved from vm1 to vm2" in verdicts[2].failures[0]


def test_lost_new_connections_fail_a_quiet_step_only():
    lost = {t: "timeout" for t in ticks(4.0, 4.5, 0.1)}
    flow = held("new", ticks(0, 9, 0.1), errors=lost)
    quiet = judge.judge([flow], windows(0, 3, 6, 9))
    assert "5 of 30 new connections failed (timeout)" in quiet[1].failures[0]
    costly = upgrades.Cost(stall=5, gap=5, new_may_fail=True, why="a restart")
    assert judge.judge([flow], windows(0, 3, 6, 9, cost=costly))[1].passed


def test_a_refused_connection_on_a_health_checked_vip_fails_whatever_the_cost():
    flow = held("new", ticks(0, 9, 0.1), errors={4.0: "refused"}, refused_is_wrong=True)
    costly = upgrades.Cost(stall=5, gap=5, new_may_fail=True, why="a restart")
    verdicts = judge.judge([flow], windows(0, 3, 6, 9, cost=costly))
    assert "offline server back in rotation" in verdicts[1].failures[0]
