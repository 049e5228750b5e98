"""Who answers for a gateway router's VIP, and who can route to it.

- `options:neighbor_responder`: the routers a load balancer is applied to
  answer ARP (IPv4) and neighbour solicitations (IPv6) for its VIPs: by
  default (`reachable`) only for VIPs inside one of their subnets, with
  `all` for every VIP, with `none` for none (ovn-nb(5)).  Asked from a host
  on the provider network, the gateway router's port there answers with its
  own MAC, or nothing does.  Since OVN 26.03.1 (and 25.03.3, 24.03.8) a
  logical switch no longer passes a multicast neighbour solicitation to a
  router unless the target is one it knows the router answers for, so
  `all` no longer gets IPv6 VIPs outside the router's subnets answered
  (versions.py: switch_ns_to_routers_only_for_their_addresses); asked by a
  solicitation unicast to the router's MAC, it still answers as the option
  says.
- `options:add_route`: routers sharing a switch with the load balancer's
  router get a route to each of its IPv4 VIPs (ovn-northd builds routes for
  IPv4 VIPs only), so no static route is needed to reach a VIP the
  neighbour would otherwise send elsewhere.

Router placement only: both options concern the routers a load balancer is
applied to; a switch's load balancer has no router port of its own that
could answer, nor neighbours to route to it."""

import ipaddress
import subprocess

import pytest

from pytest_ovnlb.engine import logical
from pytest_ovnlb.verdicts import checks

pytestmark = pytest.mark.router

# Outside every subnet of every topology (documentation ranges, RFC 5737 / 3849)
OUTSIDE_VIP = {4: "192.0.2.254", 6: "2001:db8::254"}
# A negative answer costs this long: three requests spread over it
PROBE_TIMEOUT = 0.5
EXPECTED = {  # mode -> (VIP inside the router's subnet answered, VIP outside answered)
    None: (True, False),  # the default, reachable
    "all": (True, True),
    "none": (False, False),
}


def router_mac(lab, router: str, switch: str) -> str:
    return next(p.mac for p in lab.topology.router(router).ports if p.switch == switch)


@pytest.mark.parametrize("mode", [
    pytest.param("all", marks=[
        pytest.mark.ovnlb(needs=("neighbor_responder",))]),
    pytest.param("none", marks=pytest.mark.ovnlb(needs=("neighbor_responder_none",))),
])
@pytest.mark.ovnlb(proves=("router_arp_only_own_subnets",))
@pytest.mark.ovnlb(proves=("switch_ns_to_routers_only_for_their_addresses",), family="ipv6")
def test_neighbor_responder_decides_who_answers_for_a_vip(ovn_lab, ovn_lbs, ovn_hub, ovn_case,
                                                          roles, client_node, placement, mode):
    """One load balancer on the gateway router with two VIPs, one inside its
    provider subnet and one outside every subnet, asked for from a host on
    the provider network: without the option only the first is answered
    (also the control: the router answers at all), with
    neighbor_responder=all both, with none neither."""
    node = client_node("external")
    mac = router_mac(ovn_lab, roles.gateway_router, ovn_lab.topology.provider.switch)
    lb = ovn_lbs(ovn_lbs.servers(1))
    outside = ovn_lbs.add_vip(lb, ovn_lbs.family, vip=OUTSIDE_VIP[ovn_lbs.family])
    vips = [ipaddress.ip_address(v).compressed for v in (lb.vip, outside.vip)]
    agent = ovn_hub.agent(node)

    # IPv6 solicitations to the solicited-node group for a VIP outside the
    # router's subnets stop at the switch: asked unicast, the router answers
    # as the option says.
    unforwarded = ovn_lbs.family == 6 and ovn_case.holds(
        "switch_ns_to_routers_only_for_their_addresses")
    what = "ARP request" if ovn_lbs.family == 4 else "neighbour solicitation"
    asked = ("a broadcast ARP request" if ovn_lbs.family == 4
             else "a neighbour solicitation to the solicited-node group")

    def check(option):
        wanted = dict(zip(vips, EXPECTED[option]))
        probes = [(asked, None, {**wanted, vips[1]: False} if unforwarded else wanted)]
        if unforwarded:
            probes.append((f"a {what} unicast to {mac}", mac, wanted))
        for how, to, expected in probes:
            answers = agent.solicit(ovn_lbs.address(node), vips, timeout=PROBE_TIMEOUT, to=to)
            seen = {vip: mac in answers[vip] for vip in vips}
            assert seen == expected, (
                f"neighbor_responder={option or '(unset, reachable)'}: " + checks.context(
                    lb, placement, node,
                    f"{roles.gateway_router}'s {mac} answering {how} for "
                    + ", ".join(f"{v}: {'yes' if w else 'no'}" for v, w in expected.items()),
                    "answers (MACs) " + ", ".join(f"{v}: {answers[v] or 'none'}" for v in vips),
                    ovn_lab))

    check(None)
    ovn_lbs.set_options(lb, {"neighbor_responder": mode})
    check(mode)


