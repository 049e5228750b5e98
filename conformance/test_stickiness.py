"""A connection, once balanced, stays on its server: every request on a
keep-alive connection reaches the same web server, and an established
connection survives edits of the VIP's server list."""

import pytest

from pytest_ovnlb.verdicts import checks


# Stickiness holds wherever OVN balances: every placement, its served client.
@pytest.mark.router
@pytest.mark.switch
@pytest.mark.dgp
@pytest.mark.ovnlb(proves=("stickiness",))
def test_keepalive_requests_all_reach_one_server(ovn_lab, ovn_lbs, ovn_hub, client_node,
                                                  placement):
    lb = ovn_lbs(ovn_lbs.servers(3))
    node = client_node("served")
    with ovn_hub.agent(node).session(lb.vip, lb.port) as session:
        results = session.get(200)
    assert all(r.ok for r in results), "requests failed: " + checks.context(
        lb, placement, node, "200 answers on one connection", results, ovn_lab)
    assert len({r.target for r in results}) == 1, (
        "one keep-alive connection was spread over servers: " + checks.context(
            lb, placement, node, "one server", results, ovn_lab))
    # Ports are known for answered requests; None would make every set {None}.
    local = {r.local_port for r in results}
    peer = {r.peer_port for r in results}
    assert None not in local | peer, f"a port is unknown: local {local}, seen {peer}"
    assert len(local) == 1, f"the client had to reconnect: local ports {sorted(local)}"
    assert len(peer) == 1, (
        f"the server saw more than one client port on one connection: {sorted(peer)}")


@pytest.mark.router
@pytest.mark.switch
@pytest.mark.dgp
@pytest.mark.ovnlb(proves=("stickiness",))
def test_established_connection_survives_server_list_changes(ovn_lab, ovn_lbs, ovn_hub,
                                                              client_node, placement):
    node = client_node("served")
    pool = ovn_lbs.servers(4)
    servers = pool[:3]
    lb = ovn_lbs(servers)
    with ovn_hub.agent(node).session(lb.vip, lb.port) as session:
        first = session.get(1)[0]
        assert first.ok and first.local_port is not None, (
            f"first request failed: {first.error}")

        def still_pinned(change):
            after = session.get(20)
            assert {r.target for r in after} == {first.target}, (
                f"after {change}, the established connection moved: " + checks.context(
                    lb, placement, node, f"every request on {first.target}", after, ovn_lab))
            assert {r.local_port for r in after} == {first.local_port}, (
                f"after {change}, the client had to reconnect")
            return ovn_hub.connect(node, lb.vip, lb.port, 200)

        # Remove a server other than the pinned one: new connections avoid it.
        removed = next(b for b in servers if b.target != first.target)
        remaining = [b for b in servers if b != removed]
        ovn_lbs.set_servers(lb, remaining)
        fresh = still_pinned(f"removing {removed.target}")
        assert checks.tally(fresh)[removed.target] == 0 and all(r.ok for r in fresh), (
            f"new connections after removing {removed.target}: {checks.summary(fresh)}")

        # Add a server that was never in the list: new connections reach it.
        added = pool[3]
        ovn_lbs.set_servers(lb, remaining + [added])
        fresh = still_pinned(f"adding {added.target}")
        assert checks.tally(fresh)[added.target] > 0 and all(r.ok for r in fresh), (
            f"new connections never reached the added {added.target}: {checks.summary(fresh)}")
