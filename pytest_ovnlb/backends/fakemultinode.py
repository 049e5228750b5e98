"""An ovn-fake-multinode deployment: containers `ovn-central*` (NB, SB,
ovn-northd), `ovn-gw-N` and `ovn-chassis-N` (ovsdb-server, ovs-vswitchd,
ovn-controller), found through the container runtime by name prefix.

The cluster is shared: the lab adds only its own pieces and removes exactly
those.  Northbound rows carry the lab's owner tag and names prefixed with the
run; the provider subnet is reserved in the Northbound DB itself (the lab's
provider switch, created first, holds it; on a tie the smaller owner keeps
it).  Topology hosts map onto gateway and chassis containers: each gets a
namespace inside its container on the provider bridge (from the node's
`ovn-bridge-mappings`), each VM a namespace inside its chassis container
with a veth on `br-int`.  The databases are reached through the central's
unix sockets (`/proc/PID/root/...`), so SSL or not does not matter; a
clustered (raft) central, `ovn-central-az1-1..3`, is reached through every
member's socket, and the connection follows the leader.  The
traffic agent runs from this machine inside a node's network namespace
(`nsenter --net`), so nodes need nothing of ours.
"""

from __future__ import annotations

import ipaddress
import os
import re
import secrets
import shlex
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from pytest_ovnlb.backends import fmnhost
from pytest_ovnlb.backends.base import Backend, LabSpec, Versions
from pytest_ovnlb.engine import links, logical, procs, sysctls, topology, unixctl
from pytest_ovnlb.engine.links import iproute, last_line, tx_checksum_off
from pytest_ovnlb.engine.ovsdb import Northbound, Southbound, wait_for
from pytest_ovnlb.engine.records import Record
from pytest_ovnlb.engine.topology import GENEVE_OVERHEAD, Names, Topology
from pytest_ovnlb.errors import LabError
from pytest_ovnlb.model.versions import Version

CENTRAL, GATEWAY, CHASSIS = "ovn-central", "ovn-gw-", "ovn-chassis-"
IMAGE_VARS = ("CENTRAL_IMAGE", "CHASSIS_IMAGE", "GW_IMAGE")
DEFAULT_IMAGE = "ovn/ovn-multi-node:latest"
# Where OVN's rundir has been in the images over the years.
DB_DIRS = ("/run/ovn", "/var/run/ovn", "/usr/local/var/run/ovn", "/var/run/openvswitch")
PROVIDER_POOL = ipaddress.ip_network("10.127.0.0/16")
# A lab's IPv6 provider subnet is the /64 with its IPv4 subnet's index in the pool.
PROVIDER_POOL6 = ipaddress.ip_network("fd00:127::/48")
SUBNET_KEY = "ovnlb:subnet"
EXEC_TIMEOUT = 30
# A clustered database elects a new leader within a few election timers (1 s).
ELECTION_TIMEOUT = 10.0


def provider6(subnet: str) -> str:
    """The IPv6 provider subnet that goes with IPv4 provider subnet `subnet`."""
    net = ipaddress.ip_network(subnet)
    index = (int(net.network_address) - int(PROVIDER_POOL.network_address)) >> (
        32 - net.prefixlen)
    return str(ipaddress.ip_network((int(PROVIDER_POOL6.network_address) + (index << 64), 64)))


def runtime_of(spec: LabSpec) -> str:
    """podman unless told otherwise (or only docker is here); $RUNC_CMD honoured."""
    name = spec.runtime or os.environ.get("RUNC_CMD")
    if name:
        if not shutil.which(name):
            raise LabError(f"fake-multinode: container runtime {name!r} not found")
        return name
    found = next((r for r in ("podman", "docker") if shutil.which(r)), None)
    if not found:
        raise LabError("fake-multinode: no container runtime (podman or docker) on PATH; "
                       "install one or set RUNC_CMD")
    return found


def _natural(name: str):
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name)]


@dataclass(frozen=True)
class Node:
    container: str
    system_id: str
    encap_ip: str
    mappings: dict  # physical network -> bridge
    datapath: str
    ovn: Version
    ovs: Version
    rundirs: dict  # daemon -> its run directory inside the container