def routes_to(lab, router: str, vip: str) -> list[str]:
    """`router`'s logical flows in lr_in_ip_routing matching packets to `vip`."""
    out = subprocess.run(lab.ctl_command("sb") + ["lflow-list", lab.names.nb(router)],
                         capture_output=True, text=True, timeout=30, check=True).stdout
    return [" ".join(line.split()) for line in out.splitlines()
            if "lr_in_ip_routing" in line and f"ip4.dst == {vip}/32" in line]


@pytest.mark.ipv4
@pytest.mark.ovnlb(needs=("add_route_gateway_router",))
def test_add_route_gives_neighbour_routers_a_route_to_the_vip(ovn_lab, ovn_lbs, ovn_hub, ovn_sb,
                                                              roles, client_node,
                                                              placement):
    """A VIP on the gateway router, chosen inside the servers' subnet:
    the distributed router between client and gateway router delivers it
    on that subnet, where nothing has it, so connections time out, and it
    has no route for it.  With add_route=true it gets a /32 route to the VIP
    through its port towards the gateway router, and the same client is
    served.  neighbor_responder=all throughout, so the gateway router
    answers the neighbour's ARP for the VIP (northd gives a distributed
    router no static binding for it)."""
    topo, neighbour = ovn_lab.topology, roles.distributed_router
    node = client_node("internal")
    vip = topo.free_address(roles.server_switch, 4)
    # the neighbour's port on the switch it shares with the gateway router
    shared = {p.switch for p in topo.router(roles.gateway_router).ports}
    link = next(p.switch for p in topo.router(neighbour).ports if p.switch in shared)
    port = ovn_lab.names.nb(logical.router_port(neighbour, link))
    lb = ovn_lbs(ovn_lbs.servers(2), vip=vip, options={"neighbor_responder": "all"})
    try:
        assert routes_to(ovn_lab, neighbour, vip) == [], (
            f"without add_route, {neighbour} has a route to the VIP: " + checks.context(
                lb, placement, node, f"no lr_in_ip_routing flow of {neighbour} for {vip}",
                routes_to(ovn_lab, neighbour, vip), ovn_lab))
        unrouted = ovn_hub.connect(node, lb.vip, lb.port, 4, timeout=1.0)
        assert checks.tally(unrouted) == {"error:timeout": 4}, (
            f"without add_route, {neighbour} should deliver {vip} on {roles.server_switch}: "
            + checks.context(lb, placement, node, "every connection timing out", unrouted,
                             ovn_lab))

        ovn_lbs.set_options(lb, {"neighbor_responder": "all", "add_route": "true"})
        routes = routes_to(ovn_lab, neighbour, vip)
        assert len(routes) == 1 and f'outport = "{port}"' in routes[0], (
            f"add_route=true gave {neighbour} no route to the VIP: " + checks.context(
                lb, placement, node, f"one lr_in_ip_routing flow for {vip}/32 out of {port}",
                routes or "none", ovn_lab))
        # The first packets wait for the neighbour's ARP for the VIP: the
        # connection that sends them may be lost, the next ones are not.
        ovn_hub.connect(node, lb.vip, lb.port, 1, timeout=1.0)
        try:
            ovn_sb.wait(lambda: learned(ovn_sb, port, vip), 5.0, "MAC_Binding")
        except TimeoutError:
            pytest.fail(f"with add_route=true, {neighbour} never learned {vip}'s MAC on {port} "
                        f"(no Southbound MAC_Binding) [{ovn_lab.summary}]", pytrace=False)
        # Sample once every chassis has installed the flows of that binding:
        # sampled while ovn-controller was still at it (twice in 8 runs on
        # 25.03), one connection's reply left the gateway router SNATed to
        # its own address and the connection timed out.
        ovn_lbs.sync()
        routed = ovn_hub.connect(node, lb.vip, lb.port, 16, timeout=1.0)
        assert all(r.ok for r in routed) and set(checks.tally(routed)) <= set(lb.targets), (
            f"add_route=true, the VIP routed by {neighbour}: " + checks.context(
                lb, placement, node, "every connection served", routed, ovn_lab))
    finally:
        forget(ovn_sb, port, vip)


def learned(sb, port: str, ip: str) -> list:
    return [r for r in sb.rows("MAC_Binding") if r.logical_port == port and r.ip == ip]


def forget(sb, port: str, ip: str) -> None:
    """Remove what `port` learned for `ip`: the next run starts clean."""
    for row in learned(sb, port, ip):
        sb.api.db_destroy("MAC_Binding", row.uuid).execute(check_error=True)
