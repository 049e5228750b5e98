"""Stateless ACLs beside a switch load balancer.  Since 25.09 a switch's
allow-stateless ACLs keep its traffic out of conntrack, and with it out of
the load balancer, unless the switch has
other_config:enable-stateless-acl-with-lb=true, which sends the VIP's
traffic through conntrack all the same."""

import pytest

STATELESS = [("from-lport", 2000, "ip", "allow-stateless"),
             ("to-lport", 2000, "ip", "allow-stateless")]


@pytest.mark.switch
@pytest.mark.ovnlb(needs=("stateless_acl_with_lb",))
def test_stateless_acls_need_the_switch_option_to_keep_balancing(ovn_case):
    """The load balancer on the client's switch serves (the control); with
    allow-stateless ACLs on that switch no connection is served; with the
    switch's enable-stateless-acl-with-lb as well, every server serves again."""
    node, switch = ovn_case.client("internal"), ovn_case.roles.client_switch
    lb = ovn_case.lb(ovn_case.servers(2))
    ovn_case.expect_served(ovn_case.fresh(node, lb, 16), lb, node, what="control, before any ACL")
    with ovn_case.lbs.acls(switch, STATELESS):
        ovn_case.expect_lost(ovn_case.fresh(node, lb, 8, timeout=1.0), lb, node,
                             f"with allow-stateless ACLs on {switch}, the VIP still answered")
        with ovn_case.lbs.switch_config(switch, {"enable-stateless-acl-with-lb": "true"}):
            ovn_case.expect_served(ovn_case.fresh(node, lb, 60), lb, node, what="with "
                                   "enable-stateless-acl-with-lb=true beside stateless ACLs")
