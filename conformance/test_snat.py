"""The source address servers see when the gateway router is told to
SNAT load-balanced traffic: `options:lb_force_snat_ip` on the router (an
address per family, or `router_ip`: the address of the router port that
leads to the servers) applies to every client, the external one on the
router's own network included; a load balancer with `options:skip_snat=true`
is exempt from it while another one on the same router is not."""

import ipaddress

import pytest


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


def seen_as(ovn_case, lb, node, expected: str, what: str, count=30) -> None:
    """`count` new connections from `node`, each served, every server
    used, and every server seeing `expected` as their source."""
    seen = ovn_case.expect_served(ovn_case.fresh(node, lb, count, timeout=2.0), lb, node,
                                  what=what)
    ovn_case.expect_sources(lb, node, seen, {t: {expected} for t in lb.targets}, what)


def default_sources(ovn_case, lb, node, role) -> None:
    """Control, before the router's option is set: the servers see the
    internal client as the router's SNAT address and the external one as
    itself.  It also has the gateway router learn the external client's
    MAC address first: with lb_force_snat_ip, the SYN-ACK of a connection
    for which the router must still resolve the client is dropped, and the
    client's retransmitted SYN then reaches the server without the forced
    SNAT, so that connection is reset (seen with OVN 23.03 and 26.03 on the
    userspace datapath)."""
    expected = ovn_case.source(node)
    seen_as(ovn_case, lb, node, expected, f"control failed: before the option, servers "
            f"should see the {role} client {node} as {expected}", count=16)


def forced_everywhere(ovn_case, lb, router_option, value: str, expected: str, as_what: str):
    """Controls for both clients, then the gateway router's lb_force_snat_ip
    set to `value`: the servers see both clients as `expected`."""
    roles = ovn_case.roles
    for role in ("internal", "external"):
        default_sources(ovn_case, lb, ovn_case.client(role), role)
    router_option(roles.gateway_router, "lb_force_snat_ip", value)
    for role in ("internal", "external"):
        node = ovn_case.client(role)
        seen_as(ovn_case, lb, node, expected, f"with lb_force_snat_ip={value}, servers should "
                f"see the {role} client {node} as {as_what}")


@pytest.mark.ovnlb(needs=("lb_force_snat_ip",))
def test_lb_force_snat_ip_for_every_client(ovn_case, router_option):
    """lb_force_snat_ip with an IPv4 and an IPv6 address: the servers see
    the address of their family, for the internal client (instead of the
    router's SNAT address) and for the external one (instead of its own).
    Control first: before the option, each client is seen as it would be
    without it."""
    forced = force_snat_ips(ovn_case.lab.topology)
    lb = ovn_case.lb(ovn_case.servers(2))
    forced_everywhere(ovn_case, lb, router_option, " ".join(forced[f] for f in sorted(forced)),
                      forced[ovn_case.family], "that address")


@pytest.mark.ovnlb(needs=("lb_force_snat_router_ip",))
def test_lb_force_snat_router_ip_is_the_port_towards_the_servers(ovn_case, router_option):
    """lb_force_snat_ip=router_ip: the servers see the address of the
    gateway router's port that leads to them (edge1's transit port in the
    lab), from the internal and from the external client.  Control first:
    before the option, each client is seen as it would be without it."""
    lb = ovn_case.lb(ovn_case.servers(2))
    router = ovn_case.roles.gateway_router
    forced_everywhere(ovn_case, lb, router_option, "router_ip",
                      port_towards(ovn_case.lab.topology, router, lb.servers[0].ip),
                      f"{router}'s port towards them")


@pytest.mark.ovnlb(needs=("lb_skip_snat", "lb_force_snat_ip",))
def test_skip_snat_exempts_one_load_balancer(ovn_case, router_option):
    """Two load balancers on the gateway router, which gets lb_force_snat_ip:
    the plain one is force-SNATed (control, after a control without the
    option), the one with skip_snat=true is not: its servers see the
    external client's own address."""
    forced = force_snat_ips(ovn_case.lab.topology)
    node = ovn_case.client("external")
    plain = ovn_case.lb(ovn_case.servers(2))
    skipped = ovn_case.lb(ovn_case.servers(2), options={"skip_snat": "true"})
    default_sources(ovn_case, plain, node, "external")
    router_option(ovn_case.roles.gateway_router, "lb_force_snat_ip",
                  " ".join(forced[f] for f in sorted(forced)))
    seen_as(ovn_case, plain, node, forced[ovn_case.family], "control failed: without "
            f"skip_snat, the router's lb_force_snat_ip {forced[ovn_case.family]} should apply")
    seen_as(ovn_case, skipped, node, ovn_case.lbs.address(node), "with skip_snat=true, servers "
            f"should see the external client {node} as its own address, not the router's "
            "lb_force_snat_ip")
