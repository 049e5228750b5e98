"""Every kernel setting a lab namespace relies on, per role, with the reason.

A new network namespace does not start from kernel defaults: its IPv4 (and,
with `net.core.devconf_inherit_init_net=1`, IPv6) `conf/all` and
`conf/default` are copied from the host or from the namespace that created
it, depending on `devconf_inherit_init_net` (0: IPv4 from the host, IPv6
defaults; 1: both from the host; 2: both kernel defaults; 3: both from the
creating namespace), and a few other values (TCP buffers and congestion
control) are copied from the host whatever that says.
A host with forwarding on (podman, docker, libvirt, Kubernetes) would turn
the lab's VMs into routers.  So each namespace sets, itself, every value its
role depends on, before any interface exists in it: an interface copies its
`conf/<if>` from `conf/default` when it is created or moved in, `lo` exists
already and is set explicitly, and some values act through `conf/all`.

Not settable from a namespace, so not here: the neighbour table's garbage
collection thresholds and the per-interface neighbour parameters' template
(`net.ipv4.neigh.default`, host-wide; the lab holds a few dozen entries),
the socket buffer limits `net.core.{r,w}mem_{default,max}` (read-only copies
of the host's inside a namespace), and host-wide limits such as
`nf_conntrack_max` (the lab's namespaces have no kernel firewall rules, so
kernel conntrack tracks nothing there).

`apply(role, netns)` writes a role's table inside a namespace (a name under
/run/netns or the path of a namespace file, e.g. /proc/PID/ns/net or
/proc/PID/root/run/netns/NAME inside a container), then reads every value
back.  A required setting missing on this kernel is an error; an optional
one is skipped.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from pytest_ovnlb.engine import procs
from pytest_ovnlb.errors import LabError

# `conf/all` and `conf/default` before any interface exists; `lo` exists.
CONF_SCOPES = ("all", "default", "lo")


@dataclass(frozen=True)
class Setting:
    key: str  # dotted sysctl name; "{if}" stands for each of CONF_SCOPES
    value: str
    why: str
    optional: bool = False  # absent on some kernels: then skipped

    def expand(self):
        """(dotted key, /proc/sys path) for every file this setting writes."""
        scopes = CONF_SCOPES if "{if}" in self.key else (None,)
        for scope in scopes:
            key = self.key.replace("{if}", scope) if scope else self.key
            yield key, "/proc/sys/" + key.replace(".", "/")


def _s(key, value, why, optional=False):
    return Setting(key, str(value), why, optional)


# --- the tables ---------------------------------------------------------------
# Order matters where the kernel couples values: writing IPv4
# `conf/all/forwarding` also resets `conf/all/accept_redirects`, so
# forwarding comes first; IPv6 is (re-)enabled last, once its addressing
# settings are in place for the addresses that appear then.

NOT_A_ROUTER = [
    _s("net.ipv4.conf.{if}.forwarding", 0,
       "a host, not a router: with forwarding on, a packet for an address it does "
       "not own (a VIP routed to a backend) goes back out with ICMP errors instead "
       "of being dropped (`net.ipv4.ip_forward` is `conf/all/forwarding`)"),
]

HOST_IPV4 = NOT_A_ROUTER + [
    _s("net.ipv4.conf.{if}.rp_filter", 0,
       "no reverse-path check (kernel default; `all` counts too): OVN rewrites "
       "sources (SNAT, hairpin through a VIP) and a chassis holds addresses in two "
       "subnets on two interfaces; a strict host value must not drop replies"),
    _s("net.ipv4.conf.{if}.accept_local", 0,
       "a packet arriving with the node's own address as its source is dropped, "
       "as on any host (kernel default)"),
    _s("net.ipv4.conf.{if}.route_localnet", 0,
       "127/8 stays on lo (kube-proxy turns this on host-wide)"),
    _s("net.ipv4.conf.{if}.proxy_arp", 0,
       "a node answers ARP only for its own addresses: with proxy ARP a chassis "
       "would answer for a VIP or another host on the provider network"),
    _s("net.ipv4.conf.{if}.arp_ignore", 0,
       "ARP replies as the kernel default (kube-proxy's IPVS mode sets 1 host-wide): "
       "which of a chassis's addresses answers must not depend on the host"),
    _s("net.ipv4.conf.{if}.arp_announce", 0,
       "ARP request sources as the kernel default (IPVS setups set 2 host-wide)"),
    _s("net.ipv4.conf.{if}.arp_filter", 0,
       "ARP answered on any interface of the node, as the kernel default"),
    _s("net.ipv4.conf.{if}.arp_accept", 0,
       "neighbours are learned by asking, not from OVN's gratuitous ARPs"),
    _s("net.ipv4.conf.{if}.accept_redirects", 0,
       "an ICMP redirect never rewrites a node's static routes during a test"),
    _s("net.ipv4.conf.{if}.send_redirects", 0,
       "a node never tells others to route around it"),
]

HOST_IPV6 = [
    _s("net.ipv6.conf.{if}.forwarding", 0,
       "a host, not a router, in IPv6 too (with devconf_inherit_init_net=1 the "
       "host's value is copied in)"),
    _s("net.ipv6.conf.{if}.accept_ra", 0,
       "addresses and routes are static: a router advertisement adds none"),
    _s("net.ipv6.conf.{if}.autoconf", 0,
       "no SLAAC addresses beside the static ones (they would change which "
       "source address a client uses)"),
    _s("net.ipv6.conf.{if}.use_tempaddr", 0, "no privacy addresses as sources"),
    _s("net.ipv6.conf.{if}.accept_dad", 0,
       "an address is usable as soon as it is added, never left tentative while "
       "duplicate address detection runs"),
    _s("net.ipv6.conf.{if}.addr_gen_mode", 0,
       "every interface gets its EUI-64 link-local address, which neighbour "
       "discovery needs (addr_gen_mode=1 would leave none)"),
    _s("net.ipv6.conf.{if}.accept_redirects", 0,
       "an ICMPv6 redirect never rewrites a node's static routes"),
    _s("net.ipv6.conf.{if}.proxy_ndp", 0,
       "a node answers neighbour solicitations only for its own addresses"),
    _s("net.ipv6.conf.{if}.disable_ipv6", 0,
       "IPv6 on every interface, whatever the host disables (`default` for new "
       "interfaces, `all`); missing only on a kernel booted with ipv6.disable=1"),
]

HOST_STACK = [
    _s("net.ipv4.ip_local_port_range", "1024 65535",
       "many short connections per test: clients get the widest port range"),
    _s("net.ipv4.tcp_rmem", "4096 131072 6291456",
       "TCP receive buffers as the kernel default: a new namespace copies the host's"),
    _s("net.ipv4.tcp_wmem", "4096 16384 4194304",
       "TCP send buffers as the kernel default: a new namespace copies the host's"),
    _s("net.ipv4.tcp_congestion_control", "reno",
       "a new namespace copies the host's (e.g. bbr); reno is the one algorithm every "
       "namespace may choose (the host's tcp_allowed_congestion_control rules the rest)"),
]

HOST = HOST_IPV4 + HOST_IPV6 + HOST_STACK

UNDERLAY = NOT_A_ROUTER + [
    _s("net.ipv6.conf.{if}.forwarding", 0,
       "bridging only, no routing, in IPv6 too", optional=True),
    _s("net.ipv6.conf.{if}.disable_ipv6", 1,
       "the bridges and their ports hold no addresses and bridge IPv6 frames all "
       "the same; without IPv6 of its own the namespace adds no neighbour "
       "discovery or MLD of its own to the lab's wires", optional=True),
    _s("net.bridge.bridge-nf-call-iptables", 0,
       "bridged frames skip this namespace's iptables and conntrack (br_netfilter "
       "defaults to 1 in every namespace); only present with br_netfilter",
       optional=True),
    _s("net.bridge.bridge-nf-call-ip6tables", 0,
       "as bridge-nf-call-iptables, for IPv6", optional=True),
    _s("net.bridge.bridge-nf-call-arptables", 0,
       "as bridge-nf-call-iptables, for ARP", optional=True),
]

ROLES: dict[str, list[Setting]] = {
    # a VM: a plain host with one interface and a default route
    "vm": HOST,
    # a chassis: a host running OVS (userspace datapath, so the kernel only
    # sees tap devices), with addresses on br-phy (geneve) and on the
    # provider network, where it is also a client
    "chassis": HOST,
    # a host namespace on the provider network, client only
    "client": HOST,
    # Linux bridges joining the chassis: L2 only
    "underlay": UNDERLAY,
}


def _write(path: str, value: str) -> None:
    fd = os.open(path, os.O_WRONLY)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


def _read(path: str) -> str:
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.read(fd, 4096).decode()
    finally:
        os.close(fd)


def apply_table(table: list[Setting], netns: str, role: str = "custom") -> None:
    """Write `table` inside `netns`, then check every value reads back."""
    written = []
    with procs.in_netns(netns):
        for setting in table:
            for key, path in setting.expand():
                try:
                    _write(path, setting.value)
                except FileNotFoundError:
                    if setting.optional:
                        continue
                    raise LabError(f"{key} does not exist on this kernel, and a lab {role} "
                                   f"namespace needs it ({setting.why})") from None
                except OSError as exc:
                    raise LabError(f"cannot set {key}={setting.value} in {netns}: "
                                   f"{exc.strerror}") from None
                written.append((key, path, setting.value))
        for key, path, value in written:
            now = _read(path)
            if now.split() != value.split():
                raise LabError(f"{key} in {netns} reads {now.strip()!r} after being set "
                               f"to {value!r}")


def apply(role: str, netns: str) -> None:
    """Give namespace `netns` (a name under /run/netns or a namespace file's
    path) every kernel setting `role` relies on."""
    if role not in ROLES:
        raise LabError(f"unknown namespace role {role!r} (known: {', '.join(ROLES)})")
    apply_table(ROLES[role], netns, role)
