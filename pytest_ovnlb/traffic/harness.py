"""What a conformance test drives: web servers on VMs, clients in any
node, and load balancers placed on a router or a switch.

One `Hub` per lab keeps a traffic agent per node for the whole session;
`LoadBalancers` is per test and removes what it made.
"""

from __future__ import annotations

import ipaddress
import itertools
from contextlib import contextmanager
from dataclasses import dataclass

from pytest_ovnlb.engine.logical import (TEMPLATE_VARS, drop_references, owned, owned_name,
                                         router_port, template_var)
from pytest_ovnlb.errors import LabError
from pytest_ovnlb.lab import Lab
from pytest_ovnlb.traffic.client import Agent, Result

# Where a load balancer goes: the gateway router, the client's switch, or a
# distributed router with a distributed gateway port (runs only where marked).


def endpoint(ip: str, port: int | None = None) -> str:
    """How OVN writes an address with a port: IPv6 in brackets."""
    text = f"[{ip}]" if ipaddress.ip_address(ip).version == 6 else ip
    return text if port is None else f"{text}:{port}"


@dataclass(frozen=True)
class Server:
    """A web server: VM, address, port.  `target` matches Result.target."""

    vm: str
    ip: str
    port: int

    @property
    def target(self) -> str:
        return f"{self.vm}:{self.port}"

    @property
    def endpoint(self) -> str:
        return endpoint(self.ip, self.port)


def check_family(vip: str, servers: list[Server]) -> None:
    """A load balancer's servers are of its VIP's family: OVN takes a mixed
    one, and every connection to it then fails."""
    family = ipaddress.ip_address(vip).version
    other = [s.endpoint for s in servers if ipaddress.ip_address(s.ip).version != family]
    if other:
        raise LabError(f"a load balancer with the IPv{family} VIP {vip} cannot have the "
                       f"IPv{ {4: 6, 6: 4}[family]} servers {', '.join(other)}: take them from "
                       "ovn_lbs.servers(k), in the test's family")


