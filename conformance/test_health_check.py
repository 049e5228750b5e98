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

from pytest_ovnlb.verdicts import monitors

# Probe every second; offline after 2 failed probes, online after 1 answer.
HEALTH_CHECK = {"interval": 1, "timeout": 1, "failure_count": 2, "success_count": 1}
STATUS_TIMEOUT = 15.0
SAMPLES = 200


def wait(sb, names, wanted, why):
    monitors.wait_status(sb, names, wanted, "tcp", STATUS_TIMEOUT, why)


@pytest.mark.ovnlb(needs=("health_check",))
def test_health_check_takes_dead_server_out_and_back(ovn_case, ovn_sb):
    lab, hub = ovn_case.lab, ovn_case.hub
    servers = dead, alive = ovn_case.servers(2)
    lb = ovn_case.lb(servers, health_check=HEALTH_CHECK)
    node = ovn_case.client("internal")
    where = f"{lb.vip_key} on {'/'.join(lb.attached)} ({lab.summary})"

    def sample(state, statuses, **kw):
        wait(ovn_sb, lab.names, statuses, f"health check on {where}: {state}")
        ovn_case.lbs.sync()
        ovn_case.expect_served(ovn_case.fresh(node, lb, SAMPLES), lb, node, what=state, **kw)

    sample("both servers online", {dead: "online", alive: "online"})
    hub.stop(dead)
    sample(f"{dead.target}'s server stopped, offline", {dead: "offline", alive: "online"},
           by=alive.target)
    hub.serve([dead])
    sample(f"{dead.target}'s server restarted, back online", {dead: "online", alive: "online"})
