"""A running lab: what the CLI and the pytest fixtures hold.

`Lab.up()` claims a name, builds the topology and returns once traffic can
flow; any failure or interrupt on the way removes everything it made.
`Lab.attach()` reopens a lab by name from its record.
"""

from __future__ import annotations

import os
import subprocess
import time

from pytest_ovnlb.backends.netns import NetnsBackend, namespaces
from pytest_ovnlb.engine import install as install_mod
from pytest_ovnlb.engine import procs, records, topology
from pytest_ovnlb.engine.ovsdb import Northbound
from pytest_ovnlb.engine.records import Record
from pytest_ovnlb.errors import LabError


def require_root() -> None:
    if os.geteuid() != 0:
        raise LabError("the embedded lab needs root (network namespaces, OVS daemons); "
                       "run as root or with sudo")


def preflight(ovn_root: str | None = None) -> install_mod.Install:
    """Everything a lab needs before anything is made: root, OVN/OVS."""
    require_root()
    return install_mod.find(ovn_root)


class Lab:
    def __init__(self, record: Record):
        self.record = record
        self.topology = topology.get(record.topology)
        self.install = install_mod.find(record.ovn_root)
        self.backend = NetnsBackend(record, self.topology, self.install)
        self._nb: Northbound | None = None

    # --- life cycle -------------------------------------------------------
    @classmethod
    def up(cls, name: str, topology_name: str = "lab", owner: int | None = None,
           timeout: float = 20.0, ovn_root: str | None = None) -> "Lab":
        """Build a lab owned by process `owner` (None: it stays until `down`),
        running the OVN found on PATH, or the one in root filesystem `ovn_root`."""
        found = preflight(ovn_root)
        records.check_name(name)
        topo = topology.get(topology_name)
        if owner == os.getpid():
            procs.become_subreaper()
        records.sweep()
        record = Record(name=name, topology=topo.name, ovn_root=found.root)
        record.namespaces = namespaces(record, topo)
        # The builder owns the lab while building: if it is killed, the
        # record says so and the next sweep removes what it made.
        record.owner_pid = os.getpid()
        record.owner_start = procs.start_time(record.owner_pid)
        records.claim(record)
        lab = None
        try:
            with procs.sigterm_as_interrupt():
                lab = cls(record)
                started = time.monotonic()
                lab.backend.build(timeout)
                record.state = "ready"
                record.build_seconds = round(time.monotonic() - started, 3)
                record.own(owner)
        except BaseException:
            with procs.deferred_interrupts():  # a second Ctrl-C must not cut the cleanup short
                records.destroy(record)
            raise
        return lab

    @classmethod
    def attach(cls, name: str, require_ready: bool = True) -> "Lab":
        record = records.load(name)
        if require_ready and record.state != "ready":
            raise LabError(f"lab {name!r} is not ready (state {record.state})")
        return cls(record)

    def down(self) -> None:
        self.close()
        records.destroy(self.record)

    def close(self) -> None:
        if self._nb:
            self._nb.close()
            self._nb = None

    # --- access -----------------------------------------------------------
    @property
    def name(self) -> str:
        return self.record.name

    @property
    def nb(self) -> Northbound:
        if self._nb is None:
            self._nb = Northbound(self.backend.nb_remote())
        return self._nb

    def exec_prefix(self, node: str) -> list[str]:
        if node not in self.topology.nodes:
            raise LabError(f"unknown node {node!r} in lab {self.name} "
                           f"(nodes: {', '.join(self.topology.nodes)})")
        return self.backend.exec_prefix(node)

    def run(self, node: str, argv: list[str], **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run(self.exec_prefix(node) + argv, **kwargs)

    def ctl_command(self, which: str) -> list[str]:
        """`ovn-nbctl`/`ovn-sbctl` pointed at this lab's database."""
        remote = self.backend.nb_remote() if which == "nb" else self.backend.sb_remote()
        return self.install.command(f"ovn-{which}ctl", f"--db={remote}")

    def sync(self, timeout: float = 20.0) -> None:
        """Return once every chassis has installed the current Northbound."""
        try:
            self.nb.sync(timeout)
        except TimeoutError as exc:
            raise LabError(f"lab {self.name}: chassis did not catch up with the "
                           f"Northbound DB within {timeout:g} s ({exc}); logs in "
                           f"{self.record.rundir}") from None

    def flush_conntrack(self) -> None:
        self.backend.flush_conntrack()

    def logs(self):
        return self.backend.logs()

    def status(self) -> str:
        t, r = self.topology, self.record
        dead = [key for key, pid in self.daemon_pids().items() if not pid]
        lines = [
            f"lab {r.name}: topology {t.name} ({t.description})",
            f"  state: {r.state}" + (f", DEGRADED: not running: {', '.join(dead)}" if dead else
                                    ", all daemons running")
            + (f" (built in {r.build_seconds} s)" if r.build_seconds else ""),
            f"  {self.install.summary}",
            f"  owner: {'pid ' + str(r.owner_pid) if r.owner_pid else 'none (stays until down)'}",
            f"  run directory (databases, sockets, logs): {r.rundir}",
            f"  Northbound: {self.backend.nb_remote()}, Southbound: {self.backend.sb_remote()}",
            "  in `ovnlb-lab exec`, ovs-vsctl/ovs-appctl/ovs-ofctl reach the node's own "
            "daemons and ovn-nbctl/ovn-sbctl the lab's databases",
            f"  nodes: {', '.join(t.nodes)}",
            f"  namespaces: {', '.join(r.namespaces)}",
            "  logs:",
        ]
        lines += [f"    {key}: {path}" for key, path in self.logs().items()]
        return "\n".join(lines)

    def daemon_pids(self) -> dict[str, int | None]:
        result = {}
        for key, log in self.logs().items():
            pidfile = log.with_suffix(".pid")
            try:
                pid = int(pidfile.read_text().split()[0])
            except (OSError, ValueError, IndexError):
                pid = None
            result[key] = pid if procs.alive(pid) else None
        return result