class Cluster:
    """A running deployment, seen through the container runtime.  `centrals`:
    the members of the (first availability zone's) central: one container,
    or the three of a clustered database (`ovn-central-az1-1..3`)."""

    def __init__(self, runtime: str, centrals: list[str], gateways: list[str],
                 chassis: list[str]):
        self.runtime = runtime
        self.centrals = centrals
        self.gateways = gateways
        self.chassis = chassis

    @classmethod
    def find(cls, runtime: str) -> "Cluster | None":
        result = _run([runtime, "ps", "--format", "{{.Names}}"], f"{runtime} ps")
        names = sorted(result.split(), key=_natural)
        centrals = [n for n in names if n.startswith(CENTRAL)]
        if not centrals:
            return None
        zone = _zone(centrals[0])
        gateways = [n for n in names if n.startswith(GATEWAY)]
        chassis = [n for n in names if n.startswith(CHASSIS)]
        return cls(runtime, [n for n in centrals if _zone(n) == zone], gateways, chassis)

    @property
    def central(self) -> str:
        """How the central is named in messages: its container, or its members."""
        if len(self.centrals) == 1:
            return self.centrals[0]
        return _zone(self.centrals[0]) + "-" + "/".join(
            c[len(_zone(c)) + 1:] for c in self.centrals)

    @property
    def hosts(self) -> list[str]:
        """Containers that can play a topology host: gateways first."""
        return self.gateways + self.chassis

    def pid(self, container: str) -> int:
        out = _run([self.runtime, "inspect", "-f", "{{.State.Pid}}", container],
                   f"{self.runtime} inspect {container}")
        return int(out.strip())

    def sh(self, container: str, script: str, check: bool = True) -> str:
        """Run a shell script in the container; stdout, or LabError naming
        the container and what it said last."""
        return _run([self.runtime, "exec", "-i", container, "sh", "-c", script],
                    f"on {container}", check=check)

    def db_socket(self, member: str, db: str) -> str:
        """Host path of a central member's `ovn{db}_db.sock` (db: nb or sb)."""
        candidates = " ".join(f"{d}/ovn{db}_db.sock" for d in DB_DIRS)
        found = self.sh(member, f"for f in {candidates}; do "
                        '[ -S "$f" ] && readlink -f "$f" && exit 0; done; exit 1',
                        check=False).strip()
        if not found:
            raise LabError(f"fake-multinode: {member} has no {db.upper()} database "
                           f"socket (looked in {', '.join(DB_DIRS)})")
        return f"/proc/{self.pid(member)}/root{found}"

    def db_remote(self, db: str) -> str:
        """Every member's socket: the IDL (leader-only) finds the leader among
        them and moves when leadership does."""
        return ",".join(f"unix:{self.db_socket(m, db)}" for m in self.centrals)

    def leader(self, db: str) -> str:
        """The member leading database `db` (nb or sb); the only one of a
        central that is not clustered.  Asked through each member's control
        socket (`cluster/status`); a member that does not answer is skipped,
        and an election under way is waited for (up to ELECTION_TIMEOUT)."""
        if len(self.centrals) == 1:
            return self.centrals[0]
        name = {"nb": "OVN_Northbound", "sb": "OVN_Southbound"}[db]
        controls = {}
        for member in self.centrals:
            try:
                controls[member] = self.db_socket(member, db)[:-len(".sock")] + ".ctl"
            except LabError:
                continue

        def leading() -> str | None:
            for member, control in controls.items():
                try:
                    status = unixctl.call(control, "cluster/status", name)
                except LabError:
                    continue
                if re.search(r"^Role: leader$", status, re.M):
                    return member
            return None

        try:
            return wait_for(leading, ELECTION_TIMEOUT, f"a leader of {name}")
        except TimeoutError:
            raise LabError(f"fake-multinode: no member of {self.central} leads {name} "
                           f"within {ELECTION_TIMEOUT:g} s (cluster/status on each)") from None

    def ctl_argv(self, which: str) -> list[str]:
        """`ovn-nbctl`/`ovn-sbctl` (which: nb or sb) in the member leading
        that database (--no-leader-only: it may lose the lead meanwhile,
        and a follower passes writes on to the leader)."""
        argv = [self.runtime, "exec", "-i", self.leader(which), f"ovn-{which}ctl"]
        return argv + (["--no-leader-only"] if len(self.centrals) > 1 else [])

    def node(self, container: str) -> Node:
        """What a gateway or chassis container runs, read from its OVS database."""
        get = "ovs-vsctl --timeout=5 --if-exists get"
        out = self.sh(container, (
            f"echo system_id=$({get} Open_vSwitch . external_ids:system-id); "
            f"echo encap=$({get} Open_vSwitch . external_ids:ovn-encap-ip); "
            f"echo mappings=$({get} Open_vSwitch . external_ids:ovn-bridge-mappings); "
            f"echo datapath=$({get} Bridge br-int datapath_type); "
            'echo ovn=$(ovn-controller --version | head -1); '
            'echo ovs=$(ovs-vswitchd --version | head -1); '
            "echo ovn_rundir=$(readlink -f /var/run/ovn); "
            "echo ovs_rundir=$(readlink -f /var/run/openvswitch); "
            "ovn-appctl -T 5 -t ovn-controller version >/dev/null 2>&1 && echo state=running; true"))
        facts = dict(line.split("=", 1) for line in out.splitlines() if "=" in line)
        facts = {k: v.strip().strip('"') for k, v in facts.items()}
        if not facts.get("system_id"):
            raise LabError(f"fake-multinode: {container} has no system-id in its OVS database")
        if facts.get("state") != "running":
            raise LabError(f"fake-multinode: ovn-controller on {container} does not answer")
        system_id, encap, mappings = facts["system_id"], facts["encap"], facts["mappings"]
        datapath, ovn, ovs = facts["datapath"], facts["ovn"], facts["ovs"]
        pairs = dict(m.split(":", 1) for m in mappings.split(",") if ":" in m)
        return Node(container, system_id, encap, pairs, datapath or "system",
                    _version(ovn, container), _version(ovs, container),
                    {"ovn-controller": facts["ovn_rundir"], "ovs-vswitchd": facts["ovs_rundir"]})


