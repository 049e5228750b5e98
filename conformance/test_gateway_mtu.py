"""A router port's options:gateway_mtu makes path MTU discovery work through
a load balancer: a server's reply to a client beyond the port, larger than
the value, is dropped and the server told the MTU (ICMP "fragmentation
needed", ICMPv6 "packet too big"), so it sends smaller segments and the
whole reply arrives.  Control first, in the same lab: without the option the
same 64 kB replies arrive and teach the server nothing.  A router that
ignored the option would leave the server's path MTU unlearned; one that
dropped without telling would stall the replies."""

import re

import pytest

from pytest_ovnlb.verdicts import checks

# Above IPv6's minimum MTU (1280): Linux ignores a "packet too big" below it.
GATEWAY_MTU = 1300
REPLY_BYTES = 65536
SAMPLES = 4


def learned_mtu(lab, server, address: str) -> int | None:
    """The path MTU `server` keeps for `address` (`ip route get`), if any."""
    out = lab.run(server.vm, ["ip", "route", "get", address], capture_output=True, text=True,
                  check=True).stdout
    found = re.search(r"\bmtu (\d+)", out)
    return int(found.group(1)) if found else None


def forget_mtus(lab, server) -> None:
    """Drop what the server learned (route exceptions go with a route flush)."""
    for family in ("-4", "-6"):
        lab.run(server.vm, ["ip", family, "route", "flush", "cache"], check=True)


@pytest.mark.router
@pytest.mark.dgp
@pytest.mark.ovnlb(needs=("gateway_mtu",))
def test_gateway_mtu_teaches_a_server_behind_a_vip_the_path_mtu(
        ovn_lab, ovn_lbs, ovn_hub, client_node, roles, placement):
    node = client_node("external")
    server, = ovn_lbs.servers(1)
    lb = ovn_lbs([server])
    router, outside = roles.datapath(placement), ovn_lab.topology.provider.switch
    forget_mtus(ovn_lab, server)
    try:
        plain = ovn_hub.connect(node, lb.vip, lb.port, SAMPLES, size=REPLY_BYTES, timeout=5.0)
        assert checks.tally(plain) == {server.target: SAMPLES}, (
            "control failed, no gateway_mtu: " + checks.context(
                lb, placement, node, f"every {REPLY_BYTES} B reply whole from {server.target}",
                plain, ovn_lab))
        client = plain[0].peer
        assert learned_mtu(ovn_lab, server, client) is None, (
            f"control failed: {server.vm} learned a path MTU to {client} without "
            f"gateway_mtu [{ovn_lab.summary}]")
        with ovn_lbs.router_port_options(router, outside, {"gateway_mtu": str(GATEWAY_MTU)}):
            big = ovn_hub.connect(node, lb.vip, lb.port, SAMPLES, size=REPLY_BYTES, timeout=5.0)
            learned = learned_mtu(ovn_lab, server, client)
        assert checks.tally(big) == {server.target: SAMPLES}, (
            f"with gateway_mtu={GATEWAY_MTU} on {router}'s port to {outside}, replies larger "
            "than it should arrive whole after path MTU discovery: " + checks.context(
                lb, placement, node, f"every {REPLY_BYTES} B reply whole from {server.target}",
                big, ovn_lab))
        assert learned == GATEWAY_MTU, (
            f"with gateway_mtu={GATEWAY_MTU} on {router}'s port to {outside}, {server.vm} "
            f"should have been told the path MTU to {client}: " + checks.context(
                lb, placement, node, f"path MTU {GATEWAY_MTU} learned", learned, ovn_lab))
    finally:
        forget_mtus(ovn_lab, server)
