"""With a health check (Load_Balancer_Health_Check for the VIP, and
`ip_port_mappings` naming each server's logical port and a probe source
address on its switch), ovn-controller probes every server; one whose server
is stopped is marked offline in the Southbound Service_Monitor table and taken
out of the rotation, so every new connection succeeds on the others; once its
server is back it is marked online and gets new connections again.  Pairs
with test_no_health_check.py.

Both placements: ovn-northd builds the gateway router's DNAT flows from the
same healthy-server list as a switch load balancer's (ovn-northd(8)), and
the probes do not depend on where the load balancer is attached."""

import pytest

from pytest_ovnlb.verdicts import checks, monitors

# Probe every second; offline after 2 failed probes, online after 1 answer.
HEALTH_CHECK = {"interval": 1, "timeout": 1, "failure_count": 2, "success_count": 1}
STATUS_TIMEOUT = 15.0
SAMPLES = 200


def wait(sb, names, wanted, why):
    monitors.wait_status(sb, names, wanted, "tcp", STATUS_TIMEOUT, why)


@pytest.mark.ovnlb(needs=("health_check",))
def test_health_check_takes_dead_server_out_and_back(ovn_lbs, ovn_hub, ovn_lab, ovn_sb,
                                                     client_node, placement):
    servers = ovn_lbs.servers(2)
    dead, alive = servers
    lb = ovn_lbs(servers, health_check=HEALTH_CHECK)
    node = client_node("internal")
    where = f"{lb.vip_key} on {'/'.join(lb.attached)} ({ovn_lab.summary})"

    wait(ovn_sb, ovn_lab.names, {dead: "online", alive: "online"},
         f"health check on {where}: both servers run")
    ovn_lbs.sync()
    before = ovn_hub.connect(node, lb.vip, lb.port, SAMPLES)
    assert all(r.ok for r in before) and set(checks.tally(before)) == set(lb.targets), (
        "both servers online: " + checks.context(
            lb, placement, node, "every connection served, by both", before, ovn_lab))

    ovn_hub.stop(dead)
    wait(ovn_sb, ovn_lab.names, {dead: "offline", alive: "online"},
         f"health check on {where}: {dead.target}'s server stopped")
    ovn_lbs.sync()
    down = ovn_hub.connect(node, lb.vip, lb.port, SAMPLES)
    assert checks.tally(down) == {alive.target: SAMPLES}, (
        f"{dead.target} offline: " + checks.context(
            lb, placement, node, f"every new connection served by {alive.target}", down, ovn_lab))

    ovn_hub.serve([dead])
    wait(ovn_sb, ovn_lab.names, {dead: "online", alive: "online"},
         f"health check on {where}: {dead.target}'s server restarted")
    ovn_lbs.sync()
    back = ovn_hub.connect(node, lb.vip, lb.port, SAMPLES)
    assert all(r.ok for r in back) and checks.tally(back)[dead.target] > 0, (
        f"{dead.target} back online: " + checks.context(
            lb, placement, node, f"every connection served, some by {dead.target}", back,
            ovn_lab))
