"""The logical side of a topology, written to the Northbound DB.

Backend-independent: every deployment gets the same switches, routers and
ports from here, named through its `Names` (a run prefix on shared
deployments) and bound to its own chassis.  Every root row made here (and
by the load balancer factory) carries the lab's owner tag in `external_ids`,
and removal selects rows by that tag only.
"""

from __future__ import annotations

import ipaddress

from pytest_ovnlb.engine.ovsdb import Northbound
from pytest_ovnlb.engine.topology import Names, Topology

OWNER = "ovnlb-owner"
# Root tables: rows in them live until deleted (the rest go with their parent).
OWNED_TABLES = ("Load_Balancer", "Logical_Switch", "Logical_Router")


def router_port(router: str, switch: str) -> str:
    return f"{router}-{switch}"


def switch_port(switch: str, router: str) -> str:
    return f"{switch}-{router}"


def localnet_port(switch: str) -> str:
    return f"{switch}-localnet"


def owned(names: Names, **more: str) -> dict:
    return {OWNER: names.owner, **more}


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
    return [row for table in tables for row in nb.rows(table)
            if row.external_ids.get(OWNER) == names.owner]


def remove(nb: Northbound, names: Names, tables=OWNED_TABLES) -> int:
    """Delete the lab's own root rows (their ports, routes and NAT go with
    them); return how many.  Rows of anyone else are never touched."""
    rows = owned_rows(nb, names, tables)
    delete = {"Load_Balancer": nb.api.lb_del, "Logical_Switch": nb.api.ls_del,
              "Logical_Router": nb.api.lr_del}
    if rows:
        with nb.transaction() as txn:
            # lb_del first drops the references switches and routers hold
            for row in rows:
                txn.add(delete[row._table.name](row.uuid, if_exists=True))
    return len(rows)


def ports_down(nb: Northbound, names: list[str]) -> list[str]:
    """Logical ports (Northbound names) that ovn-controller has not yet bound and set up."""
    up = {p.name for p in nb.rows("Logical_Switch_Port") if p.up == [True]}
    return [n for n in names if n not in up]
