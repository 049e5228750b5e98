"""Traffic through load balancers survives an OVN upgrade done the way OVN
documents it (rolling or fail-safe, chosen from the two versions): from
each placement's client and in each family, a long-lived TCP connection and
a UDP flow each ask a request every 0.2 s, and new connections start every
0.1 s, through every step.  At each step no established flow breaks,
stalls beyond the step's bound or moves to another server, new connections
keep being served, a health-checked server that is down stays out of
rotation, and once the step has settled new connections split as dp_hash
shares them.  Every request is counted.  Runs only in an upgrade run
(--ovn-upgrade-from); the rest of the suite then runs on labs upgraded the
same way."""

import pytest

from pytest_ovnlb.reporting import measure


@pytest.mark.ovnlb(proves=("upgrade",))
def test_upgrade_keeps_load_balanced_traffic(ovn_upgrade):
    walk = ovn_upgrade.describe()
    measure.current().upgrade(walk)
    figures = "\n".join(
        f"  {s['step']:12} {'ok' if s['passed'] else 'FAILED':6} held {s['held']['answered']}/"
        f"{s['held']['requests']} answered, longest stall {s['held']['longest_stall']:.2f} s; "
        f"new {s['new']['served']}/{s['new']['started']} served, longest gap "
        f"{s['new']['longest_gap']:.2f} s" for s in walk["steps_judged"])
    assert not ovn_upgrade.failures, (
        f"upgrade {ovn_upgrade.path.name}: " + "; ".join(ovn_upgrade.failures)
        + f"\nper step:\n{figures}")
