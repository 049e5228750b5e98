"""Declarative topologies: what a lab is made of, never how it is built.

A topology names chassis (hosts running ovn-controller), logical switches and
routers, VMs (namespaces bound to logical switch ports) and an optional
provider network bridged into OVN through a localnet port.  `roles` tells the
conformance suite which pieces play client, backend, gateway and so on, so
the same tests run on any topology that has the pieces they need.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, replace

from pytest_ovnlb.errors import LabError
from pytest_ovnlb.model.placements import PLACEMENTS
from pytest_ovnlb.registry import Registry


@dataclass(frozen=True)
class Chassis:
    name: str
    underlay_ip: str  # geneve endpoint (ovn-encap-ip)
    central: bool = False  # runs the NB/SB databases and ovn-northd


@dataclass(frozen=True)
class Switch:
    name: str
    subnet: str
    subnet6: str | None = None


@dataclass(frozen=True)
class RouterPort:
    switch: str
    mac: str
    ip: str  # address/prefix on that switch
    ip6: str | None = None
    # set: a distributed gateway port, centralized on that chassis
    gateway_chassis: str | None = None


@dataclass(frozen=True)
class Router:
    name: str
    ports: tuple[RouterPort, ...]
    routes: tuple[tuple[str, str], ...] = ()  # (prefix, nexthop), either family
    snat: tuple[tuple[str, str], ...] = ()  # (logical network, external ip), either family
    chassis: str | None = None  # set: a gateway router bound to that chassis


@dataclass(frozen=True)
class VM:
    name: str
    chassis: str
    switch: str
    mac: str
    ip: str  # address/prefix
    gateway: str
    ip6: str | None = None
    gateway6: str | None = None

    def address(self, family: int = 4) -> str | None:
        text = self.ip if family == 4 else self.ip6
        return text.split("/")[0] if text else None


@dataclass(frozen=True)
class Provider:
    """A physical network shared by the hosts, bridged into `switch` on one
    chassis through a localnet port."""

    network_name: str
    switch: str
    bridge_chassis: str
    hosts: tuple[tuple[str, str], ...]  # (chassis, address/prefix)
    hosts6: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Roles:
    servers: tuple[str, ...]  # VMs that run the web servers
    internal_client: str  # a VM on another switch than the backends
    client_switch: str  # the internal client's switch
    server_switch: str  # the backends' switch
    switch_vip: str  # VIP for switch placement (outside every subnet)
    gateway_router: str | None = None  # the router placement's datapath
    router_vip: str | None = None
    router_snat_ip: str | None = None  # what backends see for routed clients
    external_client: str | None = None  # a host on the provider network
    distributed_router: str | None = None  # routes between the switches
    server_port: int = 8000
    # the same roles' IPv6 addresses, where the topology has IPv6
    switch_vip6: str | None = None
    router_vip6: str | None = None
    router_snat_ip6: str | None = None
    # a distributed router with a distributed gateway port ("dgp" placement):
    # its VIPs lie in the gateway port's subnet on the provider network
    dgp_router: str | None = None
    dgp_vip: str | None = None
    dgp_vip6: str | None = None

    def vip(self, placement: str, family: int = 4) -> str | None:
        four, six = PLACEMENTS[placement].vips
        return getattr(self, four if family == 4 else six)

    def datapath(self, placement: str) -> str | None:
        """Where a placement's load balancers go by default."""
        return getattr(self, PLACEMENTS[placement].datapath_role)

    def client(self, role: str) -> str | None:
        """The node playing client role "internal" or "external"."""
        return self.internal_client if role == "internal" else self.external_client

    def snat_ip(self, family: int = 4) -> str | None:
        return self.router_snat_ip if family == 4 else self.router_snat_ip6


# Geneve over an IPv4 underlay, as OVN uses it: the inner Ethernet header
# (14), outer IPv4 (20), UDP (8), Geneve (8) and OVN's 8-byte option.
GENEVE_OVERHEAD = 58


