"""`options:ct_flush`: whether removing a server ends its established
connections.

By default (ct_flush=false since OVN 23.06.0 and 23.03.1) a server taken
out of a VIP keeps its established connections: their conntrack entries
still translate them.  With ct_flush=true ovn-controller flushes the
entries of a removed server, so the next packet of such a connection is
balanced as a new one to a server that knows nothing of it, and the
connection ends (a reset).  On a router's load balancer only since OVN
24.03.0 (and 23.09.1), when northd started writing router load balancers
to the Southbound DB: before, ovn-controller never saw them and flushed
nothing (versions.py: ct_flush, ct_flush_router_lb)."""

import pytest

# A request on a connection whose entry was flushed fails at once (reset);
# one that gets no answer at all fails after this long.
REQUEST_TIMEOUT = 1.0


@pytest.mark.ovnlb(needs=("ct_flush",))
@pytest.mark.ovnlb(needs=("ct_flush_router_lb",), placement="router")
def test_ct_flush_ends_connections_of_a_removed_server(ovn_case):
    """A keep-alive connection to the VIP, then its server removed: without
    ct_flush (the control) the connection goes on with the same server
    and client port; with ct_flush=true its next request fails, while new
    connections are served by the server that is left."""
    node = ovn_case.client("internal")
    servers = ovn_case.servers(2)
    lb = ovn_case.lb(servers)
    agent = ovn_case.hub.agent(node)

    def pin_and_remove(session):
        """The session's first answer, after removing its server from the VIP; the rest."""
        first = session.get(1)[0]
        ovn_case.expect_pinned([first], lb, node, "the first request failed",
                               one_connection=True)
        left = [s for s in servers if s.target != first.target]
        ovn_case.lbs.set_servers(lb, left)
        return first, left

    with agent.session(lb.vip, lb.port, timeout=REQUEST_TIMEOUT) as session:
        first, left = pin_and_remove(session)
        kept = session.get(3)
    ovn_case.expect_pinned(kept, lb, node, f"without ct_flush, {first.target} removed from "
                           "the VIP, its established connection", first, one_connection=True)

    ovn_case.lbs.set_options(lb, {"ct_flush": "true"})
    ovn_case.lbs.set_servers(lb, servers)
    with agent.session(lb.vip, lb.port, timeout=REQUEST_TIMEOUT) as session:
        first, left = pin_and_remove(session)
        after = session.get(1)
    ovn_case.expect_lost(after, lb, node, f"with ct_flush=true, {first.target} removed from "
                         "the VIP should end its established connection (client port "
                         f"{first.local_port}): its next request")
    fresh = ovn_case.fresh(node, lb, 16, timeout=REQUEST_TIMEOUT)
    ovn_case.expect_served(fresh, lb, node, by=left[0].target,
                           what="after the flush, new connections")
