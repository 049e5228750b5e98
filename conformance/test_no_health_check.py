"""Without a health check OVN keeps balancing to a server whose web server
is down: about its share of new connections is refused, the rest succeed."""

import pytest

from pytest_ovnlb.reporting import measure
from pytest_ovnlb.verdicts import checks


@pytest.mark.ovnlb(proves=("distribution",))
def test_dead_server_keeps_its_share_as_refusals(ovn_lbs, ovn_hub, ovn_lab, client_node,
                                                  placement, samples):
    servers = ovn_lbs.servers(2)
    lb = ovn_lbs(servers)
    dead, alive = servers
    node = client_node("internal")
    # Control: with both servers up the same client is served by both, so
    # refusals later can only come from the stopped server.
    before = ovn_hub.connect(node, lb.vip, lb.port, 50)
    assert all(r.ok for r in before) and checks.tally(before).keys() == set(lb.targets), (
        "control failed, both servers up: " + checks.context(
            lb, placement, node, "every connection served, by both servers", before, ovn_lab))
    shares = checks.dp_hash_shares(lb.targets, ovn_lab.versions.ovs)
    ovn_hub.stop(dead)
    expected = {"error:refused": shares[dead.target], alive.target: shares[alive.target]}
    # refusals are part of this split; other errors are lost connections
    planned = samples(2)
    results = ovn_hub.connect(node, lb.vip, lb.port, planned,
                              concurrency=checks.SAMPLING_CONCURRENCY,
                              stop=checks.Settled(expected, planned))
    verdict = checks.distribution(results, expected, planned=planned)
    measure.current().distribution(verdict, stopped=dead.target, vip=lb.vip_key)
    assert verdict.passed, checks.failure(
        verdict, f"with {dead.target}'s server stopped and no health check, its share should "
        f"be refused and the rest served by {alive.target}") + ": " + checks.context(
            lb, placement, node, expected, results, ovn_lab) + f"\n{verdict.report()}"
