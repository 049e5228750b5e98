"""Without a health check OVN keeps balancing to a server whose web server
is down: about its share of new connections is refused, the rest succeed."""

import pytest


@pytest.mark.ovnlb(proves=("distribution",))
def test_dead_server_keeps_its_share_as_refusals(ovn_case, samples):
    servers = dead, alive = ovn_case.servers(2)
    lb = ovn_case.lb(servers)
    node = ovn_case.client("internal")
    # Control: with both servers up the same client is served by both, so
    # refusals later can only come from the stopped server.
    ovn_case.expect_served(ovn_case.fresh(node, lb, 50), lb, node,
                           what="control failed, both servers up")
    ovn_case.hub.stop(dead)
    # refusals are part of this split (the servers the VIP was given, whatever
    # it has now); other errors are lost connections
    ovn_case.expect_split(lb, node, samples(2), f"with {dead.target}'s server stopped and no "
                          f"health check, its share should be refused and the rest served by "
                          f"{alive.target}", targets=[s.target for s in servers],
                          stopped=dead.target)
