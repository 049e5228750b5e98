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

from pytest_ovnlb.verdicts import checks

# A request on a connection whose entry was flushed fails at once (reset);
# one that gets no answer at all fails after this long.
REQUEST_TIMEOUT = 1.0


@pytest.mark.ovnlb(needs=("ct_flush",))
@pytest.mark.ovnlb(needs=("ct_flush_router_lb",), placement="router")
def test_ct_flush_ends_connections_of_a_removed_server(ovn_lab, ovn_lbs, ovn_hub, client_node,
                                                        placement):
    """A keep-alive connection to the VIP, then its server removed: without
    ct_flush (the control) the connection goes on with the same server
    and client port; with ct_flush=true its next request fails, while new
    connections are served by the server that is left."""
    node = client_node("internal")
    servers = ovn_lbs.servers(2)
    lb = ovn_lbs(servers)
    agent = ovn_hub.agent(node)

    def pin_and_remove(session):
        """The session's server, after removing it from the VIP; the rest."""
        first = session.get(1)[0]
        assert first.ok and first.local_port is not None, (
            "the first request failed: " + checks.context(
                lb, placement, node, "an answer", [first], ovn_lab))
        left = [s for s in servers if s.target != first.target]
        ovn_lbs.set_servers(lb, left)
        return first, left

    with agent.session(lb.vip, lb.port, timeout=REQUEST_TIMEOUT) as session:
        first, left = pin_and_remove(session)
        kept = session.get(3)
    assert {r.target for r in kept} == {first.target} and all(r.ok for r in kept) and {
        r.local_port for r in kept} == {first.local_port}, (
        f"without ct_flush, {first.target} removed from the VIP: " + checks.context(
            lb, placement, node,
            f"the established connection (client port {first.local_port}) going on "
            f"with {first.target}", kept, ovn_lab))

    ovn_lbs.set_options(lb, {"ct_flush": "true"})
    ovn_lbs.set_servers(lb, servers)
    with agent.session(lb.vip, lb.port, timeout=REQUEST_TIMEOUT) as session:
        first, left = pin_and_remove(session)
        after = session.get(1)
    assert not after[0].ok, (
        f"with ct_flush=true, {first.target} removed from the VIP should end its established "
        "connection: " + checks.context(
            lb, placement, node,
            f"the next request on the connection (client port {first.local_port}) failing",
            after, ovn_lab))
    fresh = ovn_hub.connect(node, lb.vip, lb.port, 16, timeout=REQUEST_TIMEOUT)
    assert checks.tally(fresh) == {left[0].target: 16}, (
        "after the flush, new connections: " + checks.context(
            lb, placement, node, f"every one served by {left[0].target}", fresh, ovn_lab))
