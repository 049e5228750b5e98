"""Load_Balancer_Group: a load balancer put in a group, and the group (not
the load balancer) attached to a switch or router.  It must behave exactly
as the load balancer attached directly, and stop when the group leaves the
datapath or the load balancer leaves the group (since OVN 21.12, and
21.09.1)."""

import pytest

from pytest_ovnlb.verdicts import checks


def served(ovn_lab, ovn_hub, lb, placement, node, how, count=40):
    """`count` new connections from `node`, each served, every server used;
    the source addresses each server saw."""
    results = ovn_hub.connect(node, lb.vip, lb.port, count, timeout=2.0)
    return checks.served(results, lb, placement, node, ovn_lab, how)


def group_row(ovn_lab, lb):
    return next(r for r in ovn_lab.nb.rows("Load_Balancer_Group") if r.name == lb.group)


def datapath_table(ovn_lab, datapath: str) -> str:
    routers = {r.name for r in ovn_lab.topology.routers}
    return "Logical_Router" if datapath in routers else "Logical_Switch"


@pytest.mark.ovnlb(needs=("lb_group",))
def test_lb_group_serves_like_direct_attachment(ovn_lab, ovn_lbs, ovn_hub, client_node,
                                                placement):
    """The same servers behind two VIPs, one load balancer attached to the
    datapath directly, the other through a Load_Balancer_Group: each serves
    every connection of the same client, each uses every server, and the
    servers see the same source addresses through both."""
    node = client_node("internal")
    servers = ovn_lbs.servers(2)
    direct = ovn_lbs(servers)
    direct_seen = served(ovn_lab, ovn_hub, direct, placement, node, "attached directly")
    grouped = ovn_lbs(servers, group=True)
    grouped_seen = served(ovn_lab, ovn_hub, grouped, placement, node,
                          f"through Load_Balancer_Group {grouped.group}")
    assert grouped_seen == direct_seen, (
        f"through Load_Balancer_Group {grouped.group}, servers saw other sources than "
        f"attached directly: " + checks.context(
            grouped, placement, node, f"sources {direct_seen} (as attached directly)",
            f"sources {grouped_seen}", ovn_lab))


@pytest.mark.ovnlb(needs=("lb_group",))
def test_lb_group_detached_stops_serving(ovn_lab, ovn_lbs, ovn_hub, client_node,
                                         placement):
    """A grouped load balancer serves (control); the group removed from the
    datapath, the VIP no longer answers; the group back, it serves again
    (control); the load balancer removed from the group (the group still
    attached), it no longer answers."""
    node = client_node("internal")
    lb = ovn_lbs(ovn_lbs.servers(2), group=True)
    api = ovn_lab.nb.api
    datapath = ovn_lab.names.nb(lb.attached[0])
    table = datapath_table(ovn_lab, lb.attached[0])
    group = group_row(ovn_lab, lb)
    member = api.lb_get(lb.name).execute(check_error=True)

    def unserved(how: str) -> None:
        results = ovn_hub.connect(node, lb.vip, lb.port, 16, timeout=0.5)
        assert not any(r.ok for r in results), (
            f"{how}, the VIP still answered: " + checks.context(
                lb, placement, node, "no connection served", results, ovn_lab))

    served(ovn_lab, ovn_hub, lb, placement, node, "control, the group attached", count=16)
    api.db_remove(table, datapath, "load_balancer_group", group.uuid).execute(check_error=True)
    ovn_lbs.sync()
    unserved(f"Load_Balancer_Group {lb.group} removed from {lb.attached[0]}")

    api.db_add(table, datapath, "load_balancer_group", group.uuid).execute(check_error=True)
    ovn_lbs.sync()
    served(ovn_lab, ovn_hub, lb, placement, node, "control, the group attached again",
           count=16)
    api.db_remove("Load_Balancer_Group", group.uuid, "load_balancer",
                  member.uuid).execute(check_error=True)
    ovn_lbs.sync()
    unserved(f"{lb.name} removed from Load_Balancer_Group {lb.group}")
