"""OVN versions and the behaviour that changed between them.

Every version-dependent expectation of the suite lives in BEHAVIOURS, one row
per change, with the release that introduced it and why it matters.  Tests ask
`expects(name, version)`; nothing else compares version numbers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Version:
    major: int
    minor: int
    patch: int = 0

    @classmethod
    def parse(cls, text: str) -> "Version":
        match = re.match(r"^\s*v?(\d+)\.(\d+)(?:\.(\d+))?", text)
        if not match:
            raise ValueError(f"not a version: {text!r}")
        return cls(int(match.group(1)), int(match.group(2)), int(match.group(3) or 0))

    def __str__(self) -> str:
        # OVN numbers releases YY.MM (23.03.1); OVS does not pad (3.1.0)
        minor = f"{self.minor:02d}" if self.major >= 20 else str(self.minor)
        return f"{self.major}.{minor}.{self.patch}"


@dataclass(frozen=True)
class Behaviour:
    name: str
    since: Version  # first OVN release that behaves this way
    what: str
    # Patch releases of older branches that got the change as a backport.
    backports: tuple[Version, ...] = ()

    def holds_for(self, version: Version) -> bool:
        if version >= self.since:
            return True
        return any(b.major == version.major and b.minor == version.minor
                   and version >= b for b in self.backports)


def _v(text: str) -> Version:
    return Version.parse(text)


BEHAVIOURS = {b.name: b for b in (
    Behaviour("switch_lb", _v("2.6.0"),
              "a load balancer on a logical switch DNATs traffic entering from VIFs"),
    Behaviour("gateway_router_lb", _v("2.7.0"),
              "a load balancer on a gateway router DNATs traffic routed through it"),
    # OVS commit 6f39e18df (2017-09), first released in 2.9.0
    Behaviour("dgp_lb", _v("2.9.0"),
              "a load balancer on a distributed router with a distributed gateway port "
              "DNATs, on the gateway chassis, what enters through that port"),
    # OVN commit abbc272ac (2025-05), first released in 25.09.0
    Behaviour("stateless_acl_with_lb", _v("25.9.0"),
              "a switch's other_config:enable-stateless-acl-with-lb keeps its load "
              "balancers working beside allow-stateless ACLs"),
    Behaviour("ipv6_vips", _v("2.9.0"),
              "load balancers with IPv6 VIPs and servers, beside IPv4 ones in one row"),
    Behaviour("switch_self_hairpin", _v("20.3.0"),
              "a server that connects to a switch VIP and is picked itself gets "
              "the connection, seen with the VIP as source"),
    Behaviour("health_check", _v("20.3.0"),
              "load balancer health checks (ip_port_mappings + Load_Balancer_Health_Check) "
              "take a server that is down out of the rotation"),
    Behaviour("selection_fields", _v("20.6.0"),
              "load balancers hash on chosen fields (selection_fields)"),
    Behaviour("reject_no_backends", _v("21.3.0"),
              "options:reject answers connections to a VIP without servers"),
    Behaviour("router_arp_only_own_subnets", _v("21.6.0"),
              "routers answer ARP only for VIPs inside their own subnets"),
    Behaviour("empty_lb_drops", _v("23.6.0"),
              "a load balancer with no servers drops instead of passing traffic",
              backports=(_v("22.3.3"), _v("22.9.2"), _v("22.12.1"), _v("23.3.1"))),
    Behaviour("affinity_timeout", _v("22.12.0"),
              "options:affinity_timeout keeps a client on one server"),
    Behaviour("vip_without_port", _v("2.6.0"),
              "a VIP without a port (servers without ports) balances every destination "
              "port, each to the same port on a server"),
    Behaviour("lb_force_snat_ip", _v("20.9.0"),
              "options:lb_force_snat_ip on a gateway router, with an IPv4 and an IPv6 "
              "address: servers see that address of their family for every client"),
    Behaviour("lb_force_snat_router_ip", _v("21.3.0"),
              "options:lb_force_snat_ip=router_ip on a gateway router: servers see the "
              "address of the router port that leads to them"),
    Behaviour("hairpin_snat_ip", _v("21.3.0"),
              "options:hairpin_snat_ip: a server balanced to itself sees that address "
              "(one per family) instead of the VIP, per load balancer"),
    Behaviour("lb_skip_snat", _v("21.6.0"),
              "options:skip_snat=true exempts one load balancer from its router's "
              "lb_force_snat_ip"),
    Behaviour("lb_group", _v("21.12.0"),
              "a load balancer reached through a Load_Balancer_Group attached to a switch "
              "or router behaves as one attached directly",
              backports=(_v("21.9.1"),)),
    Behaviour("neighbor_responder", _v("22.6.0"),
              "options:neighbor_responder=all: the routers holding a load balancer answer "
              "ARP and neighbour solicitations for every VIP, reachable (the default) only "
              "for VIPs inside their subnets"),
    Behaviour("neighbor_responder_none", _v("22.12.0"),
              "options:neighbor_responder=none: the routers holding a load balancer answer "
              "ARP and neighbour solicitations for none of its VIPs"),
    Behaviour("switch_ns_to_routers_only_for_their_addresses", _v("26.9.0"),
              "a logical switch passes a multicast neighbour solicitation to a router port "
              "only for the router's own addresses and VIPs inside its subnets (IP "
              "multicast goes to non-router ports only), so neighbor_responder=all no "
              "longer answers for IPv6 VIPs outside the router's subnets",
              backports=(_v("24.3.8"), _v("25.3.3"), _v("25.9.3"), _v("26.3.1"))),
    Behaviour("add_route_gateway_router", _v("24.9.0"),
              "options:add_route on a gateway router's load balancer: routers sharing a "
              "switch with it get a route to each IPv4 VIP (on distributed gateway ports "
              "since 21.09.0)",
              backports=(_v("24.3.2"),)),
    Behaviour("ct_flush", _v("23.6.0"),
              "options:ct_flush=true: a server removed from a switch's load balancer "
              "loses its conntrack entries, so its established connections end "
              "(without it they stay)",
              backports=(_v("23.3.1"),)),
    Behaviour("ct_flush_router_lb", _v("24.3.0"),
              "options:ct_flush also on a router's load balancer (northd writes router "
              "load balancers to the Southbound DB, so ovn-controller knows them)",
              backports=(_v("23.9.1"),)),
    Behaviour("udp_health_check", _v("20.3.0"),
              "health checks of UDP servers: a server whose port answers the probe "
              "with ICMP port unreachable is offline, one that stays silent online"),
    Behaviour("sctp_lb", _v("20.6.0"),
              "load balancers with protocol=sctp translate SCTP associations to the "
              "servers, ports included"),
    # OVN commit 947e8d450 (gateway routers; distributed gateway ports and
    # ICMPv6 "packet too big" came earlier, 280a91601 in 20.09.0).
    Behaviour("gateway_mtu", _v("21.9.0"),
              "options:gateway_mtu on a router port: a routed packet larger than the value "
              "that would leave through the port is dropped and its sender gets ICMP "
              "\"fragmentation needed\" or ICMPv6 \"packet too big\" with that MTU, so "
              "path MTU discovery works, for load-balanced replies too"),
    Behaviour("lb_full_size_payloads", _v("2.6.0"),
              "connections through a load balancer carry payloads larger than the path's "
              "MTU: full-size segments cross the tunnels (the lab's own MTU leaves room "
              "for Geneve)"),
    # OVN commit 20a96b9d2c3d (FDP-684), first in 25.09.0, not backported.
    Behaviour("lb_fragments_on_userspace_datapath", _v("25.9.0"),
              "on the userspace datapath, every fragment of a datagram to a VIP is "
              "balanced: the load balancer matches conntrack's original tuple, not the L4 "
              "header only the first fragment has (which also needs OVS with "
              "ovs_ct_tp_of_later_fragments); the kernel datapath always did, keeping "
              "the reassembled datagram"),
    Behaviour("lb_template", _v("22.12.0"),
              "template load balancers (options:template=true): VIP and servers are "
              "template variables each chassis resolves from its Chassis_Template_Var row"),
    # Open vSwitch, not OVN: how a dp_hash select group splits hash space.
    Behaviour("ovs_dp_hash_4_slots_per_bucket", _v("3.5.0"),
              "OVS gives every select-group bucket at least 4 hash slots "
              "(before: 16 slots for up to 16 buckets, so k=5 splits 4,3,3,3,3)",
              backports=(_v("3.1.6"), _v("3.2.4"), _v("3.3.3"), _v("3.4.1"))),
    # OVS commit 9f7eb58f77 (FDP-124), first in 3.6.0: ct_tp_src/dst are set
    # for every fragment on the userspace datapath, not the first one only.
    Behaviour("ovs_ct_tp_of_later_fragments", _v("3.6.0"),
              "the userspace datapath gives every fragment of a datagram conntrack's "
              "original ports (ct_tp_src, ct_tp_dst), not the first fragment only",
              backports=(_v("3.1.7"), _v("3.2.5"), _v("3.3.4"), _v("3.4.2"), _v("3.5.0"))),
)}


def expects(name: str, version: Version) -> bool:
    """Whether OVN `version` is expected to show behaviour `name`."""
    return BEHAVIOURS[name].holds_for(version)


@dataclass(frozen=True)
class Quirk:
    """A known deviation of one datapath (and placement), observed, with the
    OVN releases it was seen on; tests tolerate it only where it applies."""

    name: str
    datapaths: tuple[str, ...]
    placements: tuple[str, ...]
    what: str
    seen_on: tuple[Version, ...]


QUIRKS = {q.name: q for q in (
    Quirk("affinity_first_connection_lost", ("netdev",), ("switch",),
          "with options:affinity_timeout on a switch load balancer, the connection "
          "that opens a client's affinity session never completes on the userspace "
          "datapath (its SYN retransmissions are lost too); upstream tests affinity "
          "on the kernel datapath only",
          (_v("23.3.1"), _v("25.3.0"), _v("26.3.1"))),
    Quirk("dgp_fragments_to_vip_lost", ("netdev",), ("dgp",),
          "a fragmented datagram an external client sends to a VIP on a distributed "
          "gateway port is lost on the userspace datapath, also where the switch and "
          "gateway router placements deliver it (OVN 26.03.1, OVS 4.0.0); cause not "
          "found yet",
          (_v("26.3.1"),)),
)}


@dataclass(frozen=True)
class Bug:
    """A known bug that makes a daemon crash, with the releases that carry
    its fix: a crash during a run is still the failure of the test it hit
    (a packager wants to know), and its report names the bug where the
    version under test has it."""

    name: str
    daemon: str  # the program that crashes (ovn-controller, ovs-vswitchd, ...)
    what: str
    fix: str  # the upstream commit
    fixed: Behaviour  # first release with the fix, and the branches' backports

    def affects(self, version: Version) -> bool:
        return not self.fixed.holds_for(version)


BUGS = {b.name: b for b in (
    # Seen once on 23.03.1: ovn-controller died with SIGSEGV during the template
    # load balancer tests on a loaded machine (not reproduced in 133 runs since);
    # valgrind shows this read after a Southbound reconnect, which the lab's 5 s
    # inactivity probe makes possible under load.  No 23.03.x release has the fix.
    Bug("controller_lb_use_after_free", "ovn-controller",
        "after a Southbound reconnect (a full resync) ovn-controller's load balancer "
        "data recompute reads Southbound Load_Balancer rows already freed; usually "
        "harmless, it can crash the daemon with SIGSEGV",
        "e5d093cc243e controller: Avoid use after free in LB I-P. (FDP-610)",
        Behaviour("controller_lb_use_after_free_fixed", _v("24.9.0"), "",
                  backports=(_v("23.6.5"), _v("23.9.5"), _v("24.3.3")))),
    # Open vSwitch (versions are OVS's): seen once on 3.1.0, in 1 of 77
    # rounds of traffic through load balancers whose servers kept changing.
    Bug("vswitchd_conntrack_conn_type_assertion", "ovs-vswitchd",
        "the userspace conntrack asserts conn->conn_type == CT_CONN_TYPE_DEFAULT while "
        "updating or removing a NATed connection and ovs-vswitchd aborts (SIGABRT)",
        "1116459b3 conntrack: Remove nat_conn introducing key directionality.",
        Behaviour("vswitchd_conntrack_conn_type_assertion_fixed", _v("3.3.0"), "",
                  backports=(_v("2.17.8"), _v("3.0.5"), _v("3.1.3"), _v("3.2.3")))),
)}


def known_bugs(daemon: str, version: Version) -> list[Bug]:
    """The known bugs that can crash `daemon` at `version` (of its project)."""
    return [b for b in BUGS.values() if b.daemon == daemon and b.affects(version)]


def quirk(name: str, datapath: str, placement: str) -> bool:
    """Whether quirk `name` applies to `datapath` with `placement`."""
    q = QUIRKS[name]
    return datapath in q.datapaths and placement in q.placements