@dataclass(frozen=True)
class Topology:
    name: str
    description: str
    chassis: tuple[Chassis, ...]
    switches: tuple[Switch, ...]
    routers: tuple[Router, ...]
    vms: tuple[VM, ...]
    roles: Roles
    underlay_prefix: int = 24
    provider: Provider | None = None
    underlay_mtu: int = 1500

    @property
    def mtu(self) -> int:
        """The MTU of the lab's own networks (VMs, the provider network): the
        underlay's less Geneve's overhead over IPv4, so a full-size packet
        still fits a tunnel, as a deployment sets it."""
        return self.underlay_mtu - GENEVE_OVERHEAD

    @property
    def central(self) -> Chassis:
        return next(c for c in self.chassis if c.central)

    @property
    def nodes(self) -> list[str]:
        """Names a person can `exec` in: chassis (host namespaces) and VMs."""
        return [c.name for c in self.chassis] + [v.name for v in self.vms]

    def interface(self, node: str) -> tuple[list[str], list[str]]:
        """A node's addresses (CIDR, every family) and default gateways: a
        VM's, or a host's on the provider network."""
        for vm in self.vms:
            if vm.name == node:
                return [vm.ip, vm.ip6], [vm.gateway, vm.gateway6]
        hosts = self.provider.hosts + self.provider.hosts6 if self.provider else ()
        return [ip for chassis, ip in hosts if chassis == node], []

    def vm(self, name: str) -> VM:
        return next(v for v in self.vms if v.name == name)

    def switch(self, name: str) -> Switch:
        return next(s for s in self.switches if s.name == name)

    def router(self, name: str) -> Router:
        return next(r for r in self.routers if r.name == name)

    @property
    def families(self) -> tuple[int, ...]:
        """Address families every VM has (4, and 6 on a dual-stack topology)."""
        return (4, 6) if all(vm.ip6 for vm in self.vms) else (4,)

    def address(self, node: str, family: int = 4, toward: str | None = None) -> str:
        """The address a node uses as a client (VM address or provider
        address); with `toward`, the one on that destination's subnet when
        the node has one there, as the kernel picks its source."""
        for vm in self.vms:
            if vm.name == node and vm.address(family):
                return vm.address(family)
        hosts = () if not self.provider else (
            self.provider.hosts if family == 4 else self.provider.hosts6)
        mine = [ipaddress.ip_interface(ip) for chassis, ip in hosts if chassis == node]
        if not mine:
            raise LabError(f"node {node} has no IPv{family} client address in "
                           f"topology {self.name}")
        on_link = [i for i in mine if toward and ipaddress.ip_address(toward) in i.network]
        return str(max(on_link, key=lambda i: i.network.prefixlen, default=mine[0]).ip)

    def free_address(self, switch: str, family: int = 4) -> str:
        """The highest host address of `switch`'s subnet (of that family)
        that nothing in the topology uses (e.g. as the source of OVN's
        health check probes)."""
        roles = self.roles
        used = {vm.ip for vm in self.vms} | {vm.ip6 for vm in self.vms}
        used |= {p.ip for r in self.routers for p in r.ports}
        used |= {p.ip6 for r in self.routers for p in r.ports}
        if self.provider:
            used |= {ip for _, ip in self.provider.hosts + self.provider.hosts6}
        used = {ipaddress.ip_interface(ip).ip for ip in used if ip}
        used |= {ipaddress.ip_address(ip) for ip in (
            roles.switch_vip, roles.router_vip, roles.router_snat_ip, roles.switch_vip6,
            roles.router_vip6, roles.router_snat_ip6, roles.dgp_vip, roles.dgp_vip6) if ip}
        s = self.switch(switch)
        subnet = s.subnet if family == 4 else s.subnet6
        if not subnet:
            raise LabError(f"switch {switch} has no IPv{family} subnet")
        net = ipaddress.ip_network(subnet)
        # from the top down: an IPv6 /64 is far too big to list
        last = net.broadcast_address - (1 if family == 4 else 0)
        for offset in range(min(net.num_addresses - 2, 4096)):
            ip = last - offset
            if ip not in used:
                return str(ip)
        raise LabError(f"switch {switch} has no free address")

    def validate(self) -> "Topology":
        problems = list(_problems(self))
        if problems:
            raise LabError(f"topology {self.name}: " + "; ".join(problems))
        return self


