"""The logical side of a topology, written to the Northbound DB.

Backend-independent: every deployment gets the same switches, routers and
ports from here, named through its `Names` (a run prefix on shared
deployments) and bound to its own chassis.  Every root row made here (and
by the load balancer factory) carries the lab's owner tag in `external_ids`,
and removal selects rows by that tag only.  A table without `external_ids`
(Load_Balancer_Group) carries it in its rows' names instead (`owned_name`).
"""

from __future__ import annotations

import ipaddress
import re

from pytest_ovnlb.engine.ovsdb import Northbound
from pytest_ovnlb.engine.topology import Names, Topology

OWNER = "ovnlb-owner"
# Root tables: rows in them live until deleted (the rest go with their parent).
# The first four are the lab's own; the others get rows from a person's
# `ovnlb-lab nbctl` commands (`adopt`).
OWNED_TABLES = ("Load_Balancer", "Load_Balancer_Group", "Logical_Switch", "Logical_Router",
                "Address_Set", "Port_Group", "DHCP_Options", "DNS", "Meter", "Copp", "Mirror",
                "HA_Chassis_Group", "BFD")
# One row per chassis, shared by every lab on a deployment and never deleted:
# an ovn-controller (23.03 to 26.03) that saw its chassis's row deleted
# asserts, and dies, when one is made again (template_vars_update).  A lab
# owns the variables it puts there, named with its prefix (template_var).
TEMPLATE_VARS = "Chassis_Template_Var"
# Root tables without external_ids: the owner tag ends each row's name.
NAMED_TABLES = ("Load_Balancer_Group",)
# Columns of rows that hold rows of a root table (strong references).
HOLDERS = {"Load_Balancer_Group": (("Logical_Switch", "load_balancer_group"),
                                   ("Logical_Router", "load_balancer_group")),
           "HA_Chassis_Group": (("Logical_Switch_Port", "ha_chassis_group"),
                                ("Logical_Router_Port", "ha_chassis_group")),
           "Address_Set": (("NAT", "allowed_ext_ips"), ("NAT", "exempted_ext_ips"))}


def router_port(router: str, switch: str) -> str:
    return f"{router}-{switch}"


def switch_port(switch: str, router: str) -> str:
    return f"{switch}-{router}"


def localnet_port(switch: str) -> str:
    return f"{switch}-localnet"


def owned(names: Names, **more: str) -> dict:
    return {OWNER: names.owner, **more}


def template_var(names: Names, name: str) -> str:
    """A template variable's name: an identifier, the lab's prefix in it."""
    return re.sub(r"\W", "_", names.nb(name))


def owned_name(names: Names, name: str) -> str:
    """The name of a row of a table without external_ids (NAMED_TABLES),
    tagged with the lab's owner."""
    return f"{names.nb(name)}@{names.owner}"


def _mine(row, table: str, names: Names) -> bool:
    if table in NAMED_TABLES:
        return row.name.endswith(f"@{names.owner}")
    return row.external_ids.get(OWNER) == names.owner


def create(nb: Northbound, topo: Topology, names: Names) -> None:
    api, n = nb.api, names.nb
    # Rows created in a transaction can't be referenced by name in the same
    # one (ovsdbapp looks them up in the IDL), so datapaths go first.
    with nb.transaction() as txn:
        for switch in topo.switches:
            net = ipaddress.ip_network(switch.subnet)
            txn.add(api.ls_add(n(switch.name), may_exist=True, external_ids=owned(names, **{
                "ovnlb:subnet": str(net)})))
        for router in topo.routers:
            options = {"chassis": names.chassis(router.chassis)} if router.chassis else {}
            txn.add(api.lr_add(n(router.name), options=options, external_ids=owned(names)))
    with nb.transaction() as txn:
        for router in topo.routers:
            for port in router.ports:
                lrp = n(router_port(router.name, port.switch))
                txn.add(api.lrp_add(n(router.name), lrp, port.mac,
                                    [ip for ip in (port.ip, port.ip6) if ip]))
                if port.gateway_chassis:
                    txn.add(api.lrp_set_gateway_chassis(
                        lrp, names.chassis(port.gateway_chassis), priority=1))
                txn.add(api.lsp_add(n(port.switch), n(switch_port(port.switch, router.name)),
                                    type="router", addresses=["router"],
                                    options={"router-port": lrp}))
            for prefix, nexthop in router.routes:
                txn.add(api.lr_route_add(n(router.name), prefix, nexthop))
            for network, external in router.snat:
                txn.add(api.lr_nat_add(n(router.name), "snat", external, network))
        for vm in topo.vms:
            address = " ".join([vm.mac] + [vm.address(f) for f in topo.families])
            # MAC-only port security: IP port security would drop, on the way
            # out to the VM, traffic routed to it for another address.
            txn.add(api.lsp_add(n(vm.switch), n(vm.name), addresses=[address],
                                port_security=[vm.mac]))
        if topo.provider:
            txn.add(api.lsp_add(n(topo.provider.switch), n(localnet_port(topo.provider.switch)),
                                type="localnet", addresses=["unknown"],
                                options={"network_name": topo.provider.network_name}))


