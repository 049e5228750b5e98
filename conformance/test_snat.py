"""The source address servers see when the gateway router is told to
SNAT load-balanced traffic: `options:lb_force_snat_ip` on the router (an
address per family, or `router_ip`: the address of the router port that
leads to the servers) applies to every client, the external one on the
router's own network included; a load balancer with `options:skip_snat=true`
is exempt from it while another one on the same router is not."""

import ipaddress

import pytest

from pytest_ovnlb.reporting import measure
from pytest_ovnlb.verdicts import checks

pytestmark = pytest.mark.router


@pytest.fixture
def router_option(ovn_lab, request):
    """`router_option(router, key, value)`: set one option of a router for
    this test; a finalizer puts back the value it had (or removes the key),
    also after a failure, and waits until every chassis has it."""
    api = ovn_lab.nb.api

    def set_option(router: str, key: str, value: str) -> None:
        name = ovn_lab.names.nb(router)
        before = api.lr_get(name).execute(check_error=True).options.get(key)

        def restore():
            if before is None:
                api.db_remove("Logical_Router", name, "options", key).execute(check_error=True)
            else:
                api.db_set("Logical_Router", name, ("options", {key: before})).execute(
                    check_error=True)
            ovn_lab.sync()
        request.addfinalizer(restore)
        api.db_set("Logical_Router", name, ("options", {key: value})).execute(check_error=True)
        ovn_lab.sync()
    return set_option


def force_snat_ips(topo) -> dict[int, str]:
    """An address per family the topology does not use, on the gateway
    router's external network (the provider switch)."""
    return {f: topo.free_address(topo.provider.switch, f) for f in topo.families}


def port_towards(topo, router: str, ip: str) -> str:
    """The address (of `ip`'s family) of `router`'s port that leads to `ip`:
    the port on its subnet, else the port on the subnet of the next hop of
    the route that covers it."""
    target = ipaddress.ip_address(ip)

    def port_on(address) -> str:
        for port in topo.router(router).ports:
            for text in (port.ip, port.ip6):
                if text and address in ipaddress.ip_interface(text).network:
                    return str(ipaddress.ip_interface(text).ip)
        return ""

    found = port_on(target)
    for prefix, hop in topo.router(router).routes:
        if not found and target in ipaddress.ip_network(prefix):
            found = port_on(ipaddress.ip_address(hop))
    assert found, f"no port of {router} leads to {ip}"
    return found


def sources(ovn_lab, ovn_hub, lb, placement, node, how, count=30) -> dict[str, set[str]]:
    results = ovn_hub.connect(node, lb.vip, lb.port, count, timeout=2.0)
    return checks.served(results, lb, placement, node, ovn_lab, how)


def default_sources(ovn_lab, ovn_lbs, ovn_hub, lb, placement, node, role) -> None:
    """Control, before the router's option is set: the servers see the
    internal client as the router's SNAT address and the external one as
    itself.  It also has the gateway router learn the external client's
    MAC address first: with lb_force_snat_ip, the SYN-ACK of a connection
    for which the router must still resolve the client is dropped, and the
    client's retransmitted SYN then reaches the server without the forced
    SNAT, so that connection is reset (seen with OVN 23.03 and 26.03 on the
    userspace datapath)."""
    expected = ovn_lbs.snat_ip if role == "internal" else ovn_lbs.address(node)
    label = f"control, without the option, {role} client"
    seen = sources(ovn_lab, ovn_hub, lb, placement, node, label, count=16)
    assert_seen_as(ovn_lab, lb, placement, node, seen, expected,
                   f"control failed: before the option, servers should see the {role} "
                   f"client {node} as {expected}", label)


def assert_seen_as(ovn_lab, lb, placement, node, seen, expected: str, why: str,
                   label: str) -> None:
    measure.current().sources(seen, {b: [expected] for b in seen}, label=label, client=node)
    assert all(peers == {expected} for peers in seen.values()), (
        f"{why}: " + checks.context(lb, placement, node, f"source {expected} at every server",
                                    f"sources {seen}", ovn_lab))