@dataclass(frozen=True)
class Names:
    """How a topology's names appear in one deployment.  On a shared
    deployment every logical name (switch, router, port, load balancer)
    carries the run's prefix, and the topology's chassis are the
    deployment's own; an embedded lab uses the names as they are."""

    prefix: str = ""
    chassis_map: tuple[tuple[str, str], ...] = ()  # (topology name, deployment name)
    owner: str = ""  # external_ids value marking the Northbound rows the lab made

    def nb(self, name: str) -> str:
        return self.prefix + name

    def chassis(self, name: str) -> str:
        return dict(self.chassis_map).get(name, name)

    def to_record(self) -> dict:
        return {"prefix": self.prefix, "chassis_map": [list(p) for p in self.chassis_map],
                "owner": self.owner}

    @classmethod
    def from_record(cls, data: dict) -> "Names":
        return cls(data.get("prefix", ""), tuple(tuple(p) for p in data.get("chassis_map", ())),
                   data.get("owner", ""))


NAME_RE = re.compile(r"^[a-z][a-z0-9]{0,11}$")


def _problems(t: Topology):
    names = [c.name for c in t.chassis] + [v.name for v in t.vms]
    for n in names:
        if not NAME_RE.match(n):
            yield f"node name {n!r} must match {NAME_RE.pattern}"
    if len(set(names)) != len(names):
        yield "node names are not unique"
    if sum(c.central for c in t.chassis) != 1:
        yield "exactly one chassis must be central"
    chassis = {c.name for c in t.chassis}
    switches = {s.name: ipaddress.ip_network(s.subnet) for s in t.switches}
    switches6 = {s.name: ipaddress.ip_network(s.subnet6) for s in t.switches if s.subnet6}

    def misplaced(switch: str, *addresses: str | None):
        """Problems of addresses meant for `switch` (each family on its subnet)."""
        for ip in filter(None, addresses):
            iface = ipaddress.ip_interface(ip)
            subnet = (switches if iface.version == 4 else switches6).get(switch)
            # a smaller network inside the switch's (a second subnet on it) is fine
            if subnet is None or not iface.network.subnet_of(subnet):
                yield f"{ip} is not on {switch} ({subnet or f'no IPv{iface.version} subnet'})"

    for vm in t.vms:
        if vm.chassis not in chassis:
            yield f"{vm.name}: unknown chassis {vm.chassis}"
        if vm.switch not in switches:
            yield f"{vm.name}: unknown switch {vm.switch}"
            continue
        yield from (f"{vm.name}: {p}" for p in misplaced(vm.switch, vm.ip, vm.ip6))
        if bool(vm.ip6) != bool(vm.gateway6):
            yield f"{vm.name}: an IPv6 address needs an IPv6 gateway and back"
    for r in t.routers:
        if r.chassis and r.chassis not in chassis:
            yield f"{r.name}: unknown chassis {r.chassis}"
        for p in r.ports:
            if p.gateway_chassis and (r.chassis or p.gateway_chassis not in chassis):
                yield (f"{r.name}: a gateway port needs a distributed router and a known "
                       f"chassis (not {p.gateway_chassis})")
            if p.switch not in switches:
                yield f"{r.name}: unknown switch {p.switch}"
            else:
                yield from (f"{r.name}: {m}" for m in misplaced(p.switch, p.ip, p.ip6))
    if t.provider:
        if t.provider.switch not in switches:
            yield f"provider: unknown switch {t.provider.switch}"
        for c, ip in t.provider.hosts + t.provider.hosts6:
            if c not in chassis:
                yield f"provider: unknown chassis {c}"
            yield from (f"provider: {p}" for p in misplaced(t.provider.switch, ip))
    roles = t.roles
    for vm in roles.servers + (roles.internal_client,):
        if vm not in {v.name for v in t.vms}:
            yield f"roles: unknown VM {vm}"
    if roles.dgp_router:
        gateways = [p for r in t.routers if r.name == roles.dgp_router for p in r.ports
                    if p.gateway_chassis]
        if len(gateways) != 1:
            yield f"roles: dgp router {roles.dgp_router} needs exactly one gateway port"
            return
        for cidr, vip in ((gateways[0].ip, roles.dgp_vip), (gateways[0].ip6, roles.dgp_vip6)):
            if vip and (not cidr or ipaddress.ip_address(vip)
                        not in ipaddress.ip_interface(cidr).network):
                yield f"roles: dgp VIP {vip} is not on its gateway port's network {cidr}"

