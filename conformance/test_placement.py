"""Where a load balancer must sit to serve a client.

A switch load balancer acts on traffic entering the switch from VIF ports,
never on traffic arriving from a router port, so one placed only on the
servers' switch does not serve clients routed in from another switch.

A distributed router with a distributed gateway port balances only on the
gateway chassis (its DNAT flows match `is_chassis_resident` of the gateway
port): clients whose traffic enters through the gateway port are served, a
VM whose traffic reaches the router from inside, on another chassis, is not."""

import pytest

from pytest_ovnlb.verdicts import checks


@pytest.mark.switch
@pytest.mark.ovnlb(proves=("placement",))
def test_lb_on_client_switch_serves_client(ovn_lab, ovn_lbs, ovn_hub, roles, client_node,
                                           placement):
    lb = ovn_lbs(ovn_lbs.servers(2), attach_to=[roles.client_switch])
    node = client_node("internal")
    results = ovn_hub.connect(node, lb.vip, lb.port, 60)
    assert all(r.ok for r in results) and {r.target for r in results} == set(lb.targets), (
        "connections failed or a server unused: " + checks.context(
            lb, placement, node, f"every connection served, by {sorted(lb.targets)}",
            results, ovn_lab))


@pytest.mark.switch
@pytest.mark.ovnlb(proves=("placement",))
def test_lb_only_on_server_switch_does_not_serve_other_switch(ovn_lab, ovn_lbs, ovn_hub, roles,
                                                             client_node, placement, control):
    """Control first: the client reaches the servers by their addresses, and
    the same VIP on the client's own switch serves it; then the VIP only on
    the servers' switch does not."""
    servers = ovn_lbs.servers(2)
    node = client_node("internal")
    control(node, servers)
    lb = ovn_lbs(servers, attach_to=[roles.client_switch])
    served = ovn_hub.connect(node, lb.vip, lb.port, 16)
    assert checks.tally(served).keys() == set(lb.targets) and all(r.ok for r in served), (
        "control failed, the VIP on the client's switch: " + checks.context(
            lb, placement, node, "every connection served", served, ovn_lab))
    ovn_lbs.remove(lb)

    lb = ovn_lbs(servers, attach_to=[roles.server_switch])
    results = ovn_hub.connect(node, lb.vip, lb.port, 16, timeout=1.0)
    assert checks.tally(results) == {"error:timeout": 16}, (
        f"a load balancer only on {roles.server_switch} answered a client on "
        f"{roles.client_switch}: " + checks.context(
            lb, placement, node, "every connection to time out", results, ovn_lab))


@pytest.mark.switch
@pytest.mark.ovnlb(proves=("placement",))
def test_server_switch_lb_ignores_traffic_from_router_port(ovn_lab, ovn_lbs, ovn_hub, roles,
                                                           client_node, placement, request, family,
                                                           control):
    """Route the VIP into the server switch, towards the first server: the
    client's SYNs arrive there with the VIP still as destination (not
    translated), and no server accepts them."""
    servers = ovn_lbs.servers(2)
    node = client_node("internal")
    control(node, servers)  # the routed path to the servers works
    lb = ovn_lbs(servers, attach_to=[roles.server_switch])
    gateway_vm = servers[0]
    nb = ovn_lab.nb
    prefix = f"{lb.vip}/{32 if family == 4 else 128}"
    router = ovn_lab.names.nb(roles.distributed_router)
    nb.api.lr_route_add(router, prefix, gateway_vm.ip).execute(check_error=True)
    request.addfinalizer(lambda: nb.api.lr_route_del(
        router, prefix, if_exists=True).execute(check_error=True))
    ovn_lbs.sync()

    source = ovn_lbs.address(node)
    with ovn_hub.agent(servers[0].vm).capture("tcp", dport=lb.port) as first, \
            ovn_hub.agent(servers[1].vm).capture("tcp", dport=lb.port) as second:
        results = ovn_hub.connect(node, lb.vip, lb.port, 4, timeout=1.5)
    arrived = [p for p in first.packets if p.direction == "in" and "S" in p.flags]
    assert checks.tally(results) == {"error:timeout": 4}, (
        f"routed to {gateway_vm.vm}, the VIP answered: " + checks.context(
            lb, placement, node, "every connection to time out", results, ovn_lab))
    assert arrived, f"no SYN reached {gateway_vm.vm} although {prefix} is routed to it"
    assert {(p.src, p.dst) for p in arrived} == {(source, lb.vip)}, (
        f"SYNs should reach {gateway_vm.vm} untranslated ({source} -> {lb.vip}); "
        f"saw {sorted({(p.src, p.dst) for p in arrived})}")
    translated = [p for p in first.packets + second.packets if p.dst != lb.vip]
    assert not translated, f"the switch load balancer translated routed traffic: {translated}"


@pytest.mark.dgp
@pytest.mark.ovnlb(proves=("placement",))
def test_gateway_port_lb_serves_only_what_enters_through_it(ovn_lab, ovn_lbs, ovn_hub, roles,
                                                           client_node, placement, control):
    """Controls first: the internal client reaches the servers by their
    addresses, and the external client is served through the gateway port.
    Then the internal client, whose traffic reaches the router from inside
    on another chassis than the gateway chassis, gets no translation: its
    SYNs to the VIP time out and none reaches a server, translated or not."""
    topo = ovn_lab.topology
    gateway = next(p.gateway_chassis for p in topo.router(roles.dgp_router).ports
                   if p.gateway_chassis)
    internal, external = client_node("internal"), client_node("external")
    assert topo.vm(internal).chassis != gateway, (
        f"topology {topo.name}: the internal client {internal} must not be on the gateway "
        f"chassis {gateway} for this test")
    servers = ovn_lbs.servers(2)
    control(internal, servers)
    lb = ovn_lbs(servers)
    # one connection first, not judged: an external client's first burst
    # through the gateway port can lose most of its SYNs on a loaded
    # fake-multinode cluster (10 of 16, IPv6) while the path is set up
    ovn_hub.connect(external, lb.vip, lb.port, 1)
    served = ovn_hub.connect(external, lb.vip, lb.port, 16)
    assert checks.tally(served).keys() == set(lb.targets) and all(r.ok for r in served), (
        "control failed, the external client through the gateway port: " + checks.context(
            lb, placement, external, f"every connection served, by {sorted(lb.targets)}",
            served, ovn_lab))

    # any port: a translated SYN arrives for a server's port, an untranslated one for the VIP's
    with ovn_hub.agent(servers[0].vm).capture("tcp") as first, \
            ovn_hub.agent(servers[1].vm).capture("tcp") as second:
        results = ovn_hub.connect(internal, lb.vip, lb.port, 4, timeout=1.0)
    assert checks.tally(results) == {"error:timeout": 4}, (
        f"{internal} on a chassis without the gateway port was answered: " + checks.context(
            lb, placement, internal, "every connection to time out", results, ovn_lab))
    source = ovn_lbs.address(internal)
    arrived = [p for p in first.packets + second.packets
               if p.direction == "in" and p.src == source]
    assert not arrived, (
        f"packets of {internal}'s connections to {lb.vip_key} reached a server: {arrived}")
