"""Topologies are data: the shipped ones are consistent, mistakes are named."""

import dataclasses
import ipaddress

import pytest

from pytest_ovnlb.engine import topology
from pytest_ovnlb.errors import LabError


def test_reference_lab_has_the_blog_names_and_addresses():
    lab = topology.get("lab")
    assert [c.name for c in lab.chassis] == ["ubuntu1", "ubuntu2", "ubuntu3"]
    assert lab.central.name == "ubuntu1"
    assert {s.name for s in lab.switches} == {"dmz", "inside", "transit", "outside"}
    assert lab.router("edge1").chassis == "ubuntu1"
    assert lab.router("edge1").snat == (("172.16.255.128/25", "10.127.0.129"),
                                        ("fd00:10:1::/64", "fd00:127::129"),
                                        ("fd00:10:2::/64", "fd00:127::129"))
    assert {(v.name, v.chassis, v.switch, v.ip) for v in lab.vms} == {
        ("vm1", "ubuntu2", "dmz", "172.16.255.130/26"),
        ("vm2", "ubuntu3", "dmz", "172.16.255.131/26"),
        ("vm3", "ubuntu2", "inside", "172.16.255.194/26"),
    }
    assert lab.address("ubuntu1") == "10.127.0.130"
    assert lab.address("vm3") == "172.16.255.194"
    assert lab.roles.router_vip == "10.127.0.254" and lab.roles.switch_vip == "172.16.255.62"


def test_reference_lab_is_dual_stack():
    lab = topology.get("lab")
    assert lab.families == (4, 6)
    assert lab.address("vm3", 6) == "fd00:10:2::194"
    assert lab.address("ubuntu1", 6) == "fd00:127::130"
    assert lab.interface("vm1") == (["172.16.255.130/26", "fd00:10:1::130/64"],
                                    ["172.16.255.129", "fd00:10:1::129"])
    assert lab.interface("ubuntu2") == (["10.127.0.131/25", "10.127.0.163/28",
                                         "fd00:127::131/64", "fd00:127::1:163/112"], [])
    roles = lab.roles
    assert (roles.vip("router", 6), roles.vip("switch", 6), roles.snat_ip(6)) == (
        "fd00:127::254", "fd00:10:99::62", "fd00:127::129")
    assert (roles.vip("router"), roles.vip("switch"), roles.snat_ip()) == (
        "10.127.0.254", "172.16.255.62", "10.127.0.129")
    # every IPv6 route's next hop is on a subnet of its router
    for router in lab.routers:
        nets = [ipaddress.ip_interface(p.ip6).network for p in router.ports]
        for prefix, hop in router.routes:
            if ":" in prefix:
                assert any(ipaddress.ip_address(hop) in n for n in nets), (router.name, hop)


def test_reference_lab_has_a_distributed_gateway_port_beside_the_gateway_router():
    lab = topology.get("lab")
    gateway = [p for p in lab.router("dgp1").ports if p.gateway_chassis]
    assert [(p.switch, p.gateway_chassis, p.ip, p.ip6) for p in gateway] == [
        ("outside", "ubuntu1", "10.127.0.161/28", "fd00:127::1:161/112")]
    assert not any(p.gateway_chassis for r in lab.routers if r.name != "dgp1" for p in r.ports)
    roles = lab.roles
    assert (roles.datapath("dgp"), roles.vip("dgp"), roles.vip("dgp", 6)) == (
        "dgp1", "10.127.0.174", "fd00:127::1:174")
    # tenant1, the servers' router, sends dgp1's gateway subnet back through dgp1
    assert ("10.127.0.160/28", "172.16.255.189") in lab.router("tenant1").routes
    assert (roles.datapath("router"), roles.datapath("switch")) == ("edge1", "inside")
    # a host picks its address on the gateway port's subnet for the dgp VIP
    # and keeps its first one for anything else
    assert lab.address("ubuntu2", toward="10.127.0.174") == "10.127.0.163"
    assert lab.address("ubuntu2", 6, toward="fd00:127::1:174") == "fd00:127::1:163"
    assert lab.address("ubuntu2", toward="10.127.0.254") == "10.127.0.131"
    assert lab.address("vm3", toward="10.127.0.174") == "172.16.255.194"
    # edge1 and tenant1 still share only transit: one way between them
    shared = ({p.switch for p in lab.router("edge1").ports}
              & {p.switch for p in lab.router("tenant1").ports})
    assert shared == {"transit"}


