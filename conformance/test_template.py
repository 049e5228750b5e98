"""Template load balancers (options:template=true, since OVN 22.12.0): one
Northbound row whose VIP and servers are template variables, "^VIP:PORT"
over "^BACKENDS", which each chassis's ovn-controller resolves from its own
Chassis_Template_Var row.  So one load balancer sends each chassis's
clients to that chassis's servers: through a switch the client's chassis
resolves them (the switch's load balancing runs where the client's port
is), through a gateway router the router's chassis does, whoever the
client.

Here every chassis names another server; clients are VMs on two different
chassis.  Switch placement: the load balancer on each client's switch,
every client reaches the server its own chassis names.  Router placement:
every client reaches the server the gateway router's chassis names.

Chassis_Template_Var rows are made once and never deleted, only the lab's
variables in them (pytest_ovnlb/engine/logical.py, TEMPLATE_VARS:
ovn-controller dies when a deleted chassis row is made again; on a shared
cluster the row outlives the run, docs/fake-multinode.md)."""

import pytest

SAMPLES = 16


@pytest.mark.ovnlb(needs=("lb_template",))
def test_template_lb_resolves_per_chassis(ovn_case):
    topo, roles = ovn_case.lab.topology, ovn_case.roles
    if len(topo.chassis) < 2:
        pytest.skip(f"topology {topo.name} has one chassis: nothing resolves differently")
    servers = ovn_case.servers(len(topo.chassis))
    # every chassis names a server of its own, one that no VM of it hosts
    # (a client picked as its own server would be hairpinned)
    named, free = {}, list(servers)
    for chassis in topo.chassis:
        hosted = {vm.name for vm in topo.vms if vm.chassis == chassis.name}
        named[chassis.name] = next(s for s in free if s.vm not in hosted)
        free.remove(named[chassis.name])
    # clients: the internal client, and a VM on another chassis
    first = topo.vm(roles.internal_client)
    clients = [first, next(vm for vm in topo.vms if vm.chassis != first.chassis)]
    on_client = ovn_case.where.balanced_on == "client"
    datapath = roles.datapath(ovn_case.placement)
    attach = list(dict.fromkeys(vm.switch for vm in clients)) if on_client else [datapath]
    lb, vip_var, servers_var = ovn_case.lbs.template(servers, attach_to=attach)
    values = {chassis: {vip_var: lb.vip, servers_var: server.endpoint}
              for chassis, server in named.items()}
    resolver = {vm.name: vm.chassis if on_client else topo.router(datapath).chassis
                for vm in clients}
    with ovn_case.lbs.template_vars(values):
        for vm in clients:
            wanted = named[resolver[vm.name]]
            # one connection first, not judged, as in test_placement: on a
            # fake-multinode cluster that has carried no traffic yet, the
            # first connections through the gateway router are lost
            # (8 to 16 of 16) while the path is set up
            ovn_case.fresh(vm.name, lb, 1)
            ovn_case.expect_served(ovn_case.fresh(vm.name, lb, SAMPLES, timeout=1.0), lb,
                                   f"{vm.name} (on {vm.chassis})", by=wanted.target,
                                   what=f"^{servers_var} as {resolver[vm.name]} resolves it")
