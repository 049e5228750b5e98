"""The logical side of a topology, written to the Northbound DB.

Backend-independent: any deployment that has chassis named as the topology
says gets the same switches, routers and ports from here.
"""

from __future__ import annotations

import ipaddress

from pytest_ovnlb.engine.ovsdb import Northbound
from pytest_ovnlb.engine.topology import Topology


def router_port(router: str, switch: str) -> str:
    return f"{router}-{switch}"


def switch_port(switch: str, router: str) -> str:
    return f"{switch}-{router}"


def localnet_port(switch: str) -> str:
    return f"{switch}-localnet"


def create(nb: Northbound, topo: Topology) -> None:
    api = nb.api
    # Rows created in a transaction can't be referenced by name in the same
    # one (ovsdbapp looks them up in the IDL), so datapaths go first.
    with nb.transaction() as txn:
        for switch in topo.switches:
            net = ipaddress.ip_network(switch.subnet)
            txn.add(api.ls_add(switch.name, external_ids={"ovnlb:subnet": str(net)}))
        for router in topo.routers:
            options = {"chassis": router.chassis} if router.chassis else {}
            txn.add(api.lr_add(router.name, options=options))
    with nb.transaction() as txn:
        for router in topo.routers:
            for port in router.ports:
                lrp = router_port(router.name, port.switch)
                txn.add(api.lrp_add(router.name, lrp, port.mac, [port.ip]))
                txn.add(api.lsp_add(port.switch, switch_port(port.switch, router.name),
                                    type="router", addresses=["router"],
                                    options={"router-port": lrp}))
            for prefix, nexthop in router.routes:
                txn.add(api.lr_route_add(router.name, prefix, nexthop))
            for network, external in router.snat:
                txn.add(api.lr_nat_add(router.name, "snat", external, network))
        for vm in topo.vms:
            address = f"{vm.mac} {vm.ip.split('/')[0]}"
            # MAC-only port security: IP port security would drop, on the way
            # out to the VM, traffic routed to it for another address.
            txn.add(api.lsp_add(vm.switch, vm.name, addresses=[address],
                                port_security=[vm.mac]))
        if topo.provider:
            txn.add(api.lsp_add(topo.provider.switch, localnet_port(topo.provider.switch),
                                type="localnet", addresses=["unknown"],
                                options={"network_name": topo.provider.network_name}))


def ports_down(nb: Northbound, names: list[str]) -> list[str]:
    """VM ports that ovn-controller has not yet bound and set up."""
    up = {p.name for p in nb.rows("Logical_Switch_Port") if p.up == [True]}
    return [n for n in names if n not in up]
