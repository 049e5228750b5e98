"""A VIP without a port (vips key "IP", servers "IP,IP"): OVN balances
every destination port of the VIP, translating only the address, so a
connection reaches the same port on the server it is balanced to."""

import pytest

from pytest_ovnlb.traffic.harness import endpoint
from pytest_ovnlb.verdicts import checks


@pytest.mark.ovnlb(needs=("vip_without_port",))
@pytest.mark.ovnlb(needs=("ipv6_vips",), family="ipv6")
def test_vip_without_port_keeps_every_destination_port(ovn_lab, ovn_lbs, ovn_hub, client_node,
                                                       placement, family):
    """Servers listen on two ports of each server; the VIP has no port.
    Connections to each of the two ports of the VIP are all served, by
    every server, and always by the server on that same port."""
    servers = ovn_lbs.servers(4)  # two ports on each server VM
    lb = ovn_lbs(servers, ports=False)
    node = client_node("internal")
    ports = sorted({s.port for s in servers})
    assert len(ports) == 2
    for port in ports:
        expected = {s.target for s in servers if s.port == port}
        results = ovn_hub.connect(node, lb.vip, port, 30, timeout=2.0)
        assert all(r.ok for r in results) and checks.tally(results).keys() == expected, (
            f"to port {port} of a VIP without a port ({endpoint(lb.vip, port)}): connections "
            "failed, or not served on that port by every server: " + checks.context(
                lb, placement, node, f"every connection served, by {sorted(expected)}",
                results, ovn_lab))