# --- the reference lab (three hosts, a gateway router, two tiers) ---------

LAB = Topology(
    name="lab",
    description="the reference lab: 3 chassis, gateway router edge1 on ubuntu1, "
    "distributed router tenant1, distributed router dgp1 (gateway port on ubuntu1), "
    "switches dmz/inside/transit/outside (localnet)",
    chassis=(
        Chassis("ubuntu1", "10.127.0.2", central=True),
        Chassis("ubuntu2", "10.127.0.3"),
        Chassis("ubuntu3", "10.127.0.4"),
    ),
    underlay_prefix=25,
    switches=(
        Switch("dmz", "172.16.255.128/26", "fd00:10:1::/64"),
        Switch("inside", "172.16.255.192/26", "fd00:10:2::/64"),
        Switch("transit", "172.16.255.0/30", "fd00:10:3::/64"),
        Switch("outside", "10.127.0.128/25", "fd00:127::/64"),
    ),
    routers=(
        Router(
            "tenant1",
            ports=(
                RouterPort("dmz", "02:ac:10:ff:01:29", "172.16.255.129/26", "fd00:10:1::129/64"),
                RouterPort("inside", "02:ac:10:ff:01:93", "172.16.255.193/26", "fd00:10:2::193/64"),
                RouterPort("transit", "02:ac:10:ff:00:02", "172.16.255.2/30", "fd00:10:3::2/64"),
            ),
            routes=(("0.0.0.0/0", "172.16.255.1"), ("::/0", "fd00:10:3::1"),
                    # the data network's second subnet, behind dgp1
                    ("10.127.0.160/28", "172.16.255.189"), ("fd00:127::1:0/112", "fd00:10:1::189")),
        ),
        # A distributed router with a distributed gateway port on the data
        # network (centralized on ubuntu1): a second subnet there, inside
        # outside's, so that edge1's subnet and routes stay as they are.
        Router(
            "dgp1",
            ports=(
                RouterPort("dmz", "02:ac:10:ff:01:bd", "172.16.255.189/26", "fd00:10:1::189/64"),
                RouterPort("outside", "02:0a:7f:00:01:61", "10.127.0.161/28",
                           "fd00:127::1:161/112", gateway_chassis="ubuntu1"),
            ),
        ),
        Router(
            "edge1",
            chassis="ubuntu1",
            ports=(
                RouterPort("transit", "02:ac:10:ff:00:01", "172.16.255.1/30", "fd00:10:3::1/64"),
                RouterPort("outside", "02:0a:7f:00:01:29", "10.127.0.129/25", "fd00:127::129/64"),
            ),
            routes=(("172.16.255.128/25", "172.16.255.2"),
                    ("fd00:10:1::/64", "fd00:10:3::2"), ("fd00:10:2::/64", "fd00:10:3::2")),
            snat=(("172.16.255.128/25", "10.127.0.129"),
                  ("fd00:10:1::/64", "fd00:127::129"), ("fd00:10:2::/64", "fd00:127::129")),
        ),
    ),
    vms=(
        VM("vm1", "ubuntu2", "dmz", "02:ac:10:ff:01:30", "172.16.255.130/26", "172.16.255.129",
           "fd00:10:1::130/64", "fd00:10:1::129"),
        VM("vm2", "ubuntu3", "dmz", "02:ac:10:ff:01:31", "172.16.255.131/26", "172.16.255.129",
           "fd00:10:1::131/64", "fd00:10:1::129"),
        VM("vm3", "ubuntu2", "inside", "02:ac:10:ff:01:94", "172.16.255.194/26", "172.16.255.193",
           "fd00:10:2::194/64", "fd00:10:2::193"),
    ),
    provider=Provider(
        network_name="dataNet",
        switch="outside",
        bridge_chassis="ubuntu1",
        # each host also on dgp1's gateway subnet
        hosts=(
            ("ubuntu1", "10.127.0.130/25"), ("ubuntu1", "10.127.0.162/28"),
            ("ubuntu2", "10.127.0.131/25"), ("ubuntu2", "10.127.0.163/28"),
            ("ubuntu3", "10.127.0.132/25"), ("ubuntu3", "10.127.0.164/28"),
        ),
        hosts6=(
            ("ubuntu1", "fd00:127::130/64"), ("ubuntu1", "fd00:127::1:162/112"),
            ("ubuntu2", "fd00:127::131/64"), ("ubuntu2", "fd00:127::1:163/112"),
            ("ubuntu3", "fd00:127::132/64"), ("ubuntu3", "fd00:127::1:164/112"),
        ),
    ),
    roles=Roles(
        servers=("vm1", "vm2"),
        internal_client="vm3",
        client_switch="inside",
        server_switch="dmz",
        switch_vip="172.16.255.62",
        gateway_router="edge1",
        router_vip="10.127.0.254",
        router_snat_ip="10.127.0.129",
        external_client="ubuntu1",
        distributed_router="tenant1",
        switch_vip6="fd00:10:99::62",
        router_vip6="fd00:127::254",
        router_snat_ip6="fd00:127::129",
        dgp_router="dgp1",
        dgp_vip="10.127.0.174",
        dgp_vip6="fd00:127::1:174",
    ),
)