def _zone(central: str) -> str:
    """A central's availability zone: its name without a cluster member's -N."""
    return re.sub(r"-\d+$", "", central)


def _version(line: str, container: str) -> Version:
    match = re.search(r"(\d+\.\d+\.\d+)", line)
    if not match:
        raise LabError(f"fake-multinode: cannot read a version on {container} from {line!r}")
    return Version.parse(match.group(1))


def _run(argv: list[str], what: str, check: bool = True, timeout: float = EXEC_TIMEOUT) -> str:
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise LabError(f"fake-multinode: {what}: no answer within {timeout:g} s") from None
    if check and result.returncode != 0:
        raise LabError(f"fake-multinode: {what}: {last_line(result.stderr)}")
    return result.stdout


def _parallel(fn, items):
    with ThreadPoolExecutor(max_workers=max(1, len(items))) as pool:
        return list(pool.map(fn, items))


class FakeMultinodeBackend(Backend):
    name = "fake-multinode"

    def __init__(self, record: Record, topo: Topology):
        super().__init__(record, topo)
        data = record.data
        self.cluster = _recorded(data)
        self.containers: dict[str, str] = data["containers"]  # topology host -> container
        self._pids: dict[str, int] = {}
        self._sb: Southbound | None = None

    # --- before anything exists ------------------------------------------
    @classmethod
    def _cluster(cls, spec: LabSpec) -> Cluster:
        runtime = runtime_of(spec)
        cluster = Cluster.find(runtime)
        if cluster is None:
            hint = (" (--ovn-fmn-dir starts one at the start of a pytest run)"
                    if spec.fmn_dir else
                    "; start one (ovn_cluster.sh start) or pass --ovn-fmn-dir")
            raise LabError(f"fake-multinode: no running deployment found with {runtime} "
                           f"(no container named {CENTRAL}*){hint}")
        return cluster

    @classmethod
    def preflight(cls, spec: LabSpec) -> str:
        """The health gate: the databases answer, every gateway and chassis
        runs ovn-controller, is in the Southbound DB and has caught up."""
        procs.require_root("the fake-multinode backend (container namespaces)")
        if spec.fmn_dir:
            check_checkout(spec)
        cluster = cls._cluster(spec)
        if not cluster.hosts:
            raise LabError(f"fake-multinode: no {GATEWAY}*/{CHASSIS}* containers beside "
                           f"{cluster.central}")
        nodes = _parallel(cluster.node, cluster.hosts)
        nb = Northbound(cluster.db_remote("nb"), where=cluster.central)
        sb = Southbound(cluster.db_remote("sb"), where=cluster.central)
        try:
            registered = sb.chassis_names()
            for node in nodes:
                if node.system_id not in registered:
                    raise LabError(f"fake-multinode: chassis {node.system_id} "
                                   f"({node.container}) is not in the Southbound DB")
            try:
                nb.sync(15)
            except TimeoutError:
                target = nb.rows("NB_Global")[0].nb_cfg
                behind = sorted(c.name for c in sb.rows("Chassis_Private") if c.nb_cfg < target)
                raise LabError(f"fake-multinode: chassis {', '.join(behind) or '?'} did not "
                               "catch up with the Northbound DB within 15 s") from None
        finally:
            nb.close()
            sb.close()
        first = nodes[0]
        return (f"OVN {first.ovn}, OVS {first.ovs}, {first.datapath} datapath on "
                f"ovn-fake-multinode ({cluster.central}, {len(cluster.gateways)} gateway(s), "
                f"{len(cluster.chassis)} chassis; {cluster.runtime})")

    @classmethod
    def topology_of(cls, record: Record) -> Topology:
        topo = topology.get(record.topology)
        subnet = record.data.get("provider_subnet")
        if topo.provider and subnet:
            topo = topology.on_provider(topo, subnet, record.data["network_name"],
                                        provider6(subnet))
        return topo

    @classmethod
    def prepare(cls, record: Record, spec: LabSpec) -> None:
        cluster = cls._cluster(spec)
        topo = topology.get(record.topology)
        hosts = [c.name for c in topo.chassis]
        # The host with the gateway router (the central chassis in the
        # reference lab) goes on a gateway container.
        hosts.sort(key=lambda h: not any(r.chassis == h for r in topo.routers))
        if len(cluster.hosts) < len(hosts):
            raise LabError(f"fake-multinode: topology {topo.name} needs {len(hosts)} gateway/"
                           f"chassis containers, the deployment has {len(cluster.hosts)}")
        containers = dict(zip(hosts, cluster.hosts))
        nodes = {h: cluster.node(c) for h, c in containers.items()}
        network = None
        if topo.provider:
            bridged = nodes[topo.provider.bridge_chassis].mappings
            if not bridged:
                raise LabError(f"fake-multinode: {containers[topo.provider.bridge_chassis]} "
                               "has no ovn-bridge-mappings for a provider network")
            network = sorted(bridged)[0]
        tag = secrets.token_hex(3)
        record.names = Names(
            prefix=f"{record.name}-", owner=f"{record.name}.{tag}",
            chassis_map=tuple((h, nodes[h].system_id) for h in hosts)).to_record()
        record.data = {
            "runtime": cluster.runtime, "centrals": cluster.centrals, "tag": tag,
            "containers": containers, "network_name": network,
            "bridges": {h: nodes[h].mappings.get(network) for h in hosts},
            "datapath": nodes[hosts[0]].datapath,
            "versions": [str(nodes[hosts[0]].ovn), str(nodes[hosts[0]].ovs)],
            "namespaces": {}, "ports": {},  # container -> ours there
            "remotes": {db: cluster.db_remote(db) for db in ("nb", "sb")},
            "rundirs": {nodes[h].container: nodes[h].rundirs for h in hosts},
        }

    # --- naming -------------------------------------------------------------
    def _ns(self, node: str) -> str:
        return f"{self.record.names['prefix']}{node}"

    def _port(self, node: str) -> str:
        return f"ol{self.record.data['tag']}{node}"[:15]  # interface names: 15 bytes

    def _container(self, node: str) -> str:
        if node in self.containers:
            return self.containers[node]
        return self.containers[self.topo.vm(node).chassis]

    def _has_ns(self, node: str) -> bool:
        """VMs, and hosts with an address on the provider network."""
        hosts = dict(self.topo.provider.hosts) if self.topo.provider else {}
        return node not in self.containers or node in hosts

    def _pid(self, container: str) -> int:
        if container not in self._pids:
            self._pids[container] = self.cluster.pid(container)
        return self._pids[container]

    def _netns_path(self, node: str) -> str:
        container = self._container(node)
        if not self._has_ns(node):
            return f"/proc/{self._pid(container)}/ns/net"
        netns_dir = self.record.data["netns_dir"][container]
        return f"/proc/{self._pid(container)}/root{netns_dir}/{self._ns(node)}"

    # --- life cycle ---------------------------------------------------------
    def reserve(self) -> None:
        """Claim a provider subnet no other lab or router uses, in the
        Northbound DB: create the lab's provider switch holding it, then
        look again; when two labs took the same one, the smaller owner keeps it."""
        if not self.topo.provider:
            return
        names, switch = self.names, self.topo.provider.switch
        size = ipaddress.ip_network(self.topo.switch(switch).subnet).prefixlen
        candidates = list(PROVIDER_POOL.subnets(new_prefix=size))
        start = int(self.record.data["tag"], 16) % len(candidates)
        nb = self.nb_handle()
        for subnet in candidates[start:] + candidates[:start]:
            if self._taken(nb, subnet):
                continue
            nb.api.ls_add(names.nb(switch), external_ids=logical.owned(
                names, **{SUBNET_KEY: str(subnet)})).execute(check_error=True)
            holders = sorted(ls.external_ids.get(logical.OWNER, "")
                             for ls in nb.rows("Logical_Switch")
                             if ls.external_ids.get(SUBNET_KEY) == str(subnet))
            if holders[0] == names.owner:
                self.record.data["provider_subnet"] = str(subnet)
                self.record.save()
                self.topo = self.topology_of(self.record)
                return
            nb.api.ls_del(names.nb(switch)).execute(check_error=True)
        raise LabError(f"fake-multinode: no free /{size} left in {PROVIDER_POOL}")

    @staticmethod
    def _taken(nb: Northbound, subnet) -> bool:
        for ls in nb.rows("Logical_Switch"):
            held = ls.external_ids.get(SUBNET_KEY)
            if held and ipaddress.ip_network(held).overlaps(subnet):
                return True
        ours = (subnet, ipaddress.ip_network(provider6(str(subnet))))
        for lrp in nb.rows("Logical_Router_Port"):
            for net in lrp.networks:
                iface = ipaddress.ip_interface(net)
                if any(iface.version == s.version and iface.network.overlaps(s) for s in ours):
                    return True
        return False

    def nb_handle(self) -> Northbound:
        if not hasattr(self, "_nb"):
            self._nb = Northbound(self.nb_remote(), where=self.central)
        return self._nb

    def build(self, timeout: float) -> None:
        try:
            self.reserve()
            self._make_nodes()
            nb = self.nb_handle()
            logical.create(nb, self.topo, self.names)
            self._wait_ready(nb, timeout)
        finally:
            if hasattr(self, "_nb"):
                self._nb.close()
                del self._nb

    def _by_container(self, nodes: list[str]) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for n in nodes:
            out.setdefault(self._container(n), []).append(n)
        return out

    def _make_nodes(self) -> None:
        """Namespaces in the containers (recorded before they exist), their
        kernel settings, then veths into br-int (VMs) or the provider bridge."""
        topo, data = self.topo, self.record.data
        nodes = [n for n in [c.name for c in topo.chassis] + [v.name for v in topo.vms]
                 if self._has_ns(n)]
        placed = self._by_container(nodes)
        data["namespaces"] = {c: [self._ns(n) for n in ns] for c, ns in placed.items()}
        data["ports"] = {c: [self._port(n) for n in ns] for c, ns in placed.items()}
        self.record.save()

        def make_namespaces(container: str) -> str:
            names = " ".join(shlex.quote(self._ns(n)) for n in placed[container])
            return self.cluster.sh(container, f"for n in {names}; do ip netns add $n; done; "
                                   "readlink -f /var/run/netns").strip()

        dirs = _parallel(make_namespaces, list(placed))
        data["netns_dir"] = dict(zip(placed, dirs))
        # the lab's interfaces leave room for Geneve on the cluster's underlay
        underlay = int(self.cluster.sh(next(iter(placed)), "cat /sys/class/net/eth1/mtu"))
        data["mtu"] = underlay - GENEVE_OVERHEAD
        self.record.save()
        for n in nodes:
            sysctls.apply("vm" if n not in self.containers else "client", self._netns_path(n))
        _parallel(self._make_links, list(placed.items()))
        for n in nodes:
            self._address(n)

    def _make_links(self, item: tuple[str, list[str]]) -> None:
        container, nodes = item
        vsctl, veths = [], []
        for n in nodes:
            port, ns = self._port(n), self._ns(n)
            inner = "eth0" if n not in self.containers else "eth1"
            mtu = self.record.data["mtu"]
            veths.append(f"ip link add {port} mtu {mtu} type veth peer name {inner} mtu {mtu} "
                         f"netns {ns} && ip link set {port} up")
            if n in self.containers:
                bridge = self.record.data["bridges"][n]
                vsctl += ["--", "add-port", bridge, port]
            else:
                vsctl += ["--", "add-port", "br-int", port, "--", "set", "Interface", port,
                          f"external_ids:iface-id={self.names.nb(n)}"]
            vsctl += ["--", "set", "Interface", port,
                      f"external_ids:{logical.OWNER}={self.names.owner}"]
        script = " && ".join(veths + ["ovs-vsctl --timeout=10 " + shlex.join(vsctl)])
        self.cluster.sh(container, script)
        host_ns = f"/proc/{self._pid(container)}/ns/net"
        for n in nodes:
            tx_checksum_off(host_ns, self._port(n))

    def _address(self, node: str) -> None:
        path = self._netns_path(node)
        inner = "eth0" if node not in self.containers else "eth1"
        tx_checksum_off(path, inner)
        with iproute(path) as r:
            r.link("set", index=1, state="up")
            mac = None if node in self.containers else self.topo.vm(node).mac
            links.configure(r, inner, *self.topo.interface(node), mac=mac)

    def _wait_ready(self, nb: Northbound, timeout: float) -> None:
        ports = [self.names.nb(vm.name) for vm in self.topo.vms]
        try:
            nb.wait(lambda: not logical.ports_down(nb, ports), timeout, "ports")
        except TimeoutError:
            port = logical.ports_down(nb, ports)[0]
            raise LabError(f"fake-multinode: port {port} did not come up within {timeout:g} s "
                           f"on {self._container(port[len(self.names.prefix):])}") from None
        try:
            nb.sync(timeout)
        except TimeoutError:
            raise LabError("fake-multinode: the chassis did not install the lab's "
                           f"Northbound rows within {timeout:g} s") from None

    @classmethod
    def destroy(cls, record: Record) -> None:
        data = record.data
        if "host_veths" in data:  # a cluster this run started (or was starting)
            try:
                if data.get("started_from"):
                    stop_cluster(record)
            finally:
                # `ovn_cluster.sh stop` leaves the host ends of its containers'
                # veths: the ones this cluster made (not there before it) go too
                with IPRoute() as ipr:
                    for name in sorted(host_veths() - set(data["host_veths"])):
                        try:
                            ipr.link("del", ifname=name)
                        except NetlinkError:
                            pass  # gone meanwhile
                fmnhost.undo(record)
            return
        if not data.get("centrals"):
            return  # nothing was made yet
        cluster = _recorded(data)
        names = Names.from_record(record.names)
        # Agents first: they hold the namespaces
        paths = [f"/proc/{cluster.pid(c)}/root{data['netns_dir'][c]}/{ns}"
                 for c, nss in data.get("namespaces", {}).items() if c in data.get("netns_dir", {})
                 for ns in nss if _alive(cluster, c)]
        procs.kill_all(procs.pids_in_netns(paths))
        for container, nss in data.get("namespaces", {}).items():
            if not _alive(cluster, container):
                continue
            ports = data["ports"].get(container, [])
            script = "; ".join(
                [f"ip netns del {shlex.quote(ns)} 2>/dev/null" for ns in nss]
                + [f"ovs-vsctl --timeout=10 --if-exists del-port {shlex.quote(p)}" for p in ports]
                + ["true"])
            cluster.sh(container, script)
        cluster.centrals = [c for c in cluster.centrals if _alive(cluster, c)]
        if cluster.centrals:
            nb = Northbound(cluster.db_remote("nb"), where=cluster.central)
            try:
                logical.remove(nb, names)
            finally:
                nb.close()

    # --- what the lab offers ----------------------------------------------
    @property
    def versions(self) -> Versions:
        ovn, ovs = self.record.data["versions"]
        return Versions(Version.parse(ovn), Version.parse(ovs), self.record.data["datapath"])

    @property
    def central(self) -> str:
        return self.cluster.central

    def nb_remote(self) -> str:
        return self.record.data["remotes"]["nb"]

    def sb_remote(self) -> str:
        return self.record.data["remotes"]["sb"]

    def close(self) -> None:
        if self._sb:
            self._sb.close()
            self._sb = None

    def ctl_command(self, which: str) -> list[str]:
        return self.cluster.ctl_argv(which)

    def exec_prefix(self, node: str) -> list[str]:
        prefix = [self.cluster.runtime, "exec", "-i", self._container(node)]
        return prefix + (["ip", "netns", "exec", self._ns(node)] if self._has_ns(node) else [])

    def enter_prefix(self, node: str) -> list[str]:
        return ["nsenter", f"--net={self._netns_path(node)}"]

    def put_file(self, node: str, source: Path, dest: str) -> None:
        _run([self.cluster.runtime, "cp", str(source), f"{self._container(node)}:{dest}"],
             f"{self.cluster.runtime} cp to {self._container(node)}")

    def flush_conntrack(self) -> None:
        """Only the conntrack zones of this lab's ports and routers: other
        users' connections through the same chassis stay."""
        if self._sb is None:
            self._sb = Southbound(self.sb_remote(), where=self.central)
        nb = self.names.nb
        datapaths = {nb(s.name) for s in self.topo.switches} | {nb(r.name) for r in self.topo.routers}
        # zones are named by logical port, or by datapath binding UUID + _dnat/_snat
        ours = {nb(vm.name) for vm in self.topo.vms}
        ours |= {f"{d.uuid}_{nat}" for d in self._sb.rows("Datapath_Binding")
                 if d.external_ids.get("name") in datapaths for nat in ("dnat", "snat")}
        for container in self.chassis_hosts():
            for line in self.appctl(container, "ovn-controller", "ct-zone-list").splitlines():
                name, _, zone = line.partition(" ")
                if name in ours:
                    self.appctl(container, "ovs-vswitchd", "dpctl/flush-conntrack",
                                f"zone={zone.strip()}")

    def settle(self) -> None:
        # drop each chassis's cached datapath flows: the next packets take the new OpenFlow
        _parallel(lambda c: self.appctl(c, "ovs-vswitchd", "revalidator/purge"),
                  self.chassis_hosts())

    def chassis_hosts(self) -> list[str]:
        return sorted(set(self.containers.values()))

    def run(self, host: str, argv: list[str], timeout: float) -> str:
        return _run([self.cluster.runtime, "exec", host, *argv], f"{argv[0]} on {host}",
                    timeout=timeout)

    def appctl(self, host: str, daemon: str, command: str, *args: str) -> str:
        rundir = self.record.data["rundirs"][host][daemon]
        root = f"/proc/{self._pid(host)}/root{rundir}"
        try:
            return unixctl.call(unixctl.pidfile_socket(root, daemon), command, *args)
        except LabError as exc:
            raise LabError(f"fake-multinode: {exc} (on {host})") from None

    def logs(self) -> dict[str, str]:
        rt = self.cluster.runtime
        logs = {f"{c}/northd": f"{rt} exec {c} sh -c 'cat /var/log/ovn/ovn-northd.log'"
                for c in self.cluster.centrals}
        for container in self.chassis_hosts():
            logs[f"{container}/ovn-controller"] = (
                f"{rt} exec {container} sh -c 'cat /var/log/ovn/ovn-controller.log'")
            logs[f"{container}/ovs-vswitchd"] = (
                f"{rt} exec {container} sh -c 'cat /var/log/openvswitch/ovs-vswitchd.log'")
        return logs

    def log_files(self) -> dict[str, str]:
        """Each log of `logs`, as a path on this machine (/proc/PID/root)."""
        files = {f"{c}/northd": f"/proc/{self._pid(c)}/root/var/log/ovn/ovn-northd.log"
                 for c in self.cluster.centrals}
        for container in self.chassis_hosts():
            root = f"/proc/{self._pid(container)}/root"
            files[f"{container}/ovn-controller"] = f"{root}/var/log/ovn/ovn-controller.log"
            files[f"{container}/ovs-vswitchd"] = f"{root}/var/log/openvswitch/ovs-vswitchd.log"
        return files

    def daemon_pids(self) -> dict[str, int | None]:
        result = {}
        for container in self.chassis_hosts():
            # Read through /proc/PID/root (no process per call, it runs before
            # and after every test); a pidfile outlives a killed daemon, so
            # only a live, non-zombie pid in the container's /proc counts.
            root, pid = f"/proc/{self._pid(container)}/root", None
            for rundir in ("/var/run/ovn", "/run/ovn"):
                try:
                    text = Path(f"{root}{rundir}/ovn-controller.pid").read_text().strip()
                    status = Path(f"{root}/proc/{text}/status").read_text()
                except OSError:
                    continue
                if text.isdigit() and "State:\tZ" not in status:
                    pid = int(text)
                break
            result[f"{container}/ovn-controller"] = pid
        return result

    def describe(self) -> list[str]:
        data = self.record.data
        hosts = ", ".join(f"{h} -> {c}" for h, c in self.containers.items())
        return [f"  deployment: ovn-fake-multinode via {data['runtime']}, central "
                f"{self.cluster.central}; hosts: {hosts}",
                f"  owner tag external_ids:{logical.OWNER}={self.names.owner}, names "
                f"{self.names.prefix}*",
                f"  provider network {data.get('network_name')}: "
                f"{data.get('provider_subnet', 'none')}",
                f"  MTU: {data.get('mtu')} on the lab's networks (VMs, provider hosts): the "
                f"underlay's (eth1) less {GENEVE_OVERHEAD} for Geneve",
                f"  namespaces in containers: {data.get('namespaces')}"]


