"""Payloads larger than the path's MTU through a load balancer, at every
placement and in both families: a 64 kB HTTP reply (full-size TCP segments,
each crossing a Geneve tunnel) and UDP datagrams larger than the MTU (IP
fragments, both ways).  A network that leaves no room for the tunnel's
overhead, or a datapath that loses fragments, stalls here while small
probes pass.  Control first: the same client and servers, small replies.

On the userspace datapath a fragmented datagram to a VIP is balanced only
since OVN 25.09.0 with an OVS that gives later fragments conntrack's ports
(model/versions.py: lb_fragments_on_userspace_datapath,
ovs_ct_tp_of_later_fragments), and not at a distributed gateway port even
then (quirk dgp_fragments_to_vip_lost): there the UDP run is skipped,
saying why.  On the kernel datapath it always runs."""

import pytest

from pytest_ovnlb.model.versions import BEHAVIOURS, QUIRKS, quirk

HTTP_BYTES = 65536
UDP_BYTES = 4000  # three fragments at the lab's MTU
SAMPLES = 4
OVN_FIX, OVS_FIX = "lb_fragments_on_userspace_datapath", "ovs_ct_tp_of_later_fragments"


def fragments_skipped(ovn_case) -> str | None:
    """Why fragmented datagrams to a VIP cannot be expected here, if so."""
    versions = ovn_case.lab.versions
    if versions.datapath != "netdev":
        return None
    for name, project in ((OVN_FIX, "OVN"), (OVS_FIX, "OVS")):
        if not ovn_case.holds(name):
            return (f"{project} predates {BEHAVIOURS[name].since} on the userspace "
                    f"datapath ({versions.summary}): {BEHAVIOURS[name].what}")
    if quirk("dgp_fragments_to_vip_lost", versions.datapath, ovn_case.placement):
        return (f"a known deviation of the userspace datapath at this placement: "
                f"{QUIRKS['dgp_fragments_to_vip_lost'].what}")
    return None


@pytest.mark.router
@pytest.mark.switch
@pytest.mark.dgp
@pytest.mark.ovnlb(proves=("lb_full_size_payloads",))
@pytest.mark.parametrize("proto, size", [
    ("tcp", HTTP_BYTES),
    pytest.param("udp", UDP_BYTES, marks=pytest.mark.ovnlb(proves=(OVN_FIX, OVS_FIX)))])
def test_payloads_larger_than_the_mtu_cross_every_path(ovn_case, proto, size):
    why = fragments_skipped(ovn_case) if proto == "udp" else None
    if why:
        pytest.skip(why)
    node = ovn_case.client("served")
    # a load balancer per server: every path is taken, the tunnelled ones too
    for server in ovn_case.servers(2):
        lb = ovn_case.lb([server], protocol=proto)
        ovn_case.expect_served(ovn_case.fresh(node, lb, SAMPLES, proto=proto), lb, node,
                               by=server.target, what="control failed, small replies")
        big = ovn_case.fresh(node, lb, SAMPLES, proto=proto, size=size, timeout=5.0)
        ovn_case.expect_served(big, lb, node, by=server.target,
                               what=f"{proto} replies of {size} bytes more, larger than the MTU")
