"""Load_Balancer_Group: a load balancer put in a group, and the group (not
the load balancer) attached to a switch or router.  It must behave exactly
as the load balancer attached directly, and stop when the group leaves the
datapath or the load balancer leaves the group (since OVN 21.12, and
21.09.1)."""

import pytest


def served(ovn_case, lb, node, how, count=40):
    """`count` new connections from `node`, each served, every server used;
    the source addresses each server saw."""
    return ovn_case.expect_served(ovn_case.fresh(node, lb, count, timeout=2.0), lb, node,
                                  what=how)


def group_row(lab, lb):
    return next(r for r in lab.nb.rows("Load_Balancer_Group") if r.name == lb.group)


def datapath_table(lab, datapath: str) -> str:
    routers = {r.name for r in lab.topology.routers}
    return "Logical_Router" if datapath in routers else "Logical_Switch"


@pytest.mark.ovnlb(needs=("lb_group",))
def test_lb_group_serves_like_direct_attachment(ovn_case):
    """The same servers behind two VIPs, one load balancer attached to the
    datapath directly, the other through a Load_Balancer_Group: each serves
    every connection of the same client, each uses every server, and the
    servers see the same source addresses through both."""
    node = ovn_case.client("internal")
    servers = ovn_case.servers(2)
    direct_seen = served(ovn_case, ovn_case.lb(servers), node, "attached directly")
    grouped = ovn_case.lb(servers, group=True)
    how = f"through Load_Balancer_Group {grouped.group}"
    ovn_case.expect_sources(grouped, node, served(ovn_case, grouped, node, how), direct_seen,
                            f"{how}, servers saw other sources than attached directly")


@pytest.mark.ovnlb(needs=("lb_group",))
def test_lb_group_detached_stops_serving(ovn_case):
    """A grouped load balancer serves (control); the group removed from the
    datapath, the VIP no longer answers; the group back, it serves again
    (control); the load balancer removed from the group (the group still
    attached), it no longer answers."""
    lab, node = ovn_case.lab, ovn_case.client("internal")
    lb = ovn_case.lb(ovn_case.servers(2), group=True)
    api = lab.nb.api
    datapath = lab.names.nb(lb.attached[0])
    table = datapath_table(lab, lb.attached[0])
    group = group_row(lab, lb)
    member = api.lb_get(lb.name).execute(check_error=True)

    def unserved(how: str) -> None:
        ovn_case.lbs.sync()
        ovn_case.expect_lost(ovn_case.fresh(node, lb, 16, timeout=0.5), lb, node,
                             f"{how}, the VIP still answered")

    served(ovn_case, lb, node, "control, the group attached", count=16)
    api.db_remove(table, datapath, "load_balancer_group", group.uuid).execute(check_error=True)
    unserved(f"Load_Balancer_Group {lb.group} removed from {lb.attached[0]}")

    api.db_add(table, datapath, "load_balancer_group", group.uuid).execute(check_error=True)
    ovn_case.lbs.sync()
    served(ovn_case, lb, node, "control, the group attached again", count=16)
    api.db_remove("Load_Balancer_Group", group.uuid, "load_balancer",
                  member.uuid).execute(check_error=True)
    unserved(f"{lb.name} removed from Load_Balancer_Group {lb.group}")