def _recorded(data: dict) -> Cluster:
    """The cluster as a lab's record names it (its hosts come from the record)."""
    return Cluster(data["runtime"], data["centrals"], [], [])


def _alive(cluster: Cluster, container: str) -> bool:
    try:
        cluster.pid(container)
        return True
    except LabError:
        return False


# --- spin-up mode: a cluster started from the user's checkout ---------------

def images() -> list[str]:
    """Every image the cluster would use, each once, in the variables' order."""
    return list(dict.fromkeys(os.environ.get(v) or DEFAULT_IMAGE for v in IMAGE_VARS))


def check_checkout(spec: LabSpec) -> str:
    """The checkout has ovn_cluster.sh and its images are built; returns the runtime."""
    directory = spec.fmn_dir
    if not (Path(directory) / "ovn_cluster.sh").is_file():
        raise LabError(f"--ovn-fmn-dir {directory} is not an ovn-fake-multinode checkout "
                       "(no ovn_cluster.sh)")
    runtime = runtime_of(spec)
    unbuilt = [image for image in images()
               if subprocess.run([runtime, "image", "inspect", image],
                                 capture_output=True).returncode != 0]
    if unbuilt:
        raise LabError(f"--ovn-fmn-dir {directory}: image{'s' * (len(unbuilt) > 1)} "
                       f"{', '.join(unbuilt)} {'are' if len(unbuilt) > 1 else 'is'} not built "
                       f"(run `./ovn_cluster.sh build` there first)")
    return runtime


