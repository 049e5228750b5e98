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
def test_gateway_mtu_teaches_a_server_behind_a_vip_the_path_mtu(ovn_case):
    lab, node = ovn_case.lab, ovn_case.client("external")
    server, = ovn_case.servers(1)
    lb = ovn_case.lb([server])
    router, outside = ovn_case.roles.datapath(ovn_case.placement), lab.topology.provider.switch
    option = f"gateway_mtu={GATEWAY_MTU} on {router}'s port to {outside}"
    forget_mtus(lab, server)
    try:
        plain = ovn_case.fresh(node, lb, SAMPLES, size=REPLY_BYTES, timeout=5.0)
        ovn_case.expect_served(plain, lb, node, by=server.target,
                               what=f"control failed, no gateway_mtu, {REPLY_BYTES} B replies")
        client = plain[0].peer
        learned = learned_mtu(lab, server, client)
        ovn_case.expect(learned is None, lb, node, f"control failed: {server.vm} learned a "
                        f"path MTU to {client} without gateway_mtu", "no path MTU", learned)
        with ovn_case.lbs.router_port_options(router, outside, {"gateway_mtu": str(GATEWAY_MTU)}):
            big = ovn_case.fresh(node, lb, SAMPLES, size=REPLY_BYTES, timeout=5.0)
            learned = learned_mtu(lab, server, client)
        ovn_case.expect_served(big, lb, node, by=server.target,
                               what=f"with {option}, {REPLY_BYTES} B replies, larger than it, "
                               "should arrive whole after path MTU discovery")
        ovn_case.expect(learned == GATEWAY_MTU, lb, node, f"with {option}, {server.vm} should "
                        f"have been told the path MTU to {client}",
                        f"path MTU {GATEWAY_MTU} learned", learned)
    finally:
        forget_mtus(lab, server)