# --- one chassis, two switches, one router: the smallest useful lab -------

SINGLE = Topology(
    name="single",
    description="one chassis; router r0 joins switches web (vm1, vm2) and clients (vm3)",
    chassis=(Chassis("host1", "192.168.254.1", central=True),),
    switches=(Switch("web", "10.0.1.0/24", "fd00:1::/64"),
              Switch("clients", "10.0.2.0/24", "fd00:2::/64")),
    routers=(
        Router(
            "r0",
            ports=(
                RouterPort("web", "02:00:00:00:01:01", "10.0.1.1/24", "fd00:1::1/64"),
                RouterPort("clients", "02:00:00:00:02:01", "10.0.2.1/24", "fd00:2::1/64"),
            ),
        ),
    ),
    vms=(
        VM("vm1", "host1", "web", "02:00:00:00:01:0b", "10.0.1.11/24", "10.0.1.1",
           "fd00:1::11/64", "fd00:1::1"),
        VM("vm2", "host1", "web", "02:00:00:00:01:0c", "10.0.1.12/24", "10.0.1.1",
           "fd00:1::12/64", "fd00:1::1"),
        VM("vm3", "host1", "clients", "02:00:00:00:02:0d", "10.0.2.13/24", "10.0.2.1",
           "fd00:2::13/64", "fd00:2::1"),
    ),
    roles=Roles(
        servers=("vm1", "vm2"),
        internal_client="vm3",
        client_switch="clients",
        server_switch="web",
        switch_vip="10.0.9.100",
        distributed_router="r0",
        switch_vip6="fd00:9::100",
    ),
)

