"""What a deployment offers a lab, whatever runs it.

A backend makes the topology exist (building everything, or attaching to a
running deployment and adding only what the lab needs), says which OVN/OVS
it runs, enters nodes, and removes exactly what it made.  It must be able to
remove a lab from its record alone, so a run killed with SIGKILL is swept by
the next one.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from pytest_ovnlb.engine import topology
from pytest_ovnlb.engine.records import Record
from pytest_ovnlb.engine.topology import Names, Topology
from pytest_ovnlb.errors import LabError
from pytest_ovnlb.model.versions import Version


@dataclass(frozen=True)
class Daemon:
    """One daemon's program, its version and where it runs from."""

    program: str  # ovn-northd, ovn-controller, ovsdb-server, ovs-vswitchd
    version: Version  # of OVN for ovn-*, of OVS for the others
    root: str | None = None  # root filesystem it runs from (None: this machine's)


@dataclass(frozen=True)
class Versions:
    """Read from the deployment itself.  Where the daemons run different
    versions (an upgrade under way), `ovn` is the oldest of ovn-northd and
    the ovn-controllers and `ovs` the oldest ovs-vswitchd: the expectations
    follow those (docs/upgrades.md)."""

    ovn: Version
    ovs: Version
    datapath: str  # "netdev" (userspace) or "system" (kernel)
    daemons: dict[str, Daemon] = field(default_factory=dict, compare=False)  # by key

    @classmethod
    def of(cls, daemons: dict[str, Daemon], datapath: str) -> "Versions":
        ovn = min(d.version for d in daemons.values() if d.program.startswith("ovn-"))
        ovs = min(d.version for d in daemons.values() if d.program == "ovs-vswitchd")
        return cls(ovn, ovs, datapath, daemons)

    @property
    def mixed(self) -> bool:
        """Whether the daemons run from more than one installation."""
        return len({d.root for d in self.daemons.values()}) > 1

    def by_daemon(self) -> str:
        """Which daemons run which version: 'OVN 23.03.1: central/northd; ...'."""
        groups: dict[str, list[str]] = {}
        for key, d in self.daemons.items():
            kind = "OVN" if d.program.startswith("ovn-") else "OVS"
            groups.setdefault(f"{kind} {d.version}", []).append(key)
        return "; ".join(f"{v}: {', '.join(keys)}" for v, keys in groups.items())

    @property
    def summary(self) -> str:
        text = f"OVN {self.ovn}, OVS {self.ovs}, {self.datapath} datapath"
        if self.mixed:
            text += f" (mixed, expectations follow the oldest; {self.by_daemon()})"
        return text


@dataclass(frozen=True)
class LabSpec:
    """What the user asked of a backend (options of pytest or ovnlb-lab)."""

    ovn_root: str | None = None  # netns: root filesystem of the OVN under test
    central_root: str | None = None  # netns: NB/SB and ovn-northd from this one instead
    chassis_root: str | None = None  # netns: each chassis's OVN and OVS from this one instead
    fmn_dir: str | None = None  # fake-multinode: checkout to start a cluster from
    runtime: str | None = None  # fake-multinode: podman or docker
    prepare_host: bool = False  # fake-multinode spin-up: provide the host's OVS and bridges


def program_of(key: str) -> str:
    """The program behind daemon `key` ("central/nb" runs ovsdb-server)."""
    daemon = key.split("/")[-1]
    return {"nb": "ovsdb-server", "sb": "ovsdb-server", "northd": "ovn-northd"}.get(
        daemon, daemon)


