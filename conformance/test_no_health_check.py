"""Without a health check OVN keeps balancing to a backend whose server is
down: about its share of new connections is refused, the rest succeed."""

from pytest_ovnlb.reporting import record
from pytest_ovnlb.verdicts import checks


def test_dead_backend_keeps_its_share_as_refusals(ovn_lbs, ovn_hub, ovn_lab, client_node,
                                                  placement, samples):
    backends = ovn_hub.servers(2)
    lb = ovn_lbs(backends)
    dead, alive = backends
    ovn_hub.stop(dead)
    results = ovn_hub.fresh(client_node("internal"), lb.vip, lb.port, samples)
    shares = checks.dp_hash_shares(lb.targets, ovn_lab.versions.ovs)
    expected = {"error:refused": shares[dead.target], alive.target: shares[alive.target]}
    verdict = checks.distribution(results, expected)
    record.current().distribution(verdict, stopped=dead.target, vip=lb.vip_key)
    assert verdict.passed, (
        f"with {dead.target}'s server stopped and no health check, its share should be "
        f"refused and the rest served by {alive.target}\n{verdict.report()}")