def _checked(topo) -> Topology:
    if not isinstance(topo, Topology):
        raise LabError(f"topology {getattr(topo, 'name', topo)!r} is not a Topology")
    return topo.validate()


# By name: the built-in ones and those of the entry-point group (a
# Topology object each) or a pytest plugin's (pytest_ovnlb_topologies).
REGISTRY = Registry("topology", "pytest_ovnlb.topologies", (LAB, SINGLE), _checked)


def get(name: str) -> Topology:
    return REGISTRY.get(name)


def on_provider(topo: Topology, subnet: str, network_name: str,
                subnet6: str | None = None) -> Topology:
    """`topo` with its provider network moved to `subnet` (and its IPv6
    subnet to `subnet6`; same prefix lengths) and bridged as
    `network_name`: every address in an old provider subnet keeps its offset
    in the new one, router ports there get MACs made from their IPv4
    addresses.  A shared deployment gives each lab a provider subnet of its
    own, so labs side by side never collide."""
    if not topo.provider:
        return topo
    provider = topo.switch(topo.provider.switch)
    moves = {}  # old network -> new network
    for old_text, new_text in ((provider.subnet, subnet), (provider.subnet6, subnet6)):
        if old_text and new_text:
            old, new = ipaddress.ip_network(old_text), ipaddress.ip_network(new_text)
            if new.prefixlen != old.prefixlen or new.version != old.version:
                raise LabError(f"provider subnet {new} does not match {old}'s size")
            moves[old] = new
    if provider.subnet6 and not subnet6:
        raise LabError(f"provider switch {provider.name} has IPv6: it needs an IPv6 subnet too")

    def move(text: str | None) -> str | None:
        if text is None:
            return None
        iface = ipaddress.ip_interface(text)
        for old, new in moves.items():
            if iface.ip in old:
                moved = new.network_address + (int(iface.ip) - int(old.network_address))
                return f"{moved}/{iface.network.prefixlen}" if "/" in text else str(moved)
        return text

    def move_net(text: str | None) -> str | None:
        """A network: moved whole when it lies in an old provider network."""
        if not text:
            return text
        net = ipaddress.ip_network(text)
        for old, new in moves.items():
            if net.version == old.version and net.subnet_of(old):
                return f"{move(str(net.network_address))}/{net.prefixlen}"
        return text

    switches = tuple(replace(s, subnet=move_net(s.subnet), subnet6=move_net(s.subnet6))
                     for s in topo.switches)

    def port(p: RouterPort) -> RouterPort:
        if p.switch != topo.provider.switch:
            return p
        # Seen on the shared physical network: a MAC as unique as the address
        ip = ipaddress.ip_interface(move(p.ip)).ip
        return replace(p, ip=move(p.ip), ip6=move(p.ip6),
                       mac="02:00:" + ":".join(f"{b:02x}" for b in ip.packed[-4:]))

    routers = tuple(replace(
        r, ports=tuple(port(p) for p in r.ports),
        routes=tuple((move_net(prefix), move(hop)) for prefix, hop in r.routes),
        snat=tuple((net, move(ip)) for net, ip in r.snat)) for r in topo.routers)
    moved = replace(topo.provider, network_name=network_name,
                    hosts=tuple((c, move(ip)) for c, ip in topo.provider.hosts),
                    hosts6=tuple((c, move(ip)) for c, ip in topo.provider.hosts6))
    roles = topo.roles
    roles = replace(roles, **{f: move(getattr(roles, f)) for f in (
        "router_vip", "router_snat_ip", "switch_vip", "router_vip6", "router_snat_ip6",
        "switch_vip6", "dgp_vip", "dgp_vip6")})
    return replace(topo, switches=switches, routers=routers, provider=moved,
                   roles=roles).validate()
