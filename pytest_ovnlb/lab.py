"""A running lab: what the CLI and the pytest fixtures hold.

`Lab.up()` claims a name, has the chosen backend make the topology and
returns once traffic can flow; any failure or interrupt on the way removes
everything it made.  `Lab.attach()` reopens a lab by name from its record.
"""

from __future__ import annotations

import ipaddress
import os
import shlex
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from pytest_ovnlb import backends
from pytest_ovnlb.backends import fakemultinode
from pytest_ovnlb.backends.base import Backend, LabSpec, Versions
from pytest_ovnlb.engine import evidence as evidence_mod
from pytest_ovnlb.engine import logical, procs, records, topology
from pytest_ovnlb.engine.ovsdb import Northbound, Southbound
from pytest_ovnlb.engine.records import Record
from pytest_ovnlb.engine.topology import Names
from pytest_ovnlb.errors import LabError


def preflight(backend: str = "netns", spec: LabSpec = LabSpec()) -> str:
    """Everything a lab needs before anything is made; a one-line summary."""
    return backends.get(backend).preflight(spec)


def destroy(record: Record) -> None:
    """Remove every trace of a lab, whichever backend made it."""
    backends.get(record.backend).destroy(record)
    records.remove(record)


def start_cluster(spec: LabSpec) -> Record | None:
    """Start an ovn-fake-multinode cluster from `spec.fmn_dir` unless one
    runs; its record (owned by this process) stops it when destroyed."""
    sweep()
    record = Record(name=f"fmncluster{os.getpid()}", topology="", backend="fake-multinode")
    record.owner_pid = os.getpid()
    record.owner_start = procs.start_time(record.owner_pid)
    records.claim(record)
    try:
        with procs.sigterm_as_interrupt():
            if fakemultinode.start_cluster(record, spec):
                return record
    except BaseException:
        with procs.deferred_interrupts():
            destroy(record)
        raise
    records.remove(record)
    return None


def sweep(everything: bool = False) -> list[str]:
    return records.sweep(destroy, everything)


NEIGHBOUR_TIMEOUT = 10.0
# A TCP connection attempt to each address given, all at once; returns when
# each is answered or after 0.5 s: the router learns the host from the first
# packet, whose answer it holds meanwhile.
KNOCK = """
import select, socket, sys
pending = []
for ip in sys.argv[1:]:
    s = socket.socket(socket.AF_INET6 if ":" in ip else socket.AF_INET)
    s.setblocking(False)
    s.connect_ex((ip, 9))
    pending.append(s)
while pending:
    done = select.select([], pending, [], 0.5)[1]
    if not done:
        break
    pending = [s for s in pending if s not in done]
"""