def test_validation_of_distributed_gateway_ports():
    lab = topology.get("lab")
    dgp1 = lab.router("dgp1")
    ports = tuple(dataclasses.replace(p, gateway_chassis="nowhere") if p.gateway_chassis
                  else p for p in dgp1.ports)
    routers = tuple(dataclasses.replace(r, ports=ports) if r is dgp1 else r
                    for r in lab.routers)
    with pytest.raises(LabError, match="needs a distributed router and a known chassis"):
        dataclasses.replace(lab, routers=routers).validate()
    with pytest.raises(LabError, match="dgp VIP 10.127.0.254 is not on its gateway port's"):
        dataclasses.replace(lab, roles=dataclasses.replace(
            lab.roles, dgp_vip="10.127.0.254")).validate()
    with pytest.raises(LabError, match="dgp router edge1 needs exactly one gateway port"):
        dataclasses.replace(lab, roles=dataclasses.replace(
            lab.roles, dgp_router="edge1")).validate()


def test_single_topology_without_ipv6_offers_ipv4_only():
    single = topology.get("single")
    assert single.families == (4, 6)
    vms = tuple(dataclasses.replace(v, ip6=None, gateway6=None) for v in single.vms)
    v4 = dataclasses.replace(single, vms=vms).validate()
    assert v4.families == (4,)
    with pytest.raises(LabError, match="no IPv6 client address"):
        v4.address("vm3", 6)


@pytest.mark.parametrize("name", topology.REGISTRY.names())
def test_shipped_topologies_validate(name):
    t = topology.get(name)
    assert t.validate() is t
    assert set(t.roles.servers) <= {v.name for v in t.vms}


def test_unknown_topology_names_the_known_ones():
    with pytest.raises(LabError, match=r"unknown topology 'x' \(known: lab, single\)"):
        topology.get("x")


def test_validation_names_each_mistake():
    lab = topology.get("lab")
    vm = dataclasses.replace(lab.vms[0], chassis="nowhere", ip="10.9.9.9/24")
    broken = dataclasses.replace(lab, vms=(vm,) + lab.vms[1:])
    with pytest.raises(LabError) as err:
        broken.validate()
    assert "vm1: unknown chassis nowhere" in str(err.value)
    assert "vm1: 10.9.9.9/24 is not on dmz" in str(err.value)


def test_validation_checks_ipv6_addresses_too():
    lab = topology.get("lab")
    vm = dataclasses.replace(lab.vms[0], ip6="fd00:10:2::5/64")
    no_gw = dataclasses.replace(lab.vms[1], gateway6=None)
    broken = dataclasses.replace(lab, vms=(vm, no_gw) + lab.vms[2:])
    with pytest.raises(LabError) as err:
        broken.validate()
    assert "vm1: fd00:10:2::5/64 is not on dmz (fd00:10:1::/64)" in str(err.value)
    assert "vm2: an IPv6 address needs an IPv6 gateway" in str(err.value)


def test_node_names_fit_interface_names():
    lab = topology.get("lab")
    bad = dataclasses.replace(lab.vms[0], name="a-name-far-too-long")
    with pytest.raises(LabError, match="must match"):
        dataclasses.replace(lab, vms=(bad,) + lab.vms[1:]).validate()


def test_free_address_avoids_everything_in_use():
    lab = topology.get("lab")
    assert lab.free_address("dmz") == "172.16.255.190"
    with pytest.raises(LabError, match="transit has no free address"):
        lab.free_address("transit")  # a /30 holding both routers
    single = topology.get("single")
    assert single.free_address("web") == "10.0.1.254"
    assert lab.free_address("dmz", 6) == "fd00:10:1:0:ffff:ffff:ffff:ffff"
    crowded = dataclasses.replace(lab, roles=dataclasses.replace(
        lab.roles, switch_vip6="fd00:10:1:0:ffff:ffff:ffff:ffff"))
    assert crowded.free_address("dmz", 6) == "fd00:10:1:0:ffff:ffff:ffff:fffe"