def cluster_env(record: Record) -> dict:
    return dict(fmnhost.environment(record), RUNC_CMD=record.data["runtime"])


def start_cluster(record: Record, spec: LabSpec) -> bool:
    """Start a cluster from `spec.fmn_dir` unless one runs; True if started.
    The host is checked first (and prepared, if asked).  The record (owned
    by the caller) makes a later sweep stop the cluster and undo the host's
    preparation."""
    runtime = check_checkout(spec)
    if Cluster.find(runtime) is not None:
        return False
    record.data = {"runtime": runtime, "host_veths": sorted(host_veths())}
    record.save()
    fmnhost.check_runtime(runtime, images()[0])
    fmnhost.prepare(record, spec.prepare_host)
    record.data["started_from"] = os.path.abspath(spec.fmn_dir)
    record.save()
    started = time.monotonic()
    result = subprocess.run(["./ovn_cluster.sh", "start"], cwd=spec.fmn_dir,
                            env=cluster_env(record), capture_output=True, text=True)
    if result.returncode != 0:
        raise LabError(f"fake-multinode: `ovn_cluster.sh start` in {spec.fmn_dir} failed "
                       f"after {time.monotonic() - started:.0f} s: "
                       f"{last_line(result.stderr or result.stdout)}")
    cluster = Cluster.find(runtime)
    if cluster is None:
        raise LabError(f"fake-multinode: `ovn_cluster.sh start` in {spec.fmn_dir} "
                       "left no ovn-central* container running")
    fit_userspace(cluster)
    _wait_registered(cluster, 60)
    return True