class Lab:
    def __init__(self, record: Record):
        self.record = record
        kind = backends.get(record.backend)
        self.backend: Backend = kind(record, kind.topology_of(record))
        self._nb: Northbound | None = None
        self.gone = False
        # (key, new pid) of each daemon restarted on purpose (an upgrade
        # step), in order: a crash watchdog does not take the old pid's end
        # for a death, and a test knows the lab changed releases under it
        self.restarted: list[tuple[str, int | None]] = []

    # --- life cycle -------------------------------------------------------
    @classmethod
    def up(cls, name: str, topology_name: str = "lab", owner: int | None = None,
           timeout: float = 20.0, backend: str = "netns",
           spec: LabSpec = LabSpec()) -> "Lab":
        """Build a lab owned by process `owner` (None: it stays until `down`)
        with deployment `backend` (netns: the OVN on PATH, or the one in
        root filesystem `spec.ovn_root`)."""
        kind = backends.get(backend)
        kind.preflight(spec)
        records.check_name(name)
        topology.get(topology_name)
        procs.become_subreaper()  # a daemon that dies is ours to tell how (daemon_exit)
        sweep()
        record = Record(name=name, topology=topology_name, backend=backend)
        # The builder owns the lab while building: if it is killed, the
        # record says so and the next sweep removes what it made.
        record.owner_pid = os.getpid()
        record.owner_start = procs.start_time(record.owner_pid)
        lab = None
        claimed = False
        try:
            with procs.sigterm_as_interrupt():
                kind.prepare(record, spec)
                records.claim(record)
                claimed = True
                lab = cls(record)
                started = time.monotonic()
                lab.backend.build(timeout)
                lab.meet_neighbours(timeout)
                record.state = "ready"
                record.build_seconds = round(time.monotonic() - started, 3)
                record.own(owner)
        except BaseException:
            if claimed:
                with procs.deferred_interrupts():  # a second Ctrl-C must not cut the cleanup short
                    if lab:
                        lab.close()
                    destroy(record)
            raise
        return lab

    def meet_neighbours(self, timeout: float) -> None:
        """Every router port on the provider network learns the provider
        hosts on its subnets (each host opens a TCP connection to it, which
        the router answers with a reset, resolving the host first), and the
        lab waits (up to NEIGHBOUR_TIMEOUT) until the Southbound holds those
        MAC bindings; hosts still unknown then are named in the status.  A
        router that has yet to resolve a client hands the replies to
        ovn-controller, which keeps only a few while it asks: the first
        burst of a test's connections from that client would be lost."""
        topo = self.topology
        if not topo.provider:
            return
        hosts = topo.provider.hosts + topo.provider.hosts6
        asks = {}  # host address -> (node, router port addresses on its subnet)
        for router in topo.routers:
            for port in router.ports:
                for ip in (port.ip, port.ip6) if port.switch == topo.provider.switch else ():
                    if not ip:
                        continue
                    net = ipaddress.ip_interface(ip).network
                    for node, address in hosts:
                        host = str(ipaddress.ip_interface(address).ip)
                        if ipaddress.ip_address(host) in net:
                            asks.setdefault(host, (node, []))[1].append(
                                str(ipaddress.ip_interface(ip).ip))
        sb = Southbound(self.sb_remote(), where=self.central)

        def missing() -> set[str]:
            return set(asks) - {str(ipaddress.ip_address(b.ip)) for b in sb.rows("MAC_Binding")}

        deadline = time.monotonic() + min(timeout, NEIGHBOUR_TIMEOUT)
        try:
            # A knock can go unanswered (its packet lost while the host
            # itself resolves the router, on a busy machine): the hosts
            # still unknown knock again until the deadline.
            while missing():
                if time.monotonic() > deadline:
                    # not fatal: the lab works, a first burst may lose a few
                    self.record.data["unmet_neighbours"] = sorted(missing())
                    self.record.save()
                    return
                knocks = [subprocess.Popen(self.backend.enter_prefix(asks[h][0])
                                           + [sys.executable, "-c", KNOCK, *asks[h][1]],
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                          for h in missing()]
                for knock in knocks:
                    knock.wait(timeout=30)
                try:
                    sb.wait(lambda: not missing(), 2, "MAC bindings of the provider hosts")
                except TimeoutError:
                    pass
        finally:
            sb.close()

    @classmethod
    def attach(cls, name: str, require_ready: bool = True) -> "Lab":
        record = records.load(name)
        if require_ready and record.state != "ready":
            raise LabError(f"lab {name!r} is not ready (state {record.state})")
        return cls(record)

    def down(self) -> None:
        with procs.deferred_interrupts():  # a second Ctrl-C must not cut the removal short
            self.close()
            self.gone = True  # its daemons are stopped on purpose
            destroy(self.record)

    def close(self) -> None:
        self.backend.close()
        if self._nb:
            self._nb.close()
            self._nb = None

    # --- access -----------------------------------------------------------
    @property
    def name(self) -> str:
        return self.record.name

    @property
    def topology(self) -> topology.Topology:
        return self.backend.topo

    @property
    def names(self) -> Names:
        return self.backend.names

    @property
    def versions(self) -> Versions:
        return self.backend.versions

    @property
    def summary(self) -> str:
        return f"{self.versions.summary}, backend {self.record.backend}"

    @property
    def nb(self) -> Northbound:
        if self._nb is None:
            self._nb = Northbound(self.backend.nb_remote(), where=self.central)
        return self._nb

    def sb_remote(self) -> str:
        return self.backend.sb_remote()

    @property
    def central(self) -> str:
        return self.backend.central

    def exec_prefix(self, node: str) -> list[str]:
        self._check_node(node)
        return self.backend.exec_prefix(node)

    def enter_prefix(self, node: str) -> list[str]:
        self._check_node(node)
        return self.backend.enter_prefix(node)

    def _check_node(self, node: str) -> None:
        if node not in self.topology.nodes:
            raise LabError(f"unknown node {node!r} in lab {self.name} "
                           f"(nodes: {', '.join(self.topology.nodes)})")

    def run(self, node: str, argv: list[str], **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(self.exec_prefix(node) + argv, **kwargs)

    def ctl_command(self, which: str) -> list[str]:
        """`ovn-nbctl`/`ovn-sbctl` pointed at this lab's database."""
        return self.backend.ctl_command(which)

    def nbctl(self, argv: list[str]) -> int:
        """Run `ovn-nbctl ARGV` on the lab's Northbound DB (output and exit
        status passed through), then give the rows it created the lab's
        owner tag, so that `down` removes them too (logical.adopt says what
        else a shared deployment's rows may see)."""
        before = logical.row_uuids(self.nb)
        try:
            return subprocess.run(self.ctl_command("nb") + argv).returncode
        finally:
            with procs.deferred_interrupts():  # a Ctrl-C must not leave rows untagged
                self._nb.close()
                self._nb = None  # a new connection starts from the database as it is now
                logical.adopt(self.nb, self.names, before)

    def sync(self, timeout: float = 20.0) -> None:
        """Return once every chassis has installed the current Northbound,
        down to the datapath's cached flows."""
        try:
            self.nb.sync(timeout)
        except TimeoutError as exc:
            raise LabError(f"lab {self.name}: chassis did not catch up with the "
                           f"Northbound DB within {timeout:g} s ({exc}); logs: "
                           f"`ovnlb-lab status --name {self.name}`") from None
        self.backend.settle()

    def upgrade(self, to: str | None, step: str, chassis: list[str] | None = None,
                timeout: float = 30.0, pinned: bool | None = None) -> list[str]:
        """One upgrade step to the installation in root filesystem `to`
        (None or "/": this machine's): "controllers", "central", "ovs",
        "pin" or "all" (docs/upgrades.md); returns once the lab is whole
        again (with `pinned`, once ovn-northd is: pinned controllers follow
        no change), with the daemons it restarted."""
        self.close()  # the Northbound connection would outlive its server
        done = self.backend.upgrade(to, step, chassis, timeout, pinned)
        pids = self.daemon_pids()
        self.restarted += [(key, pids.get(key)) for key in done]
        return done

    def reset(self) -> None:
        """Back to the topology alone: the lab's load balancers and their
        groups removed (and no one else's), conntrack of its traffic forgotten."""
        if logical.remove(self.nb, self.names, ("Load_Balancer", "Load_Balancer_Group")):
            self.sync()
        self.backend.flush_conntrack()

    def logs(self) -> dict[str, str]:
        return self.backend.logs()

    # --- what a failure report collects (pytest_ovnlb/plugin/evidence.py) ---------
    def log_offsets(self) -> dict[str, int]:
        return evidence_mod.log_offsets(self.backend)

    def evidence(self, directory: Path, vips: list[str], since: dict[str, int]) -> list[str]:
        return evidence_mod.collect(self.backend, directory, vips, since)

    def shell_vars(self) -> dict[str, str]:
        """The names and addresses a person's commands need, as this
        deployment has them (`ovnlb-lab env`): on a shared deployment
        Northbound names carry the lab's prefix and the provider subnet is
        the lab's own."""
        t, roles, nb = self.topology, self.topology.roles, self.names.nb
        found = {"PREFIX": self.names.prefix}
        if roles.gateway_router:
            found.update(ROUTER=nb(roles.gateway_router), ROUTER_VIP=roles.router_vip,
                         ROUTER_VIP6=roles.router_vip6, SNAT_IP=roles.router_snat_ip)
        found.update(SWITCH=nb(roles.client_switch), SWITCH_VIP=roles.switch_vip,
                     SWITCH_VIP6=roles.switch_vip6)
        if roles.dgp_router:
            found.update(DGP_ROUTER=nb(roles.dgp_router), DGP_VIP=roles.dgp_vip,
                         DGP_VIP6=roles.dgp_vip6)
        if t.provider:
            provider = t.switch(t.provider.switch)
            found.update(PROVIDER_SUBNET=provider.subnet, PROVIDER_SUBNET6=provider.subnet6)
        for node in t.nodes:  # each node's IPv4 client address: VM1=..., UBUNTU1=...
            try:
                found.setdefault(node.upper(), t.address(node))
            except LabError:
                pass  # a chassis off the provider network
        return {key: value for key, value in found.items() if value is not None}

    def status(self) -> str:
        t, r = self.topology, self.record
        dead = [key for key, pid in self.daemon_pids().items() if not pid]
        lines = [
            f"lab {r.name}: topology {t.name} ({t.description})",
            f"  state: {r.state}" + (f", DEGRADED: not running: {', '.join(dead)}" if dead else
                                    ", all daemons running")
            + (f" (built in {r.build_seconds} s)" if r.build_seconds else ""),
            f"  {self.summary}",
            f"  owner: {'pid ' + str(r.owner_pid) if r.owner_pid else 'none (stays until down)'}",
            f"  Northbound: {self.backend.nb_remote()}, Southbound: {self.backend.sb_remote()}",
            *self.backend.describe(),
            *([f"  routers have not learned (MAC bindings): "
               f"{', '.join(r.data['unmet_neighbours'])}"] if r.data.get("unmet_neighbours")
              else []),
            f"  nodes: {', '.join(t.nodes)}",
            (f"  names and addresses for commands (`eval \"$(ovnlb-lab env --name {r.name})\"` "
             "sets them):"),
            *textwrap.wrap(" ".join(f"{k}={shlex.quote(v)}" for k, v in self.shell_vars().items()),
                           100, initial_indent="    ", subsequent_indent="    ",
                           break_on_hyphens=False),
            "  logs:",
        ]
        lines += [f"    {key}: {path}" for key, path in self.logs().items()]
        return "\n".join(lines)

    def daemon_pids(self) -> dict[str, int | None]:
        return self.backend.daemon_pids()
