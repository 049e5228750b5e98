"""The source address a server sees ("proxy mode"): a gateway router keeps
the address of a client on its own external network but applies its SNAT to
clients routed through it from inside; a distributed router keeps the
address of a client that comes in through its gateway port; a switch load
balancer never rewrites the source, except when a server is balanced to
itself (hairpin)."""

import pytest

from pytest_ovnlb.verdicts import checks


def sources_of(ovn_case, node, count=60):
    """What every server saw of `node`'s connections, and what it should."""
    lb = ovn_case.lb(ovn_case.servers(2))
    seen = ovn_case.expect_served(ovn_case.fresh(node, lb, count), lb, node)
    expected = {target: {ovn_case.source(node)} for target in lb.targets}
    return lb, seen, expected


def keeps_its_address(ovn_case, role: str, through: str) -> None:
    node = ovn_case.client(role)
    lb, seen, expected = sources_of(ovn_case, node)
    ovn_case.expect_sources(lb, node, seen, expected,
                            f"servers should see the {role} client {node} as "
                            f"{ovn_case.source(node)} through the {through}")


@pytest.mark.router
@pytest.mark.ovnlb(proves=("source_ip",))
def test_gateway_router_keeps_external_client_address(ovn_case):
    """A gateway router SNATs only what it routes from inside."""
    keeps_its_address(ovn_case, "external", "gateway router")


@pytest.mark.dgp
@pytest.mark.ovnlb(proves=("source_ip",))
def test_gateway_port_keeps_external_client_address(ovn_case):
    """A distributed router has no SNAT for load-balanced traffic
    (lb_force_snat_ip is for gateway routers only): the client's address
    on the gateway port's subnet reaches the servers."""
    keeps_its_address(ovn_case, "external", "distributed gateway port")


@pytest.mark.router
@pytest.mark.ovnlb(proves=("source_ip",))
def test_gateway_router_snats_internal_client(ovn_case):
    """An inside client routed through the gateway router reaches the
    servers as the router's SNAT address."""
    keeps_its_address(ovn_case, "internal", "gateway router")


@pytest.mark.switch
@pytest.mark.ovnlb(proves=("source_ip",))
def test_switch_lb_keeps_client_address(ovn_case):
    keeps_its_address(ovn_case, "internal", "client's switch")


@pytest.mark.ovnlb(proves=("source_ip",))
@pytest.mark.ovnlb(proves=("switch_self_hairpin",), placement="switch")
def test_server_reaching_the_vip(ovn_case, control):
    """A server connects to its own VIP.  Through the gateway router it is
    SNATed like any inside client.  On its own switch, OVN hairpins: when it
    is picked itself it sees the VIP as source (since OVN 20.03), otherwise
    the other server sees its real address; before 20.03 the connections
    balanced to itself time out (the control shows it reaches both servers
    by their addresses, so only the missing hairpin explains that)."""
    me, other = servers = ovn_case.servers(2)
    control(me.vm, servers)
    routed = ovn_case.where.internal_source == "snat"
    lb = ovn_case.lb(servers, attach_to=None if routed else [ovn_case.roles.server_switch])
    results = ovn_case.fresh(me.vm, lb, 60)
    snat = ovn_case.source(ovn_case.roles.internal_client)
    hairpin = routed or ovn_case.holds("switch_self_hairpin")
    expected = ({me.target: {snat}, other.target: {snat}} if routed else
                {me.target: {lb.vip}, other.target: {me.ip}} if hairpin else
                {other.target: {me.ip}})
    ovn_case.expect_sources(lb, me.vm, checks.peers_by_server(results), expected,
                            "expected sources per server differ")
    if hairpin:
        ovn_case.expect_served(results, lb, me.vm)
    else:
        ovn_case.expect_lost([r for r in results if not r.ok], lb, me.vm,
                             "before OVN 20.03 self-balanced connections time out",
                             error="timeout")