def fit_userspace(cluster: Cluster) -> None:
    """What a cluster started here needs on the userspace (netdev)
    datapath, as on a machine without the openvswitch module: no TX
    checksum offload on the container links (the datapath leaves checksums
    to a NIC that is not there), and each chassis's underlay address on a
    netdev bridge holding eth1 (userspace geneve routes through OVS).
    Nothing is done on the kernel datapath or where it is already so."""
    for container in cluster.centrals + cluster.hosts:
        path = f"/proc/{cluster.pid(container)}/ns/net"
        for ifname in ("eth1", "eth2"):
            try:
                tx_checksum_off(path, ifname)
            except OSError:
                pass  # the central has no eth2
    for container in cluster.hosts:
        cluster.sh(container, (
            '[ "$(ovs-vsctl get Bridge br-int datapath_type)" = netdev ] || exit 0; '
            "ovs-vsctl br-exists br-phy && exit 0; "
            "cidr=$(ip -o -4 addr show dev eth1 | awk '{print $4}'); "
            "ovs-vsctl --timeout=10 add-br br-phy -- set Bridge br-phy datapath_type=netdev "
            "-- add-port br-phy eth1 && ip addr del $cidr dev eth1 && "
            "ip addr add $cidr dev br-phy && ip link set br-phy up"))


