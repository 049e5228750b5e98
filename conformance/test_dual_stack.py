"""A dual-stack service: one Load_Balancer row holding an IPv4 and an IPv6
VIP over the same servers, as Kubernetes and OpenStack make them.  Each
VIP serves on its own, from the same client, with the source address its
family and placement call for."""

import pytest

from pytest_ovnlb.verdicts import checks


@pytest.mark.ovnlb(needs=("ipv6_vips",))
def test_both_vips_of_one_load_balancer_behave_alike(ovn_lab, ovn_lbs, ovn_hub, client_node,
                                                     placement, family):
    """The test's family makes the row, the other family's VIP is added to
    it; both then spread one client's connections over every backend and
    show the backends the same kind of source (the gateway router's SNAT
    address of that family, or the client's own address on a switch)."""
    node = client_node("internal")
    first = ovn_lbs(ovn_lbs.servers(2))
    second = ovn_lbs.add_vip(first, 10 - family)  # 4 -> 6, 6 -> 4
    for lb in (first, second):
        fam = 6 if ":" in lb.vip else 4
        results = ovn_hub.fresh(node, lb.vip, lb.port, 40)
        expected = (ovn_lab.topology.roles.snat_ip(fam) if placement == "router"
                    else ovn_lab.topology.address(node, fam))
        assert checks.tally(results).keys() == set(lb.targets) and all(r.ok for r in results), (
            f"the IPv{fam} VIP of a dual-stack load balancer: " + checks.context(
                lb, placement, node, f"every connection served, by {sorted(lb.targets)}",
                results, ovn_lab))
        seen = checks.peers_by_backend(results)
        assert all(peers == {expected} for peers in seen.values()), (
            f"the IPv{fam} VIP of a dual-stack load balancer: " + checks.context(
                lb, placement, node, f"source {expected} at every backend",
                f"sources {seen}", ovn_lab))