@pytest.mark.ovnlb(needs=("lb_force_snat_ip",))
def test_lb_force_snat_ip_for_every_client(ovn_lab, ovn_lbs, ovn_hub, roles, client_node,
                                           router_option, placement, family):
    """lb_force_snat_ip with an IPv4 and an IPv6 address: the servers see
    the address of their family, for the internal client (instead of the
    router's SNAT address) and for the external one (instead of its own).
    Control first: before the option, each client is seen as it would be
    without it."""
    topo = ovn_lab.topology
    forced = force_snat_ips(topo)
    lb = ovn_lbs(ovn_lbs.servers(2))
    for role in ("internal", "external"):
        default_sources(ovn_lab, ovn_lbs, ovn_hub, lb, placement, client_node(role), role)
    router_option(roles.gateway_router, "lb_force_snat_ip",
                  " ".join(forced[f] for f in sorted(forced)))
    for role in ("internal", "external"):
        node = client_node(role)
        label = f"lb_force_snat_ip, {role} client"
        seen = sources(ovn_lab, ovn_hub, lb, placement, node, label)
        assert_seen_as(ovn_lab, lb, placement, node, seen, forced[family],
                       f"with lb_force_snat_ip={forced[family]}, servers should see the "
                       f"{role} client {node} as that address", label)


@pytest.mark.ovnlb(needs=("lb_force_snat_router_ip",))
def test_lb_force_snat_router_ip_is_the_port_towards_the_servers(
        ovn_lab, ovn_lbs, ovn_hub, roles, client_node, router_option, placement):
    """lb_force_snat_ip=router_ip: the servers see the address of the
    gateway router's port that leads to them (edge1's transit port in the
    lab), from the internal and from the external client.  Control first:
    before the option, each client is seen as it would be without it."""
    lb = ovn_lbs(ovn_lbs.servers(2))
    for role in ("internal", "external"):
        default_sources(ovn_lab, ovn_lbs, ovn_hub, lb, placement, client_node(role), role)
    router_option(roles.gateway_router, "lb_force_snat_ip", "router_ip")
    expected = port_towards(ovn_lab.topology, roles.gateway_router, lb.servers[0].ip)
    for role in ("internal", "external"):
        node = client_node(role)
        label = f"lb_force_snat_ip=router_ip, {role} client"
        seen = sources(ovn_lab, ovn_hub, lb, placement, node, label)
        assert_seen_as(ovn_lab, lb, placement, node, seen, expected,
                       f"with lb_force_snat_ip=router_ip, servers should see the {role} "
                       f"client {node} as {roles.gateway_router}'s port towards them", label)


@pytest.mark.ovnlb(needs=("lb_skip_snat", "lb_force_snat_ip",))
def test_skip_snat_exempts_one_load_balancer(ovn_lab, ovn_lbs, ovn_hub, roles, client_node,
                                             router_option, placement, family):
    """Two load balancers on the gateway router, which gets lb_force_snat_ip:
    the plain one is force-SNATed (control, after a control without the
    option), the one with skip_snat=true is not: its servers see the
    external client's own address."""
    forced = force_snat_ips(ovn_lab.topology)
    node = client_node("external")
    plain = ovn_lbs(ovn_lbs.servers(2))
    skipped = ovn_lbs(ovn_lbs.servers(2), options={"skip_snat": "true"})
    default_sources(ovn_lab, ovn_lbs, ovn_hub, plain, placement, node, "external")
    router_option(roles.gateway_router, "lb_force_snat_ip",
                  " ".join(forced[f] for f in sorted(forced)))
    seen = sources(ovn_lab, ovn_hub, plain, placement, node, "control, without skip_snat")
    assert_seen_as(ovn_lab, plain, placement, node, seen, forced[family],
                   "control failed: without skip_snat, the router's lb_force_snat_ip "
                   f"{forced[family]} should apply", "control, without skip_snat")
    seen = sources(ovn_lab, ovn_hub, skipped, placement, node, "skip_snat=true")
    own = ovn_lbs.address(node)
    assert_seen_as(ovn_lab, skipped, placement, node, seen, own,
                   f"with skip_snat=true, servers should see the external client {node} "
                   "as its own address, not the router's lb_force_snat_ip", "skip_snat=true")