def owned_rows(nb: Northbound, names: Names, tables=OWNED_TABLES) -> list:
    # an older schema lacks a table (Load_Balancer_Group: OVN 21.09.1, 21.12)
    return [row for table in tables if table in nb.api.tables for row in nb.rows(table)
            if _mine(row, table, names)]


def drop_references(nb: Northbound, txn, row) -> None:
    """Add to `txn` the removal of every datapath's strong reference to
    `row` (HOLDERS), so that the row itself can be deleted."""
    for table, column in HOLDERS.get(row._table.name, ()):
        for holder in nb.rows(table):
            if row.uuid in {r.uuid for r in getattr(holder, column, [])}:
                txn.add(nb.api.db_remove(table, holder.uuid, column, row.uuid))


def remove(nb: Northbound, names: Names, tables=OWNED_TABLES) -> int:
    """Delete the lab's own root rows (their ports, routes and NAT go with
    them); return how many.  Rows of anyone else are never touched."""
    rows = owned_rows(nb, names, tables)
    delete = {"Load_Balancer": nb.api.lb_del, "Logical_Switch": nb.api.ls_del,
              "Logical_Router": nb.api.lr_del}
    # the lab's template variables, whichever chassis's row holds them (a
    # lab without a prefix has a deployment of its own, removed whole)
    mine = template_var(names, "")
    holders = nb.rows(TEMPLATE_VARS) if names.prefix and TEMPLATE_VARS in nb.api.tables else []
    variables = [(row, keys) for row in holders
                 if (keys := [k for k in row.variables if k.startswith(mine)])]
    if rows or variables:
        with nb.transaction() as txn:
            for row in rows:
                drop_references(nb, txn, row)
            # lb_del first drops the references switches and routers hold
            for row in rows:
                table = row._table.name
                txn.add(delete[table](row.uuid, if_exists=True) if table in delete
                        else nb.api.db_destroy(table, row.uuid))
            for row, keys in variables:
                txn.add(nb.api.db_remove(TEMPLATE_VARS, row.uuid, "variables", *keys))
    return len(rows)


def _taggable_rows(nb: Northbound) -> list:
    """Every row of the tables with external_ids."""
    return [row for table in nb.api.tables.values() if "external_ids" in table.columns
            for row in nb.rows(table.name)]


def row_uuids(nb: Northbound) -> set:
    return {row.uuid for row in _taggable_rows(nb)}


def adopt(nb: Northbound, names: Names, before: set) -> int:
    """Give the lab's owner tag to the rows with external_ids but no owner
    tag that are not in `before` (`row_uuids` before a person's command), so
    that the lab's removal takes them too; return how many.
    The database does not say who made a row: on a shared deployment,
    someone who creates a row without an owner tag between the two
    snapshots (while the command runs) sees it gain this lab's tag and go
    with this lab's `down`.  Tagged rows (another lab's) are never
    adopted; when two labs adopt the same row at once, the first to commit
    keeps it (adding a key that is there already changes nothing).
    Load_Balancer_Group has no external_ids: its rows made by hand stay."""
    new = [row for row in _taggable_rows(nb)
           if row.uuid not in before and OWNER not in row.external_ids]
    if new:
        with nb.transaction() as txn:
            for row in new:
                txn.add(nb.api.db_add(row._table.name, row.uuid, "external_ids",
                                      owned(names)))
    return len(new)


def ports_down(nb: Northbound, names: list[str]) -> list[str]:
    """Logical ports (Northbound names) that ovn-controller has not yet bound and set up."""
    up = {p.name for p in nb.rows("Logical_Switch_Port") if p.up == [True]}
    return [n for n in names if n not in up]
