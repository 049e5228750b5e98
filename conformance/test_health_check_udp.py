"""Health checks of UDP servers: ovn-controller sends each server of a
UDP VIP a datagram now and then; a server whose port answers it with ICMP
port unreachable (its server stopped) is marked offline in the Southbound
Service_Monitor table and taken out of the rotation, one that stays silent
for the probe's timeout is online (ovn-controller's pinctrl: UDP has no
handshake to wait for).  Pairs with test_health_check.py (TCP).

Both placements, and both families in each run: one dual-stack row, an
IPv4 and an IPv6 VIP over the same servers (a server listens on both), each
VIP with its health check.  Every server address has its own monitor, so
one stop and restart of a server shows both families; a UDP monitor needs
a probe's timeout and an interval to turn online, which makes this the
cheaper way to see both (ovn-northd builds the gateway router's and the
switch's DNAT flows from the same healthy-server list)."""

import pytest

from pytest_ovnlb.case import Case
from pytest_ovnlb.model.placements import PLACEMENTS
from pytest_ovnlb.traffic.harness import LoadBalancers
from pytest_ovnlb.verdicts import monitors

# Probe every second; offline at the first ICMP error, online after one
# probe's timeout without one.
HEALTH_CHECK = {"interval": 1, "timeout": 1, "failure_count": 1, "success_count": 1}
STATUS_TIMEOUT = 10.0
SAMPLES = 48


def wait(sb, names, wanted, why):
    monitors.wait_status(sb, names, wanted, "udp", STATUS_TIMEOUT, why)


@pytest.fixture
def dual_stack_case(ovn_lab, ovn_hub, placement, request):
    """ovn_case for IPv4 VIPs of `placement`, whose rows the test gives
    IPv6 VIPs too (without the family parameter: both in each run)."""
    if not ovn_lab.topology.roles.datapath(placement):
        pytest.skip(f"topology {ovn_lab.topology.name} has no {PLACEMENTS[placement].what}: "
                    "no load balancer can be placed there")
    if 6 not in ovn_lab.topology.families:
        pytest.skip(f"topology {ovn_lab.topology.name} has no IPv6 addresses")
    lbs = LoadBalancers(ovn_lab, ovn_hub, placement, 4)
    ovn_hub.reset()
    ovn_lab.reset()
    yield Case(ovn_lab, ovn_hub, lbs, request.node)
    lbs.remove_all()


@pytest.mark.ovnlb(proves=("health_check", "ipv6_vips",), needs=("udp_health_check",))
def test_udp_health_check_takes_dead_server_out_and_back(dual_stack_case, ovn_sb):
    """Both servers up: the four monitors online, and UDP flows to each VIP
    reach both servers (the control).  One server stopped: its two monitors
    turn offline and every new flow reaches the other.  Restarted: online
    again, and new flows reach it again."""
    case, lab = dual_stack_case, dual_stack_case.lab
    lb = case.lb(case.servers(2), protocol="udp", health_check=HEALTH_CHECK)
    twin = case.lbs.add_vip(lb, 6)
    api = lab.nb.api
    row = api.lb_get(lb.name).execute(check_error=True)
    with lab.nb.transaction() as txn:
        txn.add(api.db_set("Load_Balancer", row.uuid,
                           ("ip_port_mappings", case.lbs.ip_port_mappings(twin.servers))))
        txn.add(api.lb_add_health_check(lb.name, twin.vip_key,
                                        **{k: str(v) for k, v in HEALTH_CHECK.items()}))
    case.lbs.sync()
    node = case.client("internal")
    vips = (lb, twin)
    dead = [v.servers[0] for v in vips]
    alive = [v.servers[1] for v in vips]
    where = f"{lb.vip_key} and {twin.vip_key}/udp on {'/'.join(lb.attached)} ({lab.summary})"

    def sample(state, statuses, **kw):
        wait(ovn_sb, lab.names, statuses, f"UDP health check on {where}: {state}")
        case.lbs.sync()
        for vip in vips:
            results = case.fresh(node, vip, SAMPLES, proto="udp")
            case.expect_served(results, vip, node, what=state, **kw)

    sample("both servers up", {s: "online" for s in dead + alive})
    case.hub.stop(dead[0], "udp")
    sample(f"{dead[0].target}'s server stopped, offline", {s: "offline" for s in dead},
           by=alive[0].target)
    case.hub.serve([dead[0]], "udp")
    sample(f"{dead[0].target}'s server restarted, back online",
           {s: "online" for s in dead + alive})
