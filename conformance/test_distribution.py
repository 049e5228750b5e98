"""New connections to a VIP spread over its servers as OVS's dp_hash select
group shares them out, from every kind of client and for every placement."""

import pytest

# 5 buckets is where OVS's two slot rules differ (4,3,3,3,3 of 16 vs 7,7,6,6,6 of 32)
K_SERVERS = [2, 3, pytest.param(5, marks=pytest.mark.ovnlb(
    proves=("ovs_dp_hash_4_slots_per_bucket",)))]


def spread(ovn_case, node, k, samples, proto="tcp"):
    lb = ovn_case.lb(ovn_case.servers(k), protocol=proto)
    # One connection before the sample, neither counted nor judged: a router
    # that has not yet learned the client's MAC (an external client's first
    # traffic here) hands the replies to ovn-controller, which buffers only
    # a few while it resolves the client (seen on fake-multinode: 58 of 64
    # timed out).  On a broken path the sample still fails in its first round.
    ovn_case.fresh(node, lb, 1, proto=proto)
    ovn_case.expect_split(lb, node, samples(k), f"new {proto} flows from {node}", proto=proto)


@pytest.mark.router
@pytest.mark.parametrize("k", K_SERVERS)
@pytest.mark.parametrize("client", ["external", "internal"])
@pytest.mark.ovnlb(proves=("distribution",))
def test_gateway_router_spreads_new_connections(ovn_case, client, k, samples):
    spread(ovn_case, ovn_case.client(client), k, samples)


@pytest.mark.dgp
@pytest.mark.ovnlb(proves=("distribution",))
def test_gateway_port_spreads_external_clients(ovn_case, samples):
    """A distributed router balances what enters through its gateway port
    (3 servers: where dp_hash shares differ from an even split)."""
    spread(ovn_case, ovn_case.client("external"), 3, samples)


@pytest.mark.switch
@pytest.mark.parametrize("k", K_SERVERS)
@pytest.mark.ovnlb(proves=("distribution",))
def test_client_switch_spreads_new_connections(ovn_case, k, samples):
    spread(ovn_case, ovn_case.client("internal"), k, samples)


@pytest.mark.ovnlb(proves=("distribution",))
def test_udp_flows_spread_over_servers(ovn_case, samples):
    """UDP: each new source port is a new flow, balanced like a TCP connection."""
    spread(ovn_case, ovn_case.client("internal"), 3, samples, proto="udp")
