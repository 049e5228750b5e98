"""New connections to a VIP spread over its backends as OVS's dp_hash select
group shares them out, from every kind of client and for every placement."""

import pytest

from pytest_ovnlb.reporting import record
from pytest_ovnlb.verdicts import checks

# 5 buckets is where OVS's two slot rules differ (4,3,3,3,3 of 16 vs 7,7,6,6,6 of 32)
K_BACKENDS = [2, 3, pytest.param(5, marks=pytest.mark.ovnlb_feature(
    name="ovs_dp_hash_4_slots_per_bucket"))]


def warm_up(ovn_hub, lb, node):
    """One connection before the sample, neither counted nor judged: a
    router that has not yet learned the client's MAC (an external client's
    first traffic in this lab) hands the replies to ovn-controller, which
    buffers only a few while it resolves the client, so a first burst of
    connections would lose most of theirs (seen on fake-multinode: 58 of 64
    timed out).  The sample is of the split once the path is set up; on a
    broken path it fails after its first round as before."""
    ovn_hub.fresh(node, lb.vip, lb.port, 1)


def spread(ovn_lbs, ovn_hub, ovn_lab, node, k, samples):
    samples = samples(k)
    backends = ovn_lbs.servers(k)
    lb = ovn_lbs(backends)
    shares = checks.dp_hash_shares(lb.targets, ovn_lab.versions.ovs)
    warm_up(ovn_hub, lb, node)
    # Takes `samples` answers (lost connections come on top, judged on their
    # own); stops early once the verdict is a failure whatever the rest would do.
    results = ovn_hub.fresh(node, lb.vip, lb.port, samples,
                            concurrency=checks.SAMPLING_CONCURRENCY,
                            stop=checks.Settled(shares, samples))
    verdict = checks.distribution(results, shares, planned=samples)
    record.current().distribution(verdict, client=node, vip=lb.vip_key)
    used = checks.tally(results)
    assert verdict.passed, (
        checks.failure(verdict, "OVN's split does not match OVS dp_hash shares") + ": "
        + checks.context(lb, ovn_lbs.placement, node, f"the dp_hash shares of {k} backends",
                         f"{len(results)} new connections as counted below", ovn_lab)
        + f"\n{verdict.report()}")
    assert all(used[t] > 0 for t in lb.targets), "a backend got nothing: " + checks.context(
        lb, ovn_lbs.placement, node, f"every one of {sorted(lb.targets)} used", results, ovn_lab)


@pytest.mark.router
@pytest.mark.parametrize("k", K_BACKENDS)
@pytest.mark.parametrize("client", ["external", "internal"])
@pytest.mark.ovnlb_feature(name="distribution")
def test_gateway_router_spreads_new_connections(ovn_lbs, ovn_hub, ovn_lab, client_node,
                                                placement, client, k, samples):
    spread(ovn_lbs, ovn_hub, ovn_lab, client_node(client), k, samples)


@pytest.mark.dgp
@pytest.mark.ovnlb_feature(name="distribution")
def test_gateway_port_spreads_external_clients(ovn_lbs, ovn_hub, ovn_lab, client_node,
                                               placement, samples):
    """A distributed router balances what enters through its gateway port
    (3 backends: where dp_hash shares differ from an even split)."""
    spread(ovn_lbs, ovn_hub, ovn_lab, client_node("external"), 3, samples)


@pytest.mark.switch
@pytest.mark.parametrize("k", K_BACKENDS)
@pytest.mark.ovnlb_feature(name="distribution")
def test_client_switch_spreads_new_connections(ovn_lbs, ovn_hub, ovn_lab, client_node,
                                               placement, k, samples):
    spread(ovn_lbs, ovn_hub, ovn_lab, client_node("internal"), k, samples)


@pytest.mark.ovnlb_feature(name="distribution")
def test_udp_flows_spread_over_backends(ovn_lbs, ovn_hub, ovn_lab, client_node,
                                        placement, samples):
    """UDP: each new source port is a new flow, balanced like a TCP connection."""
    lb = ovn_lbs(ovn_lbs.servers(3), protocol="udp")
    node = client_node("internal")
    samples = samples(3)
    shares = checks.dp_hash_shares(lb.targets, ovn_lab.versions.ovs)
    results = ovn_hub.fresh(node, lb.vip, lb.port, samples, proto="udp",
                            concurrency=checks.SAMPLING_CONCURRENCY,
                            stop=checks.Settled(shares, samples))
    verdict = checks.distribution(results, shares, planned=samples)
    record.current().distribution(verdict, client=node, vip=lb.vip_key, protocol="udp")
    assert verdict.passed, (
        "UDP flows: " + checks.failure(verdict, "OVN's split does not match OVS dp_hash shares")
        + ": " + checks.context(lb, placement, node, "the dp_hash shares of 3 backends",
                                f"{len(results)} new flows as counted below", ovn_lab)
        + f"\n{verdict.report()}")