def _wait_registered(cluster: Cluster, timeout: float) -> None:
    expected = {cluster.node(c).system_id for c in cluster.hosts}
    sb = Southbound(cluster.db_remote("sb"), where=cluster.central)
    try:
        sb.wait(lambda: sb.chassis_names() >= expected, timeout, "chassis")
    except TimeoutError:
        missing = sorted(expected - sb.chassis_names())
        raise LabError(f"fake-multinode: chassis {', '.join(missing)} did not register "
                       f"within {timeout:g} s of `ovn_cluster.sh start`") from None
    finally:
        sb.close()


# ovn-fake-multinode's host end of a container's veth: 13 hex digits, "_l"
HOST_VETH = re.compile(r"^[0-9a-f]{13}_l$")


def host_veths() -> set[str]:
    with IPRoute() as ipr:
        return {link.get("IFLA_IFNAME") for link in ipr.get_links()
                if HOST_VETH.match(link.get("IFLA_IFNAME") or "")}


def stop_cluster(record: Record) -> None:
    directory = record.data["started_from"]
    result = subprocess.run(["./ovn_cluster.sh", "stop"], cwd=directory,
                            env=cluster_env(record), capture_output=True, text=True)
    if result.returncode != 0:
        raise LabError(f"fake-multinode: `ovn_cluster.sh stop` in {directory} failed: "
                       f"{last_line(result.stderr or result.stdout)}")
