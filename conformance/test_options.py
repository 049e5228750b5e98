"""Load balancer options whose effect is exact, each checked only on the OVN
releases that have it (see pytest_ovnlb/model/versions.py)."""

import pytest

from pytest_ovnlb.model.versions import quirk


@pytest.mark.ovnlb(needs=("selection_fields",))
def test_selection_fields_ip_src_pins_a_client(ovn_case):
    """Hashing on the source address only: every new connection of one
    client reaches the same server."""
    lb = ovn_case.lb(ovn_case.servers(3), selection_fields=["ip_src"])
    node = ovn_case.client("internal")
    ovn_case.expect_pinned(ovn_case.fresh(node, lb, 200), lb, node, "connections failed, or "
                           "selection_fields=ip_src spread one client over servers")


def emptied(ovn_case, node, options):
    """A load balancer with `options` shown serving `node` through its one
    server (the control), then emptied of servers: it and the results of
    16 new connections to it."""
    server = ovn_case.servers(1)
    lb = ovn_case.lb(server, options=options)
    ovn_case.expect_served(ovn_case.fresh(node, lb, 16, timeout=2.0), lb, node,
                           by=server[0].target, what="control failed, the VIP with one server")
    ovn_case.lbs.set_servers(lb, [])
    return lb, ovn_case.fresh(node, lb, 16, timeout=1.0)


@pytest.mark.ovnlb(needs=("reject_no_backends",))
def test_reject_answers_a_vip_without_servers(ovn_case):
    """options:reject=true: connections to a VIP with no servers are
    refused at once (TCP RST) instead of hanging.  Control first: the same
    VIP, with a server, serves the same client."""
    node = ovn_case.client("internal")
    lb, results = emptied(ovn_case, node, {"reject": "true"})
    ovn_case.expect_lost(results, lb, node, f"{lb.vip_key} has no servers and reject=true",
                         error="refused")


@pytest.mark.ovnlb(needs=("empty_lb_drops",))
def test_vip_without_servers_drops_its_connections(ovn_case):
    """A VIP whose servers are all removed, without options:reject, drops
    what it is sent: connections time out, none is refused or answered.
    Control first: the same VIP, with a server, serves the same client."""
    node = ovn_case.client("internal")
    lb, results = emptied(ovn_case, node, {})
    ovn_case.expect_lost(results, lb, node, f"{lb.vip_key} has no servers and no reject "
                         "option, so it should drop", error="timeout")


@pytest.mark.ovnlb(needs=("affinity_timeout",))
def test_affinity_timeout_keeps_a_client_on_its_server(ovn_case):
    """options:affinity_timeout: once a client has been balanced, all its new
    connections go to the same server, the first one included.

    Where the quirk `affinity_first_connection_lost` applies (the userspace
    datapath with a switch load balancer; see model/versions.py) the
    first connection may be lost, so only what follows it is asserted there,
    and that it went to the same server when it did complete."""
    lb = ovn_case.lb(ovn_case.servers(3), options={"affinity_timeout": "60"})
    node = ovn_case.client("internal")
    first = ovn_case.fresh(node, lb, 1)
    results = ovn_case.fresh(node, lb, 200)
    ovn_case.expect_pinned(results, lb, node, f"with affinity_timeout=60, every new connection "
                           "(the opening one too, when answered) should reach one server",
                           first[0] if first[0].ok else None)
    if not quirk("affinity_first_connection_lost", ovn_case.lab.versions.datapath,
                 ovn_case.placement):
        ovn_case.expect_pinned(first, lb, node, "the connection opening the affinity session")
