"""A dual-stack service: one Load_Balancer row holding an IPv4 and an IPv6
VIP over the same servers, as Kubernetes and OpenStack make them.  Each
VIP serves on its own, from the same client, with the source address its
family and placement call for."""

import pytest


@pytest.mark.ovnlb(needs=("ipv6_vips",))
def test_both_vips_of_one_load_balancer_behave_alike(ovn_case):
    """The test's family makes the row, the other family's VIP is added to
    it; both then spread one client's connections over every server and
    show the servers the same kind of source (the gateway router's SNAT
    address of that family, or the client's own address on a switch)."""
    node = ovn_case.client("internal")
    first = ovn_case.lb(ovn_case.servers(2))
    second = ovn_case.lbs.add_vip(first, 10 - ovn_case.family)  # 4 -> 6, 6 -> 4
    for lb in (first, second):
        family = 6 if ":" in lb.vip else 4
        what = f"the IPv{family} VIP of a dual-stack load balancer"
        seen = ovn_case.expect_served(ovn_case.fresh(node, lb, 40), lb, node, what=what)
        ovn_case.expect_sources(lb, node, seen, {t: {ovn_case.source(node, family)}
                                                 for t in lb.targets}, what)
