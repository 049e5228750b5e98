"""The source address a backend sees ("proxy mode"): a gateway router keeps
the address of a client on its own external network but applies its SNAT to
clients routed through it from inside; a distributed router keeps the
address of a client that comes in through its gateway port; a switch load
balancer never rewrites the source, except when a backend is balanced to
itself (hairpin)."""

import pytest

from pytest_ovnlb.reporting import record
from pytest_ovnlb.verdicts import checks
from pytest_ovnlb.verdicts.versions import expects


def seen_sources(ovn_lab, ovn_lbs, ovn_hub, node, placement, count=60):
    lb = ovn_lbs(ovn_lbs.servers(2))
    results = ovn_hub.fresh(node, lb.vip, lb.port, count)
    return lb, checks.served(results, lb, placement, node, ovn_lab)


def keeps_external_address(ovn_lbs, ovn_hub, ovn_lab, client_node, placement, router):
    node = client_node("external")
    expected = ovn_lbs.address(node)
    lb, seen = seen_sources(ovn_lab, ovn_lbs, ovn_hub, node, placement)
    record.current().sources(seen, {b: [expected] for b in seen}, client=node)
    assert all(peers == {expected} for peers in seen.values()), (
        f"backends should see the external client {node} as {expected} through the "
        f"{router}: " + checks.context(lb, placement, node, f"source {expected} at every "
                                       "backend", f"sources {seen}", ovn_lab))


@pytest.mark.router
@pytest.mark.ovnlb_feature(name="source_ip")
def test_gateway_router_keeps_external_client_address(ovn_lbs, ovn_hub, ovn_lab, client_node,
                                                      placement):
    keeps_external_address(ovn_lbs, ovn_hub, ovn_lab, client_node, placement, "gateway router")


@pytest.mark.dgp
@pytest.mark.ovnlb_feature(name="source_ip")
def test_gateway_port_keeps_external_client_address(ovn_lbs, ovn_hub, ovn_lab, client_node,
                                                    placement):
    """A distributed router has no SNAT for load-balanced traffic
    (lb_force_snat_ip is for gateway routers only): the client's address
    on the gateway port's subnet reaches the backends."""
    keeps_external_address(ovn_lbs, ovn_hub, ovn_lab, client_node, placement,
                           "distributed gateway port")


@pytest.mark.router
@pytest.mark.ovnlb_feature(name="source_ip")
def test_gateway_router_snats_internal_client(ovn_lbs, ovn_hub, ovn_lab, roles, client_node,
                                              placement):
    node = client_node("internal")
    lb, seen = seen_sources(ovn_lab, ovn_lbs, ovn_hub, node, placement)
    record.current().sources(seen, {b: [ovn_lbs.snat_ip] for b in seen},
                             client=roles.internal_client)
    assert all(peers == {ovn_lbs.snat_ip} for peers in seen.values()), (
        f"backends should see {node} as the gateway router's SNAT address "
        f"{ovn_lbs.snat_ip}: " + checks.context(
            lb, placement, node, f"source {ovn_lbs.snat_ip} at every backend",
            f"sources {seen}", ovn_lab))


@pytest.mark.switch
@pytest.mark.ovnlb_feature(name="source_ip")
def test_switch_lb_keeps_client_address(ovn_lbs, ovn_hub, ovn_lab, client_node, placement):
    node = client_node("internal")
    expected = ovn_lbs.address(node)
    lb, seen = seen_sources(ovn_lab, ovn_lbs, ovn_hub, node, placement)
    record.current().sources(seen, {b: [expected] for b in seen}, client=node)
    assert all(peers == {expected} for peers in seen.values()), (
        f"backends should see {node} as {expected}: " + checks.context(
            lb, placement, node, f"source {expected} at every backend",
            f"sources {seen}", ovn_lab))


@pytest.mark.ovnlb_feature(name="source_ip")
@pytest.mark.ovnlb_feature(name="switch_self_hairpin", placement="switch")
def test_backend_reaching_the_vip(ovn_lbs, ovn_hub, ovn_lab, roles, placement, control):
    """A backend connects to its own VIP.  Through the gateway router it is
    SNATed like any inside client.  On its own switch, OVN hairpins: when it
    is picked itself it sees the VIP as source (since OVN 20.03), otherwise
    the other backend sees its real address; before 20.03 the connections
    balanced to itself time out (the control shows it reaches both servers
    by their addresses, so only the missing hairpin explains that)."""
    backends = ovn_lbs.servers(2)
    me, other = backends
    control(me.vm, backends)
    attach = None if placement == "router" else [roles.server_switch]
    lb = ovn_lbs(backends, attach_to=attach)
    results = ovn_hub.fresh(me.vm, lb.vip, lb.port, 60)
    counts = checks.tally(results)
    seen = checks.peers_by_backend(results)
    version = ovn_lab.versions.ovn
    hairpin = expects("switch_self_hairpin", version)
    if placement == "router":
        expected = {me.target: {ovn_lbs.snat_ip}, other.target: {ovn_lbs.snat_ip}}
    elif hairpin:
        expected = {me.target: {lb.vip}, other.target: {me.ip}}
    else:
        expected = {other.target: {me.ip}}
    record.current().sources(seen, expected, client=me.vm)
    assert seen == expected, "expected sources per backend differ: " + checks.context(
        lb, placement, me.vm, f"sources {expected}", f"sources {seen}; {checks.summary(results)}",
        ovn_lab)
    if placement == "switch" and not hairpin:
        assert set(counts) == {other.target, "error:timeout"}, (
            "before OVN 20.03 self-balanced connections time out: " + checks.context(
                lb, placement, me.vm, f"{other.target} and timeouts", results, ovn_lab))
    else:
        assert all(r.ok for r in results), "connections failed: " + checks.context(
            lb, placement, me.vm, "every connection served", results, ovn_lab)
