"""The source address a backend sees ("proxy mode"): a gateway router keeps
the address of a client on its own external network but applies its SNAT to
clients routed through it from inside; a switch load balancer never rewrites
the source, except when a backend is balanced to itself (hairpin)."""

import pytest

from pytest_ovnlb.reporting import record
from pytest_ovnlb.verdicts import checks
from pytest_ovnlb.verdicts.versions import expects


def seen_sources(ovn_lbs, ovn_hub, node, count=60):
    lb = ovn_lbs(ovn_hub.servers(2))
    results = ovn_hub.fresh(node, lb.vip, lb.port, count)
    assert all(r.ok for r in results), f"connections failed: {checks.summary(results)}"
    seen = checks.peers_by_backend(results)
    assert set(seen) == set(lb.targets), f"not every backend answered: {checks.summary(results)}"
    return seen


@pytest.mark.router
def test_gateway_router_keeps_external_client_address(ovn_lbs, ovn_hub, ovn_lab, client_node,
                                                      placement):
    node = client_node("external")
    expected = ovn_lab.topology.address(node)
    seen = seen_sources(ovn_lbs, ovn_hub, node)
    record.current().sources(seen, {b: [expected] for b in seen}, client=node)
    assert all(peers == {expected} for peers in seen.values()), (
        f"backends should see the external client {node} as {expected}; they saw {seen}")


@pytest.mark.router
def test_gateway_router_snats_internal_client(ovn_lbs, ovn_hub, ovn_lab, roles, client_node,
                                              placement):
    seen = seen_sources(ovn_lbs, ovn_hub, client_node("internal"))
    record.current().sources(seen, {b: [roles.router_snat_ip] for b in seen},
                             client=roles.internal_client)
    assert all(peers == {roles.router_snat_ip} for peers in seen.values()), (
        f"backends should see {roles.internal_client} as the gateway router's SNAT address "
        f"{roles.router_snat_ip}; they saw {seen}")


@pytest.mark.switch
def test_switch_lb_keeps_client_address(ovn_lbs, ovn_hub, ovn_lab, client_node, placement):
    node = client_node("internal")
    expected = ovn_lab.topology.address(node)
    seen = seen_sources(ovn_lbs, ovn_hub, node)
    record.current().sources(seen, {b: [expected] for b in seen}, client=node)
    assert all(peers == {expected} for peers in seen.values()), (
        f"backends should see {node} as {expected}; they saw {seen}")


def test_backend_reaching_the_vip(ovn_lbs, ovn_hub, ovn_lab, roles, placement):
    """A backend connects to its own VIP.  Through the gateway router it is
    SNATed like any inside client.  On its own switch, OVN hairpins: when it
    is picked itself it sees the VIP as source (since OVN 20.03), otherwise
    the other backend sees its real address."""
    backends = ovn_hub.servers(2)
    me, other = backends
    attach = None if placement == "router" else [roles.server_switch]
    lb = ovn_lbs(backends, attach_to=attach)
    results = ovn_hub.fresh(me.vm, lb.vip, lb.port, 60)
    counts = checks.tally(results)
    seen = checks.peers_by_backend(results)
    version = ovn_lab.versions.ovn
    if placement == "router":
        expected = {me.target: {roles.router_snat_ip}, other.target: {roles.router_snat_ip}}
    elif expects("switch_self_hairpin", version):
        expected = {me.target: {lb.vip}, other.target: {me.ip}}
    else:
        expected = {other.target: {me.ip}}
    record.current().sources(seen, expected, client=me.vm)
    assert seen == expected, (
        f"{me.vm} -> {lb.vip_key} ({placement} placement, OVN {version}): "
        f"expected sources {expected}, backends saw {seen}; {checks.summary(results)}")
    if expected.keys() == seen.keys() and placement == "switch" and me.target not in expected:
        assert counts["error:timeout"] > 0, "self-balanced connections should fail before 20.03"
    else:
        assert all(r.ok for r in results), f"connections failed: {checks.summary(results)}"
