"""Load balancer options whose effect is exact, each checked only on the OVN
releases that have it (see pytest_ovnlb/model/versions.py)."""

import pytest

from pytest_ovnlb.verdicts import checks
from pytest_ovnlb.model.versions import quirk


@pytest.mark.ovnlb(needs=("selection_fields",))
def test_selection_fields_ip_src_pins_a_client(ovn_lab, ovn_lbs, ovn_hub, client_node,
                                               placement):
    """Hashing on the source address only: every new connection of one
    client reaches the same server."""
    lb = ovn_lbs(ovn_lbs.servers(3), selection_fields=["ip_src"])
    node = client_node("internal")
    results = ovn_hub.connect(node, lb.vip, lb.port, 200)
    assert all(r.ok for r in results), "connections failed: " + checks.context(
        lb, placement, node, "every connection served", results, ovn_lab)
    assert len({r.target for r in results}) == 1, (
        "selection_fields=ip_src spread one client over servers: " + checks.context(
            lb, placement, node, "one server for every connection", results, ovn_lab))


def emptied(ovn_lab, ovn_lbs, ovn_hub, node, placement, options):
    """A load balancer with `options` shown serving `node` through its one
    server (the control), then emptied of servers: it and the results of
    16 new connections to it."""
    server = ovn_lbs.servers(1)
    lb = ovn_lbs(server, options=options)
    served = ovn_hub.connect(node, lb.vip, lb.port, 16, timeout=2.0)
    assert checks.tally(served) == {server[0].target: 16}, (
        "control failed, the VIP with one server: " + checks.context(
            lb, placement, node, f"every connection served by {server[0].target}",
            served, ovn_lab))
    ovn_lbs.set_servers(lb, [])
    return lb, ovn_hub.connect(node, lb.vip, lb.port, 16, timeout=1.0)


@pytest.mark.ovnlb(needs=("reject_no_backends",))
def test_reject_answers_a_vip_without_servers(ovn_lab, ovn_lbs, ovn_hub, client_node,
                                               placement):
    """options:reject=true: connections to a VIP with no servers are
    refused at once (TCP RST) instead of hanging.  Control first: the same
    VIP, with a server, serves the same client."""
    node = client_node("internal")
    lb, results = emptied(ovn_lab, ovn_lbs, ovn_hub, node, placement, {"reject": "true"})
    assert checks.tally(results) == {"error:refused": 16}, (
        f"{lb.vip_key} has no servers and reject=true: " + checks.context(
            lb, placement, node, "every connection refused", results, ovn_lab))


@pytest.mark.ovnlb(needs=("empty_lb_drops",))
def test_vip_without_servers_drops_its_connections(ovn_lab, ovn_lbs, ovn_hub, client_node,
                                                    placement):
    """A VIP whose servers are all removed, without options:reject, drops
    what it is sent: connections time out, none is refused or answered.
    Control first: the same VIP, with a server, serves the same client."""
    node = client_node("internal")
    lb, results = emptied(ovn_lab, ovn_lbs, ovn_hub, node, placement, {})
    assert checks.tally(results) == {"error:timeout": 16}, (
        f"{lb.vip_key} has no servers and no reject option, so it should drop: "
        + checks.context(lb, placement, node, "every connection timing out", results,
                         ovn_lab))


@pytest.mark.ovnlb(needs=("affinity_timeout",))
def test_affinity_timeout_keeps_a_client_on_its_server(ovn_lab, ovn_lbs, ovn_hub, client_node,
                                                        placement):
    """options:affinity_timeout: once a client has been balanced, all its new
    connections go to the same server, the first one included.

    Where the quirk `affinity_first_connection_lost` applies (the userspace
    datapath with a switch load balancer; see model/versions.py) the
    first connection may be lost, so only what follows it is asserted there,
    and that it went to the same server when it did complete."""
    lb = ovn_lbs(ovn_lbs.servers(3), options={"affinity_timeout": "60"})
    node = client_node("internal")
    first = ovn_hub.connect(node, lb.vip, lb.port, 1)[0]
    results = ovn_hub.connect(node, lb.vip, lb.port, 200)
    targets = checks.tally(results)
    assert len(targets) == 1 and all(r.ok for r in results), (
        f"with affinity_timeout=60, every new connection from {node} to {lb.vip_key} "
        f"({placement}) should reach one server: " + checks.context(
            lb, placement, node, "one server for every connection", results, ovn_lab))
    tolerated = quirk("affinity_first_connection_lost", ovn_lab.versions.datapath, placement)
    assert first.ok or tolerated, (
        f"the connection opening the affinity session from {node} to {lb.vip_key} "
        f"({placement}, {ovn_lab.summary}) failed: {first.error}")
    if first.ok:
        assert first.target in targets, (
            f"the first connection went to {first.target}, the next ones to {set(targets)}")