def test_on_provider_moves_every_provider_address_and_nothing_else():
    moved = topology.on_provider(topology.LAB, "10.127.42.0/25", "public", "fd00:127:0:54::/64")
    assert moved.provider.network_name == "public"
    assert moved.switch("outside").subnet == "10.127.42.0/25"
    assert moved.provider.hosts == (
        ("ubuntu1", "10.127.42.2/25"), ("ubuntu1", "10.127.42.34/28"),
        ("ubuntu2", "10.127.42.3/25"), ("ubuntu2", "10.127.42.35/28"),
        ("ubuntu3", "10.127.42.4/25"), ("ubuntu3", "10.127.42.36/28"))
    edge1 = moved.router("edge1")
    outside = next(p for p in edge1.ports if p.switch == "outside")
    assert outside.ip == "10.127.42.1/25" and outside.mac == "02:00:0a:7f:2a:01"
    assert edge1.snat[0] == ("172.16.255.128/25", "10.127.42.1")
    assert (moved.roles.router_vip, moved.roles.router_snat_ip) == ("10.127.42.126", "10.127.42.1")
    moved6 = moved
    assert moved6.switch("outside").subnet6 == "fd00:127:0:54::/64"
    assert moved6.provider.hosts6[2:4] == (("ubuntu2", "fd00:127:0:54::131/64"),
                                           ("ubuntu2", "fd00:127:0:54::1:163/112"))
    assert next(p for p in moved6.router("edge1").ports if p.switch == "outside").ip6 == (
        "fd00:127:0:54::129/64")
    assert (moved6.roles.router_vip6, moved6.roles.router_snat_ip6) == (
        "fd00:127:0:54::254", "fd00:127:0:54::129")
    assert moved6.roles.switch_vip6 == topology.LAB.roles.switch_vip6
    assert ("fd00:10:1::/64", "fd00:127:0:54::129") in moved6.router("edge1").snat
    # dgp1's gateway port and the dgp VIPs move with the provider network
    gateway = next(p for p in moved.router("dgp1").ports if p.gateway_chassis)
    assert (gateway.ip, gateway.ip6, gateway.mac) == (
        "10.127.42.33/28", "fd00:127:0:54::1:161/112", "02:00:0a:7f:2a:21")
    assert (moved.roles.dgp_vip, moved.roles.dgp_vip6) == ("10.127.42.46", "fd00:127:0:54::1:174")
    # the inner networks are each lab's own: untouched
    assert moved.switches[:3] == topology.LAB.switches[:3]
    assert moved.vms == topology.LAB.vms
    assert moved.router("tenant1").ports == topology.LAB.router("tenant1").ports
    # tenant1's routes to dgp1's gateway subnet follow it
    assert ("10.127.42.32/28", "172.16.255.189") in moved.router("tenant1").routes
    assert ("fd00:127:0:54::1:0/112", "fd00:10:1::189") in moved.router("tenant1").routes
    assert ("0.0.0.0/0", "172.16.255.1") in moved.router("tenant1").routes


def test_on_provider_refuses_a_subnet_of_another_size():
    with pytest.raises(LabError, match="does not match"):
        topology.on_provider(topology.LAB, "10.127.42.0/24", "public")
    with pytest.raises(LabError, match="does not match"):
        topology.on_provider(topology.LAB, "10.127.42.0/25", "public", "fd00:127::/56")
    with pytest.raises(LabError, match="needs an IPv6 subnet too"):
        topology.on_provider(topology.LAB, "10.127.42.0/25", "public")


def test_names_prefix_map_and_record_round_trip():
    names = topology.Names("run1-", (("ubuntu1", "ovn-gw-1"),), "run1.abc")
    assert names.nb("dmz") == "run1-dmz"
    assert names.chassis("ubuntu1") == "ovn-gw-1" and names.chassis("ubuntu2") == "ubuntu2"
    assert topology.Names.from_record(names.to_record()) == names
    assert topology.Names().nb("dmz") == "dmz"
