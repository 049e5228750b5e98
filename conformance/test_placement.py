"""Where a load balancer must sit to serve a client.

A switch load balancer acts on traffic entering the switch from VIF ports,
never on traffic arriving from a router port, so one placed only on the
servers' switch does not serve clients routed in from another switch.

A distributed router with a distributed gateway port balances only on the
gateway chassis (its DNAT flows match `is_chassis_resident` of the gateway
port): clients whose traffic enters through the gateway port are served, a
VM whose traffic reaches the router from inside, on another chassis, is not."""

import pytest



@pytest.mark.switch
@pytest.mark.ovnlb(proves=("placement",))
def test_lb_on_client_switch_serves_client(ovn_case):
    lb = ovn_case.lb(ovn_case.servers(2), attach_to=[ovn_case.roles.client_switch])
    node = ovn_case.client("internal")
    ovn_case.expect_served(ovn_case.fresh(node, lb, 60), lb, node)


@pytest.mark.switch
@pytest.mark.ovnlb(proves=("placement",))
def test_lb_only_on_server_switch_does_not_serve_other_switch(ovn_case, control):
    """Control first: the client reaches the servers by their addresses, and
    the same VIP on the client's own switch serves it; then the VIP only on
    the servers' switch does not."""
    roles, servers = ovn_case.roles, ovn_case.servers(2)
    node = ovn_case.client("internal")
    control(node, servers)
    lb = ovn_case.lb(servers, attach_to=[roles.client_switch])
    ovn_case.expect_served(ovn_case.fresh(node, lb, 16), lb, node,
                           what="control failed, the VIP on the client's switch")
    ovn_case.lbs.remove(lb)

    lb = ovn_case.lb(servers, attach_to=[roles.server_switch])
    ovn_case.expect_lost(ovn_case.fresh(node, lb, 16, timeout=1.0), lb, node,
                         f"a load balancer only on {roles.server_switch} answered a client "
                         f"on {roles.client_switch}", error="timeout")


@pytest.mark.switch
@pytest.mark.ovnlb(proves=("placement",))
def test_server_switch_lb_ignores_traffic_from_router_port(ovn_case, control, request):
    """Route the VIP into the server switch, towards the first server: the
    client's SYNs arrive there with the VIP still as destination (not
    translated), and no server accepts them."""
    lab, roles, hub = ovn_case.lab, ovn_case.roles, ovn_case.hub
    servers = ovn_case.servers(2)
    node = ovn_case.client("internal")
    control(node, servers)  # the routed path to the servers works
    lb = ovn_case.lb(servers, attach_to=[roles.server_switch])
    gateway_vm = servers[0].vm
    prefix = f"{lb.vip}/{32 if ovn_case.family == 4 else 128}"
    router, api = lab.names.nb(roles.distributed_router), lab.nb.api
    api.lr_route_add(router, prefix, servers[0].ip).execute(check_error=True)
    request.addfinalizer(lambda: api.lr_route_del(
        router, prefix, if_exists=True).execute(check_error=True))
    ovn_case.lbs.sync()

    source = ovn_case.lbs.address(node)
    with hub.agent(servers[0].vm).capture("tcp", dport=lb.port) as first, \
            hub.agent(servers[1].vm).capture("tcp", dport=lb.port) as second:
        results = ovn_case.fresh(node, lb, 4, timeout=1.5)
    ovn_case.expect_lost(results, lb, node, f"routed to {gateway_vm}, the VIP answered",
                         error="timeout")
    arrived = {(p.src, p.dst) for p in first.packets if p.direction == "in" and "S" in p.flags}
    ovn_case.expect(arrived == {(source, lb.vip)}, lb, node,
                    f"{prefix} routed to {gateway_vm}, the SYNs reaching it",
                    f"SYNs {source} -> {lb.vip} (untranslated)", f"SYNs {sorted(arrived)}")
    translated = [p for p in first.packets + second.packets if p.dst != lb.vip]
    ovn_case.expect(not translated, lb, node, "the switch load balancer translated routed "
                    "traffic", "no packet to a server's address", translated)


@pytest.mark.dgp
@pytest.mark.ovnlb(proves=("placement",))
def test_gateway_port_lb_serves_only_what_enters_through_it(ovn_case, control):
    """Controls first: the internal client reaches the servers by their
    addresses, and the external client is served through the gateway port.
    Then the internal client, whose traffic reaches the router from inside
    on another chassis than the gateway chassis, gets no translation: its
    SYNs to the VIP time out and none reaches a server, translated or not."""
    topo, hub = ovn_case.lab.topology, ovn_case.hub
    gateway = next(p.gateway_chassis for p in topo.router(ovn_case.roles.dgp_router).ports
                   if p.gateway_chassis)
    internal, external = ovn_case.client("internal"), ovn_case.client("external")
    assert topo.vm(internal).chassis != gateway, (
        f"topology {topo.name}: the internal client {internal} must not be on the gateway "
        f"chassis {gateway} for this test")
    servers = ovn_case.servers(2)
    control(internal, servers)
    lb = ovn_case.lb(servers)
    # one connection first, not judged: an external client's first burst
    # through the gateway port can lose most of its SYNs on a loaded
    # fake-multinode cluster (10 of 16, IPv6) while the path is set up
    ovn_case.fresh(external, lb, 1)
    ovn_case.expect_served(ovn_case.fresh(external, lb, 16), lb, external, what="control "
                           "failed, the external client through the gateway port")

    # any port: a translated SYN arrives for a server's port, an untranslated one for the VIP's
    with hub.agent(servers[0].vm).capture("tcp") as first, \
            hub.agent(servers[1].vm).capture("tcp") as second:
        results = ovn_case.fresh(internal, lb, 4, timeout=1.0)
    ovn_case.expect_lost(results, lb, internal, f"{internal} on a chassis without the gateway "
                         "port was answered", error="timeout")
    source = ovn_case.lbs.address(internal)
    arrived = [p for p in first.packets + second.packets
               if p.direction == "in" and p.src == source]
    ovn_case.expect(not arrived, lb, internal, f"packets of {internal}'s connections reached a "
                    "server", "none", arrived)
