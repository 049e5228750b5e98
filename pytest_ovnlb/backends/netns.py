"""The embedded lab: a topology as network namespaces and real OVN/OVS
daemons on this machine, with the userspace (netdev) datapath so that no
openvswitch kernel module is needed.

Layout, for a lab NAME (namespaces are `ovnlb-NAME-<node>`):
- `underlay`: Linux bridges `br-underlay` (geneve between chassis) and
  `br-provider` (the provider network, when the topology has one);
- one namespace per chassis running ovsdb-server, ovs-vswitchd and
  ovn-controller (the central chassis also NB, SB and ovn-northd).  `eth0`
  is the underlay veth, a port of OVS bridge `br-phy` which holds the
  chassis's encap IP (userspace geneve routes through an OVS bridge).
  `eth1` is the provider veth: a port of `br-provider` on the bridging
  chassis (mapped by ovn-bridge-mappings), or holding the host's address;
- one namespace per VM, `eth0` veth peered with `<vm>` on its chassis's br-int.
Every interface lives inside a lab namespace, so deleting the namespaces
leaves nothing behind in the root namespace.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pyroute2 import IPRoute, netns

from pytest_ovnlb.backends import base
from pytest_ovnlb.backends.base import Backend, Daemon, LabSpec, Versions
from pytest_ovnlb.engine import install as install_mod
from pytest_ovnlb.engine import links, logical, procs, sysctls, unixctl
from pytest_ovnlb.engine.install import PROGRAMS, Install
from pytest_ovnlb.engine.links import iproute, last_line, tx_checksum_off
from pytest_ovnlb.engine.ovsdb import Northbound, Southbound, wait_for
from pytest_ovnlb.engine.records import Record
from pytest_ovnlb.engine.topology import Names, Topology
from pytest_ovnlb.errors import LabError

UNDERLAY = "underlay"
CENTRAL_DAEMONS = ("nb", "sb", "northd")
CHASSIS_DAEMONS = ("ovsdb-server", "ovs-vswitchd", "ovn-controller")
# Upgrade steps and what each restarts on a chassis; `all` upgrades the chassis
# first (dpkg configures openvswitch-switch before ovn-host, which needs it),
# then the central, as OVN's rolling upgrade does.
STEPS = {"controllers": ("ovn-controller",), "central": (),
         "ovs": ("ovsdb-server", "ovs-vswitchd")}


# What every ovn-controller logs at start here, whatever goes wrong later:
# no representor plug provider on a machine without hardware offload.
HARMLESS = ("vif_plug_provider: failed to initialize",)


def namespaces(record: Record, topo: Topology) -> list[str]:
    return [record.namespace(n) for n in [UNDERLAY] + topo.nodes]


def daemon_keys(topo: Topology) -> list[str]:
    """Every daemon of a lab, in the order it starts them."""
    return ([f"central/{d}" for d in CENTRAL_DAEMONS]
            + [f"{c.name}/{d}" for c in topo.chassis for d in CHASSIS_DAEMONS])


def installs(spec: LabSpec) -> dict[str, Install]:
    """The installations the central and the chassis run from: --ovn-root
    (else $OVNLB_OVN_ROOT, else PATH) unless one of their own is given."""
    default = spec.ovn_root or os.environ.get("OVNLB_OVN_ROOT") or None
    return {"central": install_mod.at(spec.central_root or default),
            "chassis": install_mod.at(spec.chassis_root or default)}


class NetnsBackend(Backend):
    """Builds and removes one lab; the lab owns everything, the whole
    Northbound included."""

    name = "netns"
    logs_are_ours = True

    def __init__(self, record: Record, topo: Topology):
        super().__init__(record, topo)
        self.rundir = record.rundir
        self.ns = record.namespace
        self.underlay_macs: dict[str, str] = {}  # chassis -> MAC of its br-phy

    @classmethod
    def preflight(cls, spec: LabSpec) -> str:
        procs.require_root("the embedded lab (network namespaces, OVS daemons)")
        found = installs(spec)
        if found["central"] == found["chassis"]:
            return found["central"].summary
        return "; ".join(f"{part}: {ins.summary}" for part, ins in found.items())

    @classmethod
    def prepare(cls, record: Record, spec: LabSpec) -> None:
        found = installs(spec)
        topo = cls.topology_of(record)
        record.ovn_root = found["central"].root
        record.roots = {key: found["central" if key.startswith("central/") else "chassis"].root
                        for key in daemon_keys(topo)}
        record.namespaces = namespaces(record, topo)
        record.names = Names(owner=record.name).to_record()

    def install_of(self, key: str) -> Install:
        """The installation daemon `key` runs from (the record says)."""
        return install_mod.at(self.record.roots.get(key, self.record.ovn_root))

    @property
    def install(self) -> Install:
        """The central's installation: the lab's ovn-nbctl/ovn-sbctl."""
        return self.install_of("central/northd")

    @classmethod
    def destroy(cls, record: Record) -> None:
        survivors = procs.kill_all(procs.pids_in_netns(record.namespaces)
                                   | procs.pids_from_pidfiles(record.rundir))
        if survivors:
            raise LabError(f"lab {record.name}: processes {sorted(survivors)} survive SIGKILL")
        for ns in record.namespaces:
            try:
                netns.remove(ns)
            except OSError:  # already gone (another sweeper got there first)
                pass

    @property
    def versions(self) -> Versions:
        daemons = {}
        for key in self.logs():
            ins, program = self.install_of(key), base.program_of(key)
            version = ins.ovn_version if program.startswith("ovn-") else ins.ovs_version
            daemons[key] = Daemon(program, version, ins.root)
        return Versions.of(daemons, "netdev")

    def ctl_command(self, which: str) -> list[str]:
        remote = self.nb_remote() if which == "nb" else self.sb_remote()
        return self.install.command(f"ovn-{which}ctl", f"--db={remote}")

    def enter_prefix(self, node: str) -> list[str]:
        return ["ip", "netns", "exec", self.ns(node)]

    def put_file(self, node: str, source: Path, dest: str) -> None:
        shutil.copyfile(source, dest)  # nodes share this machine's filesystem

    def daemon_pids(self) -> dict[str, int | None]:
        pids = {key: self._pidfile(log) for key, log in self.logs().items()}
        return {key: pid if procs.alive(pid) else None for key, pid in pids.items()}

    @staticmethod
    def _pidfile(log: str) -> int | None:
        """The pid the daemon logging to `log` wrote when it started (it may
        be gone): its pidfile sits beside its log."""
        try:
            return int(Path(log).with_suffix(".pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def log_files(self) -> dict[str, str]:
        return self.logs()

    def chassis_hosts(self) -> list[str]:
        return [c.name for c in self.topo.chassis]

    def run(self, host: str, argv: list[str], timeout: float) -> str:
        try:
            ins = self.install_of(f"{host}/ovs-vswitchd")  # the chassis's own tools
            return self._run(host, ins.command(*argv), timeout=timeout)
        except subprocess.TimeoutExpired:
            raise LabError(f"{argv[0]} on {host}: no answer within {timeout:g} s") from None

    def daemon_exit(self, key: str, pid: int) -> str:
        """The lab's builder is the daemons' subreaper: a dead one is its
        zombie child, whose status waitpid() tells (and reaps)."""
        reaped, deadline = 0, time.monotonic() + 1.0
        while not reaped and time.monotonic() < deadline:  # its last threads may linger
            try:
                reaped, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                break
            time.sleep(0.01)
        if reaped == pid:
            if os.WIFSIGNALED(status):
                sig = os.WTERMSIG(status)
                core = ", core dumped" if os.WCOREDUMP(status) else ""
                return f"killed by signal {sig} ({signal.Signals(sig).name}){core}"
            return f"exited with status {os.WEXITSTATUS(status)}"
        return "exit status unknown (not a child of this process)"

    def describe(self) -> list[str]:
        roots: dict[str | None, list[str]] = {}
        for key in self.logs():
            roots.setdefault(self.install_of(key).root, []).append(key)
        if len(roots) == 1:
            root = next(iter(roots))
            programs = f"the OVN/OVS{f' in {root}' if root else ''} on this machine"
        else:
            programs = "; ".join(f"{root or '/'} for {', '.join(keys)}"
                                 for root, keys in roots.items())
        return [f"  programs: {programs}",
                f"  run directory (databases, sockets, logs): {self.rundir}",
                f"  MTU: {self.topo.mtu} on the lab's networks (VMs, provider network), "
                f"{self.topo.underlay_mtu} on the underlay that carries their Geneve tunnels",
                "  in `ovnlb-lab exec`, ovs-vsctl/ovs-appctl/ovs-ofctl reach the node's own "
                "daemons and ovn-nbctl/ovn-sbctl the lab's databases",
                f"  namespaces: {', '.join(self.record.namespaces)}"]

    # --- paths ------------------------------------------------------------
    def central_dir(self) -> Path:
        return self.rundir / "central"

    def nb_remote(self) -> str:
        return f"unix:{self.central_dir() / 'nb.sock'}"

    def sb_remote(self) -> str:
        return f"unix:{self.central_dir() / 'sb.sock'}"

    def chassis_dir(self, chassis: str) -> Path:
        return self.rundir / chassis

    def logs(self) -> dict[str, str]:
        logs = {}
        for key in daemon_keys(self.topo):
            node, daemon = key.split("/")
            home = self.central_dir() if node == "central" else self.chassis_dir(node)
            logs[key] = str(home / f"{daemon}.log")
        return logs

    def exec_prefix(self, node: str) -> list[str]:
        """Enter the node, with the environment that points OVS/OVN tools at
        this lab: `ovs-vsctl show`, `ovs-appctl`, `ovs-ofctl dump-flows
        br-int` reach the node's own daemons, `ovn-nbctl`/`ovn-sbctl` the
        lab's databases."""
        env = {"OVN_NB_DB": self.nb_remote(), "OVN_SB_DB": self.sb_remote()}
        if node in {c.name for c in self.topo.chassis}:
            env.update(self._env(self.chassis_dir(node)))
        return ["ip", "netns", "exec", self.ns(node), "env",
                *[f"{k}={v}" for k, v in env.items()]]

    def flush_conntrack(self) -> None:
        """Forget every connection the userspace datapaths track."""
        for c in self.topo.chassis:
            self.appctl(c.name, "ovs-vswitchd", "dpctl/flush-conntrack")

    # --- running programs -------------------------------------------------
    def _run(self, node: str, argv: list[str], env: dict | None = None,
             timeout: float = 30) -> str:
        cmd = self.exec_prefix(node) + argv
        full_env = dict(os.environ, **(env or {}))
        result = subprocess.run(cmd, env=full_env, capture_output=True, text=True,
                                timeout=timeout)
        if result.returncode != 0:
            err = last_line(result.stderr)
            program = next((Path(a).name for a in argv if Path(a).name in PROGRAMS),
                           Path(argv[0]).name)
            raise LabError(f"{program} failed on {node}: {err}")
        return result.stdout

    @staticmethod
    def _daemon_args(directory: Path, name: str) -> list[str]:
        return ["--detach", "--no-chdir", f"--pidfile={directory / name}.pid",
                f"--log-file={directory / name}.log", f"--unixctl={directory / name}.ctl"]

    # A chassis's daemons keep the default names in their own directory
    # (OVS_RUNDIR etc.), where the OVS tools look for them.
    CHASSIS_DAEMON_ARGS = ["--detach", "--no-chdir", "--pidfile", "--log-file"]

    @staticmethod
    def _env(directory: Path) -> dict:
        d = str(directory)
        return {k: d for k in ("OVS_RUNDIR", "OVS_LOGDIR", "OVS_DBDIR",
                               "OVN_RUNDIR", "OVN_LOGDIR", "OVN_DBDIR")}

    # --- build --------------------------------------------------------------
    def build(self, timeout: float) -> None:
        """Bring the lab up; returns when every chassis is registered, every
        VM port is up and every chassis has installed the NB contents."""
        # Ctrl-C is held over the quick, bounded steps that must not be cut
        # in half (see procs.deferred_interrupts) and acted on right after.
        with procs.deferred_interrupts():
            procs.create_netns(self.record.namespaces)
            self._wire()
        pool = ThreadPoolExecutor(max_workers=len(self.topo.chassis) + 1)
        try:
            with procs.deferred_interrupts():  # submit() starts the worker threads
                central = pool.submit(self._start_central)
                chassis = [pool.submit(self._start_chassis, c.name) for c in self.topo.chassis]
            central.result()
            nb = Northbound(self.nb_remote(), where=self.central)
            sb = Southbound(self.sb_remote(), where=self.central)
            try:
                logical.create(nb, self.topo, self.names)
                # An ovn-controller that finds the Southbound DB without its
                # SB_Global row dies (a null pointer in pflow_output_get_debug(),
                # every release to 26.03 and main): ovn-northd writes it first.
                try:
                    sb.wait(lambda: sb.rows("SB_Global"), timeout, "SB_Global")
                except TimeoutError:
                    raise LabError(f"ovn-northd did not initialise the Southbound DB within "
                                   f"{timeout:g} s; its log was "
                                   f"{self.central_dir() / 'northd.log'}") from None
                for job in chassis:
                    job.result()
                with procs.deferred_interrupts():
                    controllers = [pool.submit(self._launch, f"{c.name}/ovn-controller")
                                   for c in self.topo.chassis]
                for job in controllers:
                    job.result()
                self._wait_ready(nb, sb, timeout)
            finally:
                nb.close()
                sb.close()
        finally:
            # Every daemon launch has finished before the caller cleans up.
            with procs.deferred_interrupts():
                pool.shutdown(wait=True)
        self._set_tunnel_neighbours()

    def _set_tunnel_neighbours(self) -> None:
        """Userspace geneve drops packets to a chassis whose underlay MAC it
        has not learned yet (it learns from ARP replies it sees on br-phy,
        which the first connections of a test would pay for).  Every br-phy
        MAC is known once the bridges exist, so tell each chassis directly."""
        for c in self.topo.chassis:
            for peer in self.topo.chassis:
                if peer is not c:
                    self.appctl(c.name, "ovs-vswitchd", "tnl/neigh/set", "br-phy",
                                peer.underlay_ip, self._underlay_mac(peer.name))

    def _underlay_mac(self, name: str) -> str:
        if name not in self.underlay_macs:  # a lab this process did not build
            with iproute(self.ns(name)) as r:
                self.underlay_macs[name] = r.get_links(ifname="br-phy")[0].get("IFLA_ADDRESS")
        return self.underlay_macs[name]

    def settle(self) -> None:
        # drop each chassis's cached datapath flows: the next packets take the new OpenFlow
        with ThreadPoolExecutor(max_workers=len(self.topo.chassis)) as pool:
            list(pool.map(lambda c: self.appctl(c, "ovs-vswitchd", "revalidator/purge"),
                          self.chassis_hosts()))

    def appctl(self, host: str, daemon: str, command: str, *args: str) -> str:
        d = self.chassis_dir(host)
        try:
            return unixctl.call(unixctl.pidfile_socket(d, daemon), command, *args)
        except LabError as exc:
            raise LabError(f"{exc} (on {host}; log: {d / daemon}.log)") from None

    def _wire(self) -> None:
        topo, ns = self.topo, self.ns
        underlay_ns = ns(UNDERLAY)
        # Each namespace's kernel settings, whatever the host's, before any
        # interface exists in it (interfaces copy conf/default): engine/sysctls.py
        sysctls.apply("underlay", underlay_ns)
        for role, nodes in (("chassis", topo.chassis), ("vm", topo.vms)):
            for node in nodes:
                sysctls.apply(role, ns(node.name))
        with iproute(underlay_ns) as u:
            u.link("set", index=1, state="up")
            for bridge in ("br-underlay",) + (("br-provider",) if topo.provider else ()):
                u.link("add", ifname=bridge, kind="bridge")
                u.link("set", index=u.link_lookup(ifname=bridge)[0], state="up")
        provider_hosts = dict(topo.provider.hosts) if topo.provider else {}
        for i, chassis in enumerate(topo.chassis):
            host = ns(chassis.name)
            wires = [("eth0", f"u{i}", "br-underlay", topo.underlay_mtu)]
            if chassis.name in provider_hosts:
                wires.append(("eth1", f"p{i}", "br-provider", topo.mtu))
            with iproute(host) as r:
                r.link("set", index=1, state="up")
                for inner, outer, bridge, mtu in wires:
                    self._veth(r, host, inner, underlay_ns, outer, mtu, master=bridge)
                if chassis.name in provider_hosts and chassis.name != topo.provider.bridge_chassis:
                    links.configure(r, "eth1", topo.interface(chassis.name)[0])
                for vm in topo.vms:
                    if vm.chassis == chassis.name:
                        self._wire_vm(r, host, vm)

    def _veth(self, r: IPRoute, ns: str, name: str, peer_ns: str, peer: str, mtu: int,
              master: str | None = None) -> None:
        r.link("add", ifname=name, kind="veth", mtu=mtu,
               peer={"ifname": peer, "net_ns_fd": peer_ns, "mtu": mtu})
        r.link("set", index=r.link_lookup(ifname=name)[0], state="up")
        tx_checksum_off(ns, name)
        tx_checksum_off(peer_ns, peer)
        with iproute(peer_ns) as p:
            index = p.link_lookup(ifname=peer)[0]
            if master:
                p.link("set", index=index, master=p.link_lookup(ifname=master)[0])
            p.link("set", index=index, state="up")

    def _wire_vm(self, r: IPRoute, host: str, vm) -> None:
        vm_ns = self.ns(vm.name)
        self._veth(r, host, vm.name, vm_ns, "eth0", self.topo.mtu)
        with iproute(vm_ns) as v:
            v.link("set", index=1, state="up")
            links.configure(v, "eth0", *self.topo.interface(vm.name), mac=vm.mac)

    def _start_central(self) -> None:
        d, node, ins = self.central_dir(), self.topo.central.name, self.install
        d.mkdir()
        for db in ("nb", "sb"):
            self._run(node, ins.command("ovsdb-tool", "create", str(d / f"{db}.db"),
                                        ins.schemas[db]))
            self._launch(f"central/{db}")
        self._launch("central/northd")

    def _start_chassis(self, name: str) -> None:
        d, ins, topo = self.chassis_dir(name), self.install_of(f"{name}/ovsdb-server"), self.topo
        d.mkdir()
        chassis = next(c for c in topo.chassis if c.name == name)
        self._run(name, ins.command("ovsdb-tool", "create", str(d / "conf.db"),
                                    ins.schemas["vswitch"]))
        self._launch(f"{name}/ovsdb-server")
        bridged = topo.provider and topo.provider.bridge_chassis == name
        # OVN turns the Southbound inactivity probe off on a unix socket, where
        # a deployment's TCP/SSL remote probes every 5 s.  Without it an idle
        # ovn-controller of 25.03.0 never wakes, and OVN without commit
        # d305d9fade (fixed in 24.03.8, 25.03.3, 25.09.2, 26.03.0) can lose
        # pinctrl's wake-up: a Service_Monitor status stays unwritten.
        ids = {"system-id": name, "hostname": name, "ovn-remote": self.sb_remote(),
               "ovn-remote-probe-interval": "5000",
               "ovn-encap-type": "geneve", "ovn-encap-ip": chassis.underlay_ip,
               "ovn-bridge-datapath-type": "netdev"}
        if bridged:
            ids["ovn-bridge-mappings"] = f"{topo.provider.network_name}:br-provider"
        vsctl = ["--no-wait", "--", "init",
                 "--", "add-br", "br-int", "--", "set", "Bridge", "br-int",
                 "datapath_type=netdev", "fail-mode=secure",
                 "other-config:disable-in-band=true",
                 "--", "add-br", "br-phy", "--", "set", "Bridge", "br-phy",
                 "datapath_type=netdev", "--", "add-port", "br-phy", "eth0",
                 "--", "set", "Open_vSwitch", ".",
                 *[f"external_ids:{k}={v}" for k, v in ids.items()]]
        if bridged:
            vsctl += ["--", "add-br", "br-provider", "--", "set", "Bridge", "br-provider",
                      "datapath_type=netdev", "--", "add-port", "br-provider", "eth1"]
        for vm in topo.vms:
            if vm.chassis == name:
                vsctl += ["--", "add-port", "br-int", vm.name, "--", "set", "Interface",
                          vm.name, f"external_ids:iface-id={vm.name}"]
        self._vsctl(name, *vsctl)
        self._launch(f"{name}/ovs-vswitchd")

    def _launch(self, key: str) -> None:
        """Start daemon `key` (as in `logs`) on the files the lab has made
        for it: at build, and again when it died.  It runs from a directory
        of its own, where a crash leaves its core."""
        node, daemon = key.split("/")
        ins = self.install_of(key)
        if node == "central":
            d, where, env = self.central_dir(), self.topo.central.name, None
            if daemon == "northd":
                argv = ["ovn-northd", *self._daemon_args(d, daemon),
                        f"--ovnnb-db={self.nb_remote()}", f"--ovnsb-db={self.sb_remote()}"]
            else:
                argv = ["ovsdb-server", *self._daemon_args(d, daemon),
                        f"--remote=punix:{d / daemon}.sock", str(d / f"{daemon}.db")]
        else:
            d, where, env = self.chassis_dir(node), node, self._env(self.chassis_dir(node))
            argv = [daemon, *self.CHASSIS_DAEMON_ARGS,
                    *([f"--remote=punix:{d / 'db.sock'}", str(d / "conf.db")]
                      if daemon == "ovsdb-server" else [f"unix:{d / 'db.sock'}"])]
        cores = self.core_dir(key)
        cores.mkdir(parents=True, exist_ok=True)
        self._run(where, ins.command(*argv, cwd=str(cores)), env)
        if daemon == "ovs-vswitchd":
            self._address_bridges(node)

    def _address_bridges(self, name: str) -> None:
        """The addresses of a chassis's OVS internal ports, which
        ovs-vswitchd makes anew each time it starts."""
        topo = self.topo
        chassis = next(c for c in topo.chassis if c.name == name)
        with iproute(self.ns(name)) as r:
            wait_for(lambda: r.link_lookup(ifname="br-phy"), 10,
                     f"ovs-vswitchd on {name} did not create br-phy")
            self.underlay_macs[name] = r.get_links(ifname="br-phy")[0].get("IFLA_ADDRESS")
            links.configure(r, "br-phy", [f"{chassis.underlay_ip}/{topo.underlay_prefix}"])
            if topo.provider and topo.provider.bridge_chassis == name:
                wait_for(lambda: r.link_lookup(ifname="br-provider"), 10,
                         f"ovs-vswitchd on {name} did not create br-provider")
                links.configure(r, "br-provider", topo.interface(name)[0])

    # --- daemons that died ------------------------------------------------
    def core_dir(self, key: str) -> Path:
        node, daemon = key.split("/")
        home = self.central_dir() if node == "central" else self.chassis_dir(node)
        return home / "cores" / daemon

    def core_file(self, key: str) -> Path | None:
        cores = sorted(self.core_dir(key).glob("core*"), key=lambda p: p.stat().st_mtime)
        return cores[-1] if cores else None

    def program(self, key: str) -> tuple[str, str | None]:
        ins = self.install_of(key)
        return ins.host_path(base.program_of(key)), ins.root

    def restart(self, keys: list[str]) -> None:
        """Start the daemons `keys` again, in the order the lab started them
        (a daemon reconnects to a restarted database by itself)."""
        for key in [k for k in self.logs() if k in keys]:
            self._launch(key)
        if any(k.endswith("/ovs-vswitchd") for k in keys):
            self._set_tunnel_neighbours()

    # --- upgrades -----------------------------------------------------------
    def upgrade(self, to: str | None, step: str, chassis: list[str] | None,
                timeout: float, pinned: bool | None = None) -> list[str]:
        """What upgrading the packages to the installation in `to` (None or
        "/": this machine's) restarts for `step`, on `chassis` (default:
        every one; the central step ignores it): each daemon stopped as its
        init script does, its database converted to the new schema, started
        on the new binary; "pin" sets `ovn-match-northd-version=true` on
        each chassis instead.  After each step, waits until every chassis is
        registered and has installed the Northbound's contents; with
        `pinned` (the controllers are pinned to another northd's version,
        and follow no change) only until ovn-northd has.  `pinned=None`:
        whether any chassis is, as the lab stands after the step."""
        if step not in (*STEPS, "pin", "all"):
            raise LabError(f"unknown upgrade step {step!r}: one of "
                           f"{', '.join(STEPS)}, pin, all")
        hosts = chassis or self.chassis_hosts()
        unknown = [h for h in hosts if h not in self.chassis_hosts()]
        if unknown:
            raise LabError(f"no chassis {unknown[0]!r} in lab {self.record.name} "
                           f"(chassis: {', '.join(self.chassis_hosts())})")
        if step == "pin":
            for host in hosts:
                self._vsctl(host, "set", "Open_vSwitch", ".",
                            "external_ids:ovn-match-northd-version=true")
            return []
        new = install_mod.at(to)
        done: list[str] = []
        for one in ("ovs", "controllers", "central") if step == "all" else (step,):
            if one == "central":
                done += self._upgrade_central(new)
            else:
                for host in hosts:
                    done += self._upgrade_chassis(host, STEPS[one], new)
            self._whole(timeout, self._pinned() if pinned is None else pinned)
        return done

    def _pinned(self) -> bool:
        northd = self.install_of("central/northd").ovn_version
        return any(self.install_of(f"{host}/ovn-controller").ovn_version != northd
                   and "true" in self._vsctl(host, "--if-exists", "get", "Open_vSwitch", ".",
                                             "external_ids:ovn-match-northd-version")
                   for host in self.chassis_hosts())

    def _vsctl(self, host: str, *args: str) -> str:
        ins = self.install_of(f"{host}/ovsdb-server")
        return self._run(host, ins.command(
            "ovs-vsctl", f"--db=unix:{self.chassis_dir(host) / 'db.sock'}", *args))

    def _upgrade_chassis(self, host: str, daemons: tuple[str, ...], new: Install) -> list[str]:
        keys = [f"{host}/{d}" for d in daemons]
        for key in reversed(keys):  # ovs-vswitchd before its database
            # --restart: ovn-controller keeps its chassis and flows, as ovn-ctl restarts it
            self._stop(key, *(["--restart"] if key.endswith("/ovn-controller") else []))
        if "ovsdb-server" in daemons:
            self._convert(host, self.chassis_dir(host) / "conf.db", "vswitch", new)
        self._switch(keys, new)
        self.restart(keys)  # puts back what a new ovs-vswitchd needs, as after a crash
        return keys

    def _upgrade_central(self, new: Install) -> list[str]:
        dbs = ["central/nb", "central/sb"]
        for key in dbs:
            self._stop(key)
        for db in ("nb", "sb"):
            self._convert(self.topo.central.name, self.central_dir() / f"{db}.db", db, new)
        self._switch(dbs, new)
        self.restart(dbs)
        self._stop("central/northd")
        self._switch(["central/northd"], new)
        self.restart(["central/northd"])
        return dbs + ["central/northd"]

    def _stop(self, key: str, *args: str) -> None:
        """Ask daemon `key` to exit (`ovs-appctl -t DAEMON exit`) and wait
        until it has."""
        node, daemon = key.split("/")
        pid = self.daemon_pids()[key]
        if pid is None:
            return  # not running: nothing to stop
        if node == "central":
            unixctl.call(str(self.central_dir() / f"{daemon}.ctl"), "exit", *args)
        else:
            self.appctl(node, daemon, "exit", *args)

        def exited() -> bool:
            try:
                os.waitpid(pid, os.WNOHANG)  # our zombie when this process is its subreaper
            except ChildProcessError:
                pass
            return not procs.alive(pid)

        try:
            wait_for(exited, 10, "")
        except TimeoutError:
            raise LabError(f"{key} (pid {pid}) did not exit within 10 s of `exit`") from None

    def _convert(self, node: str, db: Path, schema: str, new: Install) -> None:
        """Convert database file `db` to `new`'s schema when it needs it, as
        ovn-ctl and ovs-ctl do on start."""
        argv = (str(db), new.schemas[schema])
        if self._run(node, new.command("ovsdb-tool", "needs-conversion", *argv)).strip() == "yes":
            self._run(node, new.command("ovsdb-tool", "convert", *argv))

    def _switch(self, keys: list[str], new: Install) -> None:
        """Record that daemons `keys` run from `new` (a crash restart and a
        sweep read it), before they start."""
        self.record.roots.update({key: new.root for key in keys})
        self.record.save()

    def _whole(self, timeout: float, pinned: bool = False) -> None:
        nb = Northbound(self.nb_remote(), where=self.central)
        sb = Southbound(self.sb_remote(), where=self.central)
        try:
            self._wait_ready(nb, sb, timeout, pinned)
        finally:
            nb.close()
            sb.close()
        self.settle()

    def _wait_ready(self, nb: Northbound, sb: Southbound, timeout: float,
                    pinned: bool = False) -> None:
        deadline = time.monotonic() + timeout
        left = lambda: max(0.0, deadline - time.monotonic())  # noqa: E731
        expected = {c.name for c in self.topo.chassis}
        try:
            sb.wait(lambda: sb.chassis_names() >= expected, left(), "chassis")
        except TimeoutError:
            missing = sorted(expected - sb.chassis_names())
            raise LabError(self._blame(missing[0], "did not register with the Southbound DB"
                                       f" within {timeout:g} s")) from None
        vm_ports = [self.names.nb(vm.name) for vm in self.topo.vms]
        try:
            nb.wait(lambda: not logical.ports_down(nb, vm_ports), left(), "ports")
        except TimeoutError:
            port = logical.ports_down(nb, vm_ports)[0]
            raise LabError(self._blame(self.topo.vm(port).chassis,
                                       f"did not bring up port {port} within {timeout:g} s")) from None
        try:
            nb.sync(left(), chassis=not pinned)  # pinned controllers follow no change
        except TimeoutError:
            lagging = self._lagging(sb, nb)
            raise LabError(self._blame(lagging, "did not install the Northbound "
                                       f"contents within {timeout:g} s")) from None

    @staticmethod
    def _lagging(sb: Southbound, nb: Northbound) -> str:
        target = nb.rows("NB_Global")[0].nb_cfg
        behind = [c.name for c in sb.rows("Chassis_Private") if c.nb_cfg < target]
        return behind[0] if behind else "some chassis"

    def _blame(self, chassis: str, what: str) -> str:
        """One line: the chassis, what it failed to do, and what its
        ovn-controller last complained about (the failed lab's run directory,
        log included, is removed right after)."""
        log = self.chassis_dir(chassis) / "ovn-controller.log"
        try:
            lines = log.read_text(errors="replace").splitlines()
        except OSError:
            lines = []
        complaints = [line.split("|") for line in lines
                      if ("failed" in line or any(f"|{level}|" in line
                                                  for level in ("WARN", "ERR", "EMER")))
                      and not any(noise in line for noise in HARMLESS)]
        last = (f"; it last logged: {complaints[-1][2]}: {'|'.join(complaints[-1][4:])}"
                if complaints and len(complaints[-1]) >= 5 else "")
        key = f"{chassis}/ovn-controller"
        pid = self._pidfile(str(log))
        died = (f"; its ovn-controller (pid {pid}) died: {self.daemon_exit(key, pid)}"
                if pid and not procs.alive(pid) else "")
        return f"chassis {chassis} {what}{died}; its log was {log}{last}"
