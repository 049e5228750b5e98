"""Payloads larger than the path's MTU through a load balancer, at every
placement and in both families: a 64 kB HTTP reply (full-size TCP segments,
each crossing a Geneve tunnel) and UDP datagrams larger than the MTU (IP
fragments, both ways).  A network that leaves no room for the tunnel's
overhead, or a datapath that loses fragments, stalls here while small
probes pass.  Control first: the same client and servers, small replies.

On the userspace datapath a fragmented datagram to a VIP is balanced only
since OVN 25.09.0 with an OVS that gives later fragments conntrack's ports
(verdicts/versions.py: lb_fragments_on_userspace_datapath,
ovs_ct_tp_of_later_fragments), and not at a distributed gateway port even
then (quirk dgp_fragments_to_vip_lost): there the UDP run is skipped,
saying why.  On the kernel datapath it always runs."""

import pytest

from pytest_ovnlb.verdicts import checks
from pytest_ovnlb.verdicts.versions import BEHAVIOURS, QUIRKS, expects, quirk

HTTP_BYTES = 65536
UDP_BYTES = 4000  # three fragments at the lab's MTU
SAMPLES = 4
OVN_FIX, OVS_FIX = "lb_fragments_on_userspace_datapath", "ovs_ct_tp_of_later_fragments"


def fragments_skipped(versions, placement) -> str | None:
    """Why fragmented datagrams to a VIP cannot be expected here, if so."""
    if versions.datapath != "netdev":
        return None
    for name, version, project in ((OVN_FIX, versions.ovn, "OVN"),
                                   (OVS_FIX, versions.ovs, "OVS")):
        if not expects(name, version):
            return (f"{project} {version} predates {BEHAVIOURS[name].since} on the userspace "
                    f"datapath: {BEHAVIOURS[name].what}")
    if quirk("dgp_fragments_to_vip_lost", versions.datapath, placement):
        return (f"a known deviation of the userspace datapath at this placement: "
                f"{QUIRKS['dgp_fragments_to_vip_lost'].what}")
    return None


@pytest.mark.router
@pytest.mark.switch
@pytest.mark.dgp
@pytest.mark.ovnlb_feature(name="lb_full_size_payloads")
@pytest.mark.parametrize("proto, size", [
    ("tcp", HTTP_BYTES),
    pytest.param("udp", UDP_BYTES, marks=[
        pytest.mark.ovnlb_feature(name="lb_fragments_on_userspace_datapath"),
        pytest.mark.ovnlb_feature(name="ovs_ct_tp_of_later_fragments")])])
def test_payloads_larger_than_the_mtu_cross_every_path(ovn_lab, ovn_lbs, ovn_hub, client_node,
                                                       placement, proto, size):
    why = fragments_skipped(ovn_lab.versions, placement) if proto == "udp" else None
    if why:
        pytest.skip(why)
    node = client_node("served")
    # a load balancer per server: every path is taken, the tunnelled ones too
    for server in ovn_lbs.servers(2):
        lb = ovn_lbs([server], protocol=proto)
        small = ovn_hub.fresh(node, lb.vip, lb.port, SAMPLES, proto=proto)
        assert checks.tally(small) == {server.target: SAMPLES}, (
            "control failed, small replies: " + checks.context(
                lb, placement, node, f"every connection served by {server.target}", small,
                ovn_lab))
        big = ovn_hub.fresh(node, lb.vip, lb.port, SAMPLES, proto=proto, size=size,
                            timeout=5.0)
        assert checks.tally(big) == {server.target: SAMPLES}, (
            f"{proto} replies of {size} bytes more, larger than the MTU: " + checks.context(
                lb, placement, node, f"every one served whole by {server.target}", big,
                ovn_lab))
