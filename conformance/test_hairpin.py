"""options:hairpin_snat_ip: a server that connects to a VIP on its own
switch and is balanced to itself sees the connection come from this address
(one per family) instead of the VIP; a VIP without the option keeps the VIP
as the hairpin source, even when it shares that server (since OVN 21.03)."""

import ipaddress

import pytest

from pytest_ovnlb.reporting import measure
from pytest_ovnlb.verdicts import checks

pytestmark = pytest.mark.switch


def spare_addresses(topo, family: int, count: int) -> list[str]:
    """`count` addresses just above the switch VIP of `family` that are on
    no subnet of the topology and none of its addresses: routed by a VM
    through its gateway, as a VIP is."""
    roles = topo.roles
    used = {ipaddress.ip_address(ip) for ip in (
        roles.switch_vip, roles.switch_vip6, roles.router_vip, roles.router_vip6,
        roles.router_snat_ip, roles.router_snat_ip6) if ip}
    subnets = [ipaddress.ip_network(net) for s in topo.switches
               for net in (s.subnet, s.subnet6) if net]
    found, candidate = [], ipaddress.ip_address(roles.vip("switch", family))
    while len(found) < count:
        candidate += 1
        if candidate not in used and not any(candidate in net for net in subnets):
            found.append(str(candidate))
    return found


def hairpin_option(topo) -> dict[str, str]:
    """hairpin_snat_ip with an address of each family the topology has."""
    return {"hairpin_snat_ip": " ".join(spare_addresses(topo, f, 1)[0] for f in topo.families)}


def self_balanced(ovn_lab, ovn_hub, lb, placement, me, other, hairpin_source, label, count=60):
    """From server `me` to `lb`: every connection served, both servers
    used; `me` sees `hairpin_source`, `other` sees `me`'s own address."""
    results = ovn_hub.connect(me.vm, lb.vip, lb.port, count)
    assert all(r.ok for r in results) and checks.tally(results).keys() == {
        me.target, other.target}, f"{label}: connections failed or a server unused: " + (
        checks.context(lb, placement, me.vm, f"every connection served, by "
                       f"{sorted([me.target, other.target])}", results, ovn_lab))
    seen = checks.peers_by_server(results)
    expected = {me.target: {hairpin_source}, other.target: {me.ip}}
    measure.current().sources(seen, expected, label=label, client=me.vm)
    return seen, expected, results


@pytest.mark.ovnlb(needs=("hairpin_snat_ip",))
def test_hairpin_snat_ip_replaces_the_vip(ovn_lab, ovn_lbs, ovn_hub, roles, placement,
                                          family, control):
    """A server connects to its own VIP on its own switch, the VIP with
    hairpin_snat_ip: balanced to itself it sees the configured address of
    its family, not the VIP; the other server sees its real address.
    Control first: it reaches both servers at their own addresses."""
    servers = ovn_lbs.servers(2)
    me, other = servers
    control(me.vm, servers)
    option = hairpin_option(ovn_lab.topology)
    hairpin = spare_addresses(ovn_lab.topology, family, 1)[0]
    lb = ovn_lbs(servers, attach_to=[roles.server_switch], options=option)
    seen, expected, results = self_balanced(ovn_lab, ovn_hub, lb, placement, me, other, hairpin,
                                            f"hairpin_snat_ip={option['hairpin_snat_ip']}")
    assert seen == expected, (
        f"with hairpin_snat_ip={option['hairpin_snat_ip']}, expected sources per server "
        "differ: " + checks.context(lb, placement, me.vm, f"sources {expected}",
                                    f"sources {seen}; {checks.summary(results)}", ovn_lab))


@pytest.mark.ovnlb(needs=("hairpin_snat_ip",))
def test_hairpin_snat_ip_is_per_vip(ovn_lab, ovn_lbs, ovn_hub, roles, placement,
                                    family, control):
    """Two VIPs on the servers' switch share both servers, the first with
    hairpin_snat_ip, the second without.  From one server, each VIP serves
    it (and the other server); balanced to itself it sees the configured
    address through the first VIP and the second VIP's own address through
    the second.  Control first: it reaches both servers at their own
    addresses."""
    servers = ovn_lbs.servers(2)
    me, other = servers
    control(me.vm, servers)
    option = hairpin_option(ovn_lab.topology)
    hairpin, second_vip = spare_addresses(ovn_lab.topology, family, 2)
    first = ovn_lbs(servers, attach_to=[roles.server_switch], options=option)
    second = ovn_lbs(servers, vip=second_vip, attach_to=[roles.server_switch])
    for lb, source, label in ((first, hairpin, "the VIP with hairpin_snat_ip"),
                              (second, second_vip, "the VIP without hairpin_snat_ip")):
        seen, expected, results = self_balanced(ovn_lab, ovn_hub, lb, placement, me, other,
                                                source, label)
        assert seen == expected, (
            f"{label}, sharing {me.target} with another VIP: expected sources per server "
            "differ: " + checks.context(lb, placement, me.vm, f"sources {expected}",
                                        f"sources {seen}; {checks.summary(results)}", ovn_lab))