class Hub:
    def __init__(self, lab: Lab):
        self.lab = lab
        self.agents: dict[str, Agent] = {}
        # (vm, port, proto): one server answers both families
        self.serving: set[tuple[str, int, str]] = set()

    def agent(self, node: str) -> Agent:
        if node not in self.agents:
            log = self.lab.record.rundir / f"agent-{node}.log"
            self.agents[node] = Agent.start(node, self.lab.enter_prefix(node), log_path=str(log))
        return self.agents[node]

    def servers(self, k: int, family: int = 4) -> list[Server]:
        """k web servers spread over the server VMs (vm1:8000, vm2:8000,
        vm1:8001, ...) at their addresses of `family`: OVN balances over
        ip:port pairs, so k may exceed the number of VMs.  A server listens
        on both families, so one server is the same for both."""
        topo = self.lab.topology
        vms = topo.roles.servers
        base = topo.roles.server_port
        return [Server(vms[i % len(vms)], topo.address(vms[i % len(vms)], family),
                        base + i // len(vms)) for i in range(k)]

    def serve(self, servers: list[Server], proto: str = "tcp") -> None:
        """Make sure each server runs (an HTTP server for tcp)."""
        for b in servers:
            if (b.vm, b.port, proto) not in self.serving:
                self.agent(b.vm).serve(b.port, proto=proto, name=b.vm)
                self.serving.add((b.vm, b.port, proto))

    def stop(self, server: Server, proto: str = "tcp") -> None:
        """Stop a server as if its process died: new connections are refused."""
        self.agent(server.vm).unserve(server.port, proto=proto)
        self.serving.discard((server.vm, server.port, proto))

    def reset(self) -> int:
        """Reset what the servers still hold open from earlier tests (a kept
        alive session, a client gone without closing), so that no test meets
        another's connections; how many there were.  A server socket left
        open answers a new connection from the same client address and port
        (a later test's through another VIP) with a challenge ACK, which the
        client's conntrack may judge invalid and drop, stalling that
        connection for seconds."""
        return sum(self.agent(vm).drop_connections()
                   for vm in sorted({vm for vm, _, proto in self.serving if proto == "tcp"}))

    def connect(self, node: str, host: str, port: int, count: int, **kw) -> list[Result]:
        return self.agent(node).fresh(host, port, count, **kw)

    def close(self) -> None:
        for agent in self.agents.values():
            agent.close()
        self.agents.clear()
        self.serving.clear()


@dataclass
class LoadBalancer:
    name: str
    vip: str
    port: int | None  # None: a VIP without a port
    servers: list[Server]
    attached: list[str]
    protocol: str = "tcp"
    group: str | None = None  # the Load_Balancer_Group attached in its place

    @property
    def vip_key(self) -> str:
        # without a port an IPv6 VIP is bare, as ovn-nbctl and ovsdbapp write it
        return self.vip if self.port is None else endpoint(self.vip, self.port)

    @property
    def targets(self) -> list[str]:
        return [b.target for b in self.servers]


class LoadBalancers:
    """Factory: `lbs(servers, ...)` creates a load balancer where the
    placement says, waits until every chassis has it, and removes it later."""

    _names = itertools.count(1)
    # Each load balancer gets a VIP port of its own: a client's TIME_WAIT
    # 4-tuples from an earlier test then never overlap (and so never bias)
    # the 5-tuples of a later one.
    _vip_ports = itertools.count(10000)

    def __init__(self, lab: Lab, hub: Hub, placement: str, family: int = 4):
        self.lab = lab
        self.hub = hub
        self.placement = placement
        self.family = family
        self.created: list[LoadBalancer] = []
        roles = lab.topology.roles
        datapath = roles.datapath(placement)
        if not datapath:
            raise LabError(f"topology {lab.topology.name} has nowhere to place a "
                           f"{placement} load balancer")
        self.default_attach = [datapath]
        self.default_vip = roles.vip(placement, family)
        if self.default_vip is None:
            raise LabError(f"topology {lab.topology.name} has no IPv{family} {placement} VIP")

    def servers(self, k: int) -> list[Server]:
        """k web servers, addressed in this test's family (Hub.servers)."""
        return self.hub.servers(k, self.family)

    def address(self, node: str) -> str:
        """A client node's address in this test's family (towards the VIP)."""
        return self.lab.topology.address(node, self.family, toward=self.default_vip)

    @property
    def snat_ip(self) -> str | None:
        """The gateway router's SNAT address in this test's family."""
        return self.lab.topology.roles.snat_ip(self.family)

    def __call__(self, servers: list[Server], *, vip: str | None = None,
                 attach_to: list[str] | None = None, protocol: str = "tcp",
                 options: dict | None = None, selection_fields: list[str] | None = None,
                 health_check: dict | None = None, serve: bool = True,
                 group: bool = False, ports: bool = True) -> LoadBalancer:
        """`group`: the load balancer goes into a Load_Balancer_Group of its
        own, and that group (not the load balancer) is attached to the
        datapaths.  `ports=False`: a VIP without a port, balanced over the
        servers' addresses without ports (each address once), so every
        destination port is balanced and kept.

        `health_check`: options of a Load_Balancer_Health_Check row for the
        VIP (interval, timeout, success_count, failure_count), whose `vip` is
        the VIP key as in `vips` ("IP:PORT"; northd ignores any other form);
        with it, each server is mapped in `ip_port_mappings` to its logical
        port and a probe source address on its switch (`Topology.free_address`)."""
        names = self.lab.names
        check_family(vip or self.default_vip, servers)
        lb = LoadBalancer(name=names.nb(f"lb{next(self._names)}"), vip=vip or self.default_vip,
                          port=next(self._vip_ports) if ports else None, servers=list(servers),
                          attached=list(attach_to or self.default_attach), protocol=protocol,
                          group=owned_name(names, f"lbg{next(self._names)}") if group else None)
        if serve:
            self.hub.serve(lb.servers, protocol)
        nb, api = self.lab.nb, self.lab.nb.api
        with nb.transaction() as txn:
            columns = {"options": options or {}, "external_ids": owned(names)}
            if selection_fields:
                columns["selection_fields"] = selection_fields
            if health_check is not None:
                columns["ip_port_mappings"] = self.ip_port_mappings(lb.servers)
            servers = ([b.endpoint for b in lb.servers] if ports
                        else list(dict.fromkeys(b.ip for b in lb.servers)))
            txn.add(api.lb_add(lb.name, lb.vip_key, servers, protocol=protocol, **columns))
        self.created.append(lb)
        if group:
            row = api.lb_get(lb.name).execute(check_error=True)
            uuid = api.db_create("Load_Balancer_Group", name=lb.group,
                                 load_balancer=[row.uuid]).execute(check_error=True)
        with nb.transaction() as txn:
            if health_check is not None:
                txn.add(api.lb_add_health_check(
                    lb.name, lb.vip_key, **{k: str(v) for k, v in health_check.items()}))
            self._attach(txn, lb, uuid if group else None)
        self.sync()
        return lb

    def _attach(self, txn, lb: LoadBalancer, group_uuid=None) -> None:
        """Add to `txn` the attachment of `lb` (or of its group) to its datapaths."""
        api, names = self.lab.nb.api, self.lab.names
        routers = {r.name for r in self.lab.topology.routers}
        for datapath in lb.attached:
            router = datapath in routers
            if group_uuid is not None:
                table = "Logical_Router" if router else "Logical_Switch"
                txn.add(api.db_add(table, names.nb(datapath), "load_balancer_group", group_uuid))
            else:
                txn.add((api.lr_lb_add if router else api.ls_lb_add)(names.nb(datapath), lb.name))

    def ip_port_mappings(self, servers: list[Server]) -> dict[str, str]:
        """Load_Balancer:ip_port_mappings: server IP -> "PORT:PROBE_SOURCE",
        the probe source in the server's family."""
        topo = self.lab.topology
        return {endpoint(b.ip): f"{self.lab.names.nb(b.vm)}:" + endpoint(topo.free_address(
            topo.vm(b.vm).switch, ipaddress.ip_address(b.ip).version)) for b in servers}

    def add_vip(self, lb: LoadBalancer, family: int, vip: str | None = None) -> LoadBalancer:
        """Give `lb`'s row a second VIP, this placement's VIP of `family` on
        the same port, balanced over the same servers at their `family`
        addresses (a dual-stack service); returns that VIP's view.  `vip`:
        another address of `family` instead of this placement's VIP."""
        vip = vip or self.lab.topology.roles.vip(self.placement, family)
        servers = [Server(s.vm, self.lab.topology.address(s.vm, family), s.port)
                   for s in lb.servers]
        twin = LoadBalancer(lb.name, vip, lb.port, servers, lb.attached, lb.protocol)
        self.lab.nb.api.lb_add(lb.name, twin.vip_key, [s.endpoint for s in servers],
                               protocol=lb.protocol, may_exist=True).execute(check_error=True)
        self.sync()
        return twin

    def set_servers(self, lb: LoadBalancer, servers: list[Server]) -> None:
        """Change the VIP's server list in place (same Load_Balancer row)."""
        check_family(lb.vip, servers)
        self.hub.serve(servers, lb.protocol)
        value = ",".join(b.endpoint for b in servers)
        row = self.lab.nb.api.lb_get(lb.name).execute(check_error=True)
        self.lab.nb.api.db_set("Load_Balancer", row.uuid,
                               ("vips", {lb.vip_key: value})).execute(check_error=True)
        lb.servers = list(servers)
        self.sync()

    def template(self, servers: list[Server], *, attach_to: list[str] | None = None,
                 protocol: str = "tcp") -> tuple[LoadBalancer, str, str]:
        """A template load balancer (options:template=true, this test's
        address-family) attached where the placement says: VIP "^VIP:PORT"
        over servers "^SERVERS", which each chassis resolves from its
        Chassis_Template_Var row (see template_vars).  Returns its view (this
        placement's VIP, `servers`: those some chassis's BACKENDS name) and
        the names of the two variables (this lab's own)."""
        names = self.lab.names
        lb = LoadBalancer(name=names.nb(f"lb{next(self._names)}"), vip=self.default_vip,
                          port=next(self._vip_ports), servers=list(servers),
                          attached=list(attach_to or self.default_attach), protocol=protocol)
        vip_var, servers_var = (template_var(names, f"ovnlb_{v}") for v in ("vip", "servers"))
        self.hub.serve(lb.servers, protocol)
        nb, api = self.lab.nb, self.lab.nb.api
        api.db_create("Load_Balancer", name=lb.name, protocol=protocol,
                      vips={f"^{vip_var}:{lb.port}": f"^{servers_var}"},
                      options={"template": "true", "address-family": f"ipv{self.family}"},
                      external_ids=owned(names)).execute(check_error=True)
        self.created.append(lb)
        with nb.transaction() as txn:
            self._attach(txn, lb)
        self.sync()
        return lb, vip_var, servers_var

    @contextmanager
    def template_vars(self, values: dict[str, dict[str, str]]):
        """Template variables per chassis (topology names) for the length of
        the block, then waits for every chassis.  A chassis's
        Chassis_Template_Var row is made (empty) when missing and never
        deleted (logical.TEMPLATE_VARS); only the lab's variables in it come
        and go, always as a change to a row every chassis already has."""
        nb, api, names = self.lab.nb, self.lab.nb.api, self.lab.names
        table = TEMPLATE_VARS

        def rows():
            return {r.chassis: r for r in nb.rows(table)}

        def missing():
            have = rows()
            return [names.chassis(c) for c in values if names.chassis(c) not in have]

        seen = set(rows())
        while missing():
            try:
                with nb.transaction() as txn:
                    for chassis in missing():
                        txn.add(api.db_create(table, chassis=chassis))
            except RuntimeError as exc:
                # another lab on the deployment made one of them meanwhile
                if "constraint violation" not in str(exc):
                    raise
                nb.wait(lambda: set(rows()) - seen, 10.0, "the other lab's row")
            seen = set(rows())
        self.sync()
        have = rows()
        with nb.transaction() as txn:
            for chassis, variables in values.items():  # db_set adds to a map
                txn.add(api.db_set(table, have[names.chassis(chassis)].uuid,
                                   ("variables", variables)))
        self.sync()
        try:
            yield
        finally:
            have = rows()
            with nb.transaction() as txn:
                for chassis, variables in values.items():
                    row = have.get(names.chassis(chassis))
                    if row is not None:
                        txn.add(api.db_remove(table, row.uuid, "variables", *variables))
            self.sync()

    def set_options(self, lb: LoadBalancer, options: dict) -> None:
        """Make `options` the load balancer's whole options column (same
        Load_Balancer row), then wait for every chassis."""
        api = self.lab.nb.api
        row = api.lb_get(lb.name).execute(check_error=True)
        with self.lab.nb.transaction() as txn:
            txn.add(api.db_clear("Load_Balancer", row.uuid, "options"))
            if options:
                txn.add(api.db_set("Load_Balancer", row.uuid, ("options", dict(options))))
        self.sync()

    def switch_config(self, switch: str, config: dict):
        """A topology switch with `config` in its other_config for the
        block, the keys removed again afterwards."""
        return self._settings("Logical_Switch", self.lab.names.nb(switch), "other_config",
                              config)

    def router_port_options(self, router: str, switch: str, options: dict):
        """The topology router's port on `switch` with `options` for the
        block, the keys removed again afterwards."""
        name = self.lab.names.nb(router_port(router, switch))
        return self._settings("Logical_Router_Port", name, "options", options)

    @contextmanager
    def _settings(self, table: str, name: str, column: str, values: dict):
        api = self.lab.nb.api
        api.db_set(table, name, (column, values)).execute(check_error=True)
        self.sync()
        try:
            yield
        finally:
            api.db_remove(table, name, column, *values).execute(check_error=True)
            self.sync()

    @contextmanager
    def acls(self, switch: str, rules: list[tuple[str, int, str, str]]):
        """A topology switch with ACLs (direction, priority, match, action)
        for the block, removed again afterwards."""
        api, name = self.lab.nb.api, self.lab.names.nb(switch)
        with self.lab.nb.transaction() as txn:
            for rule in rules:
                txn.add(api.acl_add(name, *rule))
        self.sync()
        try:
            yield
        finally:
            with self.lab.nb.transaction() as txn:
                for direction, priority, match, _ in rules:
                    txn.add(api.acl_del(name, direction, priority, match, if_exists=True))
            self.sync()

    def remove(self, lb: LoadBalancer) -> None:
        """Delete one load balancer (and its group) now (a test that moves a VIP)."""
        with self.lab.nb.transaction() as txn:
            txn.add(self.lab.nb.api.lb_del(lb.name, if_exists=True))
            self._drop_groups(txn, [lb])
        self.created.remove(lb)
        self.sync()

    def _drop_groups(self, txn, lbs: list[LoadBalancer]) -> None:
        """Add to `txn` the deletion of `lbs`' groups, detached first."""
        nb, names = self.lab.nb, {lb.group for lb in lbs if lb.group}
        for row in (nb.rows("Load_Balancer_Group") if names else []):
            if row.name in names:
                drop_references(nb, txn, row)
                txn.add(nb.api.db_destroy("Load_Balancer_Group", row.uuid))

    def sync(self) -> None:
        self.lab.sync()

    def remove_all(self) -> None:
        if not self.created:
            return
        with self.lab.nb.transaction() as txn:
            for lb in self.created:
                txn.add(self.lab.nb.api.lb_del(lb.name, if_exists=True))
            self._drop_groups(txn, self.created)
        self.created.clear()
        self.sync()