class Backend(ABC):
    name: ClassVar[str]  # the --ovn-backend value
    # Whether the daemons' logs are the lab's alone (judged after each test,
    # verdicts/logs.py), not shared with other runs and users.
    logs_are_ours: ClassVar[bool] = False

    def __init__(self, record: Record, topo: Topology):
        self.record = record
        self.topo = topo

    @classmethod
    def topology_of(cls, record: Record) -> Topology:
        """The topology as this backend lays it out for the lab of `record`."""
        return topology.get(record.topology)

    # --- before anything exists ------------------------------------------
    @classmethod
    @abstractmethod
    def preflight(cls, spec: LabSpec) -> str:
        """Check that a lab can be made here; return a one-line summary of
        what will run it (versions, where).  Raises LabError, creating nothing."""

    @classmethod
    @abstractmethod
    def prepare(cls, record: Record, spec: LabSpec) -> None:
        """Fill the record with what the lab will own (namespaces, names,
        addresses) before it is claimed, so a crash at any point is sweepable."""

    # --- life cycle ---------------------------------------------------------
    @abstractmethod
    def build(self, timeout: float) -> None:
        """Make the topology exist; return when traffic can flow."""

    @classmethod
    @abstractmethod
    def destroy(cls, record: Record) -> None:
        """Remove everything the lab of `record` made, and nothing else."""

    # --- what the lab offers tests and people -----------------------------
    @property
    @abstractmethod
    def versions(self) -> Versions: ...

    @property
    def names(self) -> Names:
        """Northbound and chassis names of this lab's topology."""
        return Names.from_record(self.record.names)

    @property
    def central(self) -> str:
        """The node holding the databases, as errors name it."""
        return self.topo.central.name

    @abstractmethod
    def nb_remote(self) -> str: ...

    @abstractmethod
    def sb_remote(self) -> str: ...

    @abstractmethod
    def ctl_command(self, which: str) -> list[str]:
        """argv of `ovn-nbctl` ("nb") or `ovn-sbctl` ("sb") for this lab's DB."""

    @abstractmethod
    def exec_prefix(self, node: str) -> list[str]:
        """argv prefix running one of the node's own programs in the node."""

    @abstractmethod
    def enter_prefix(self, node: str) -> list[str]:
        """argv prefix running a program of this machine (the traffic agent)
        in the node's network namespace."""

    @abstractmethod
    def put_file(self, node: str, source: Path, dest: str) -> None:
        """Copy a file of this machine to path `dest` as the node sees it."""

    # A chassis host is where a chassis's OVS runs, named as in the daemons'
    # keys (`logs`): the topology's chassis (netns) or its container.
    @abstractmethod
    def chassis_hosts(self) -> list[str]:
        """Every chassis host of the lab."""

    @abstractmethod
    def run(self, host: str, argv: list[str], timeout: float) -> str:
        """Run one of the chassis host's own programs (`ovs-ofctl ...`,
        reaching its daemons); its output, or LabError saying what failed
        (also when it does not end within `timeout` seconds)."""

    @abstractmethod
    def appctl(self, host: str, daemon: str, command: str, *args: str) -> str:
        """`ovs-appctl -t DAEMON COMMAND ARGS` on the chassis host, through
        the daemon's control socket from this process (engine/unixctl.py);
        its answer, or LabError."""

    @abstractmethod
    def settle(self) -> None:
        """Make each chassis's datapath follow its OpenFlow tables now:
        ovn-controller reports a Northbound change installed once its
        OpenFlow is, but cached datapath flows are revalidated after that,
        and a new connection in between still takes the old path.  Dropping
        the cache (`revalidator/purge`) changes no behaviour, only costs
        the next packets an upcall."""

    @abstractmethod
    def flush_conntrack(self) -> None:
        """Forget the connections of this lab's traffic (and only those)."""

    @abstractmethod
    def logs(self) -> dict[str, str]:
        """Where to read each daemon's log (a path, or a command)."""

    @abstractmethod
    def daemon_pids(self) -> dict[str, int | None]:
        """The pid of each daemon the lab relies on (None: not running)."""

    @abstractmethod
    def log_files(self) -> dict[str, str]:
        """Each daemon's log as a path on this machine (keys as in `logs`)."""

    def daemon_exit(self, key: str, pid: int) -> str:
        """How daemon `key` (pid `pid`, gone) ended, if this backend can tell."""
        return "exit status unknown"

    def core_file(self, key: str) -> Path | None:
        """The core that daemon `key` left when it crashed, if this backend
        collects cores (on this machine)."""
        return None

    def program(self, key: str) -> tuple[str, str | None] | None:
        """Daemon `key`'s program as this machine sees it, and the root
        filesystem it runs in (None: /): what gdb reads a core with."""
        return None

    def restart(self, keys: list[str]) -> None:
        """Start the daemons `keys` (gone) again, as the lab started them."""
        raise LabError(f"the {self.name} backend does not restart daemons")

    def upgrade(self, to: str | None, step: str, chassis: list[str] | None,
                timeout: float, pinned: bool | None = None) -> list[str]:
        """Do what a package upgrade to installation `to` does for `step`,
        then wait until the lab is whole; the daemons restarted."""
        raise LabError(f"the {self.name} backend does not upgrade daemons: its nodes run "
                       "the OVN their images hold; upgrades run on the netns backend")

    def close(self) -> None:
        """Let go of connections (the lab stays)."""

    def describe(self) -> list[str]:
        """Extra lines for `ovnlb-lab status` and failure reports."""
        return []
