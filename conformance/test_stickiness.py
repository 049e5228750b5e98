"""A connection, once balanced, stays on its server: every request on a
keep-alive connection reaches the same web server, and an established
connection survives edits of the VIP's server list."""

import pytest


# Stickiness holds wherever OVN balances: every placement, its served client.
@pytest.mark.router
@pytest.mark.switch
@pytest.mark.dgp
@pytest.mark.ovnlb(proves=("stickiness",))
def test_keepalive_requests_all_reach_one_server(ovn_case):
    lb = ovn_case.lb(ovn_case.servers(3))
    node = ovn_case.client("served")
    with ovn_case.hub.agent(node).session(lb.vip, lb.port) as session:
        results = session.get(200)
    ovn_case.expect_pinned(results, lb, node, "requests failed, or one keep-alive connection "
                           "was spread over servers or had to reconnect", one_connection=True)


@pytest.mark.router
@pytest.mark.switch
@pytest.mark.dgp
@pytest.mark.ovnlb(proves=("stickiness",))
def test_established_connection_survives_server_list_changes(ovn_case):
    node = ovn_case.client("served")
    pool = ovn_case.servers(4)
    servers = pool[:3]
    lb = ovn_case.lb(servers)
    with ovn_case.hub.agent(node).session(lb.vip, lb.port) as session:
        first = session.get(1)[0]
        ovn_case.expect_pinned([first], lb, node, "first request failed", one_connection=True)

        def still_pinned(change):
            """The connection stays on its server; new ones use the servers now listed."""
            ovn_case.expect_pinned(session.get(20), lb, node, f"after {change}, the "
                                   "established connection moved", first, one_connection=True)
            ovn_case.expect_served(ovn_case.fresh(node, lb, 200), lb, node,
                                   what=f"new connections after {change}")

        # Remove a server other than the pinned one: new connections avoid it.
        removed = next(b for b in servers if b.target != first.target)
        remaining = [b for b in servers if b != removed]
        ovn_case.lbs.set_servers(lb, remaining)
        still_pinned(f"removing {removed.target}")

        # Add a server that was never in the list: new connections reach it.
        added = pool[3]
        ovn_case.lbs.set_servers(lb, remaining + [added])
        still_pinned(f"adding {added.target}")
