"""A connection, once balanced, stays on its backend: every request on a
keep-alive connection reaches the same web server, and an established
connection survives edits of the VIP's backend list."""

from pytest_ovnlb.verdicts import checks


def test_keepalive_requests_all_reach_one_backend(ovn_lbs, ovn_hub, client_node, placement):
    lb = ovn_lbs(ovn_hub.servers(3))
    with ovn_hub.agent(client_node("internal")).session(lb.vip, lb.port) as session:
        results = session.get(200)
    assert all(r.ok for r in results), f"requests failed: {checks.summary(results)}"
    assert len({r.target for r in results}) == 1, (
        f"one keep-alive connection was spread over backends: {checks.summary(results)}")
    assert len({r.local_port for r in results}) == 1, "the client had to reconnect"
    assert len({r.peer_port for r in results}) == 1, (
        "the backend saw more than one client port on one connection")


def test_established_connection_survives_backend_list_changes(ovn_lbs, ovn_hub, client_node,
                                                              placement):
    node = client_node("internal")
    pool = ovn_hub.servers(4)
    backends = pool[:3]
    lb = ovn_lbs(backends)
    with ovn_hub.agent(node).session(lb.vip, lb.port) as session:
        first = session.get(1)[0]
        assert first.ok, f"first request failed: {first.error}"

        def still_pinned(change):
            after = session.get(20)
            assert {r.target for r in after} == {first.target}, (
                f"after {change}, the established connection moved: "
                f"{checks.summary(after)} (was on {first.target})")
            assert {r.local_port for r in after} == {first.local_port}, (
                f"after {change}, the client had to reconnect")
            return ovn_hub.fresh(node, lb.vip, lb.port, 200)

        # Remove a backend other than the pinned one: new connections avoid it.
        removed = next(b for b in backends if b.target != first.target)
        remaining = [b for b in backends if b != removed]
        ovn_lbs.set_servers(lb, remaining)
        fresh = still_pinned(f"removing {removed.target}")
        assert checks.tally(fresh)[removed.target] == 0 and all(r.ok for r in fresh), (
            f"new connections after removing {removed.target}: {checks.summary(fresh)}")

        # Add a backend that was never in the list: new connections reach it.
        added = pool[3]
        ovn_lbs.set_servers(lb, remaining + [added])
        fresh = still_pinned(f"adding {added.target}")
        assert checks.tally(fresh)[added.target] > 0 and all(r.ok for r in fresh), (
            f"new connections never reached the added {added.target}: {checks.summary(fresh)}")
