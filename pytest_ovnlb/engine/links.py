"""Small link operations inside a network namespace (a name under
/run/netns, or a path such as /proc/PID/ns/net), done from this process."""

from __future__ import annotations

import array
import fcntl
import ipaddress
import socket
import struct
from contextlib import contextmanager

from pyroute2 import IPRoute

from pytest_ovnlb.engine import procs

ETHTOOL_STXCSUM = 0x17
SIOCETHTOOL = 0x8946


@contextmanager
def iproute(ns: str):
    with procs.in_netns(ns):
        ipr = IPRoute()
    try:
        yield ipr
    finally:
        ipr.close()


# Below the kernel's own prefix routes (256): ours win for the same prefix.
PREFERRED_METRIC = 128
IFA_F_NODAD = 0x02


def configure(r: IPRoute, ifname: str, addresses, gateways=(), mac: str | None = None) -> None:
    """Give an interface its MAC, its addresses (CIDR, either family) and
    a default route per gateway (the family follows the gateway), and set it up.
    What the interface already has of these stays (a restarted ovs-vswitchd
    may find its port's addresses still there)."""
    index = r.link_lookup(ifname=ifname)[0]
    if mac:
        r.link("set", index=index, address=mac)
    for cidr in filter(None, addresses):
        iface = ipaddress.ip_interface(cidr)
        # no duplicate address detection: a tentative address cannot be a
        # route's preferred source (below), and the lab's addresses are unique
        r.addr("replace", index=index, address=str(iface.ip), prefixlen=iface.network.prefixlen,
               flags=IFA_F_NODAD if iface.version == 6 else 0)
    r.link("set", index=index, state="up")
    # IPv6 source selection prefers, whatever the route, the address sharing
    # the longest prefix with the destination (up to its own prefix length):
    # a host with a /64 and a /112 on one link would use the /112 one for
    # every destination on the /64.  A route per address's own subnet, with
    # that address as preferred source, makes each subnet use its own.
    for cidr in filter(None, addresses):
        iface = ipaddress.ip_interface(cidr)
        if iface.version == 6:
            r.route("replace", dst=str(iface.network), oif=index, prefsrc=str(iface.ip),
                    priority=PREFERRED_METRIC)
    for gateway in filter(None, gateways):
        default = "0.0.0.0/0" if ipaddress.ip_address(gateway).version == 4 else "::/0"
        r.route("replace", dst=default, gateway=gateway)


def tx_checksum_off(ns: str, ifname: str) -> None:
    """`ethtool -K IF tx off`: the userspace datapath does not fill in
    checksums left to the NIC, so TCP through it would otherwise stall."""
    with procs.in_netns(ns):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with sock:
        value = array.array("B", struct.pack("II", ETHTOOL_STXCSUM, 0))
        addr, _ = value.buffer_info()
        ifreq = struct.pack("16sP", ifname.encode(), addr)
        fcntl.ioctl(sock.fileno(), SIOCETHTOOL, ifreq)


def last_line(stderr: str) -> str:
    """What a failed program said last: usually the one line that matters."""
    return (stderr.strip().splitlines() or ["no output"])[-1]
