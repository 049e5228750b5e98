"""Stateless ACLs beside a switch load balancer.  Since 25.09 a switch's
allow-stateless ACLs keep its traffic out of conntrack, and with it out of
the load balancer, unless the switch has
other_config:enable-stateless-acl-with-lb=true, which sends the VIP's
traffic through conntrack all the same."""

import pytest

from pytest_ovnlb.verdicts import checks

STATELESS = [("from-lport", 2000, "ip", "allow-stateless"),
             ("to-lport", 2000, "ip", "allow-stateless")]


@pytest.mark.switch
@pytest.mark.ovnlb(needs=("stateless_acl_with_lb",))
def test_stateless_acls_need_the_switch_option_to_keep_balancing(
        ovn_lab, ovn_lbs, ovn_hub, roles, client_node, placement):
    """The load balancer on the client's switch serves (the control); with
    allow-stateless ACLs on that switch no connection is served; with the
    switch's enable-stateless-acl-with-lb as well, every server serves again."""
    node = client_node("internal")
    lb = ovn_lbs(ovn_lbs.servers(2))
    checks.served(ovn_hub.connect(node, lb.vip, lb.port, 16), lb, placement, node, ovn_lab,
                  how="control, before any ACL")
    with ovn_lbs.acls(roles.client_switch, STATELESS):
        stateless = ovn_hub.connect(node, lb.vip, lb.port, 8, timeout=1.0)
        assert not any(r.ok for r in stateless), (
            f"with allow-stateless ACLs on {roles.client_switch}, the VIP still answered: "
            + checks.context(lb, placement, node, "no connection served", stateless, ovn_lab))
        with ovn_lbs.switch_config(roles.client_switch,
                                   {"enable-stateless-acl-with-lb": "true"}):
            results = ovn_hub.connect(node, lb.vip, lb.port, 60)
            checks.served(results, lb, placement, node, ovn_lab,
                          how="with enable-stateless-acl-with-lb=true beside stateless ACLs")
