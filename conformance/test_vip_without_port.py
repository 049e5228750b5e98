"""A VIP without a port (vips key "IP", servers "IP,IP"): OVN balances
every destination port of the VIP, translating only the address, so a
connection reaches the same port on the server it is balanced to."""

import pytest

from pytest_ovnlb.traffic.harness import endpoint


@pytest.mark.ovnlb(needs=("vip_without_port",))
@pytest.mark.ovnlb(needs=("ipv6_vips",), family="ipv6")
def test_vip_without_port_keeps_every_destination_port(ovn_case):
    """Servers listen on two ports of each server; the VIP has no port.
    Connections to each of the two ports of the VIP are all served, by
    every server, and always by the server on that same port."""
    servers = ovn_case.servers(4)  # two ports on each server VM
    lb = ovn_case.lb(servers, ports=False)
    node = ovn_case.client("internal")
    ports = sorted({s.port for s in servers})
    assert len(ports) == 2
    for port in ports:
        ovn_case.expect_served(ovn_case.fresh(node, lb, 30, port=port, timeout=2.0), lb, node,
                               by={s.target for s in servers if s.port == port},
                               what=f"to port {port} of a VIP without a port "
                               f"({endpoint(lb.vip, port)})")
