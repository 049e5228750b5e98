"""The lab is hermetic: no verdict depends on the host's network settings.

The conformance tests most exposed to the host (placement and source IP; all
but the distribution tests in the state that combines the others) run in a
subprocess while the host is put, for the length of one test, into a state
CI machines are found in: forwarding on (IPv4 and IPv6),
`net.core.devconf_inherit_init_net` 1 and 2, strict reverse-path filtering,
IPv6 off, the suite started from a container-like namespace whose settings
are the opposite of the lab's (`devconf_inherit_init_net` 3), the
distribution's OVS running with the environment pointing OVS/OVN tools at
it, a docker-style firewall (FORWARD DROP), br_netfilter loaded.  Each state
is first shown to be in effect (a fresh namespace reads the host's value).

Every host change is saved first and undone exactly afterwards, in reverse
order, also on failure, Ctrl-C or SIGTERM; an undo journal
(/run/ovnlb-hermetic.json) lets the next run undo what a killed run changed,
and a lock serialises runs (the states are host-wide).  The host's own
`net.ipv6.conf.all.disable_ipv6` is never set: that would delete the host's
static IPv6 addresses and routes, which writing the value back does not
restore; `all=1` is set in the namespace the suite starts from instead.

Needs root and the OVN/OVS programs; about two minutes.  `-m hermetic`
selects these tests, `-m "not hermetic"` leaves them out.
"""

from __future__ import annotations

import base64
import fcntl
import glob
import ipaddress
import json
import os
import re
import subprocess
import sys
import warnings
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from pyroute2 import netns

from pytest_ovnlb.engine import procs, sysctls
from pytest_ovnlb.engine.topology import LAB
from pytest_ovnlb.errors import LabError

pytestmark = [pytest.mark.lab, pytest.mark.hermetic]

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CLI = ([str(BIN / "ovnlb-lab")] if (BIN / "ovnlb-lab").exists()
       else [sys.executable, "-m", "pytest_ovnlb.cli"])
JOURNAL = Path("/run/ovnlb-hermetic.json")
LOCK = Path("/run/ovnlb-hermetic.lock")
TAG = "ovnlb-hermetic"
EXPOSED = ("conformance/test_placement.py", "conformance/test_source_ip.py")
# Every conformance file but the distribution tests: their thousands of
# connections take the paths the others take, and would double the time.
BROAD = tuple(sorted(f"conformance/{p.name}" for p in (REPO / "conformance").glob("test_*.py")
                     if p.name != "test_distribution.py"))

# The distribution's OVS, where its tools look by default.
OVS_CTL = "/usr/share/openvswitch/scripts/ovs-ctl"
OVS_RUN = Path("/run/openvswitch")
OVS_ETC = Path("/etc/openvswitch")
SYSTEM_DB = f"unix:{OVS_RUN}/db.sock"
# What a host where OVS/OVN run as services may export: every lab tool must
# ignore it.
SYSTEM_ENV = {"OVS_RUNDIR": str(OVS_RUN), "OVS_DBDIR": str(OVS_ETC),
              "OVS_LOGDIR": "/var/log/openvswitch", "OVN_RUNDIR": "/run/ovn",
              "OVN_DBDIR": "/var/lib/ovn", "OVN_LOGDIR": "/var/log/ovn",
              "OVN_NB_DB": "unix:/run/ovn/ovnnb_db.sock",
              "OVN_SB_DB": "unix:/run/ovn/ovnsb_db.sock"}
INHERIT = "net.core.devconf_inherit_init_net"


def _path(key: str) -> str:
    return "/proc/sys/" + key.replace(".", "/")


def _read(path: str) -> str:
    return Path(path).read_text().strip()


def _write(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def _run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    kwargs.setdefault("timeout", 60)
    return subprocess.run(argv, capture_output=True, text=True, **kwargs)


def _last(result: subprocess.CompletedProcess) -> str:
    return (result.stderr.strip() or result.stdout.strip() or "no output").splitlines()[-1]


def _lab_networks() -> list[str]:
    nets = [s.subnet for s in LAB.switches]
    nets += [f"{c.underlay_ip}/{LAB.underlay_prefix}" for c in LAB.chassis]
    nets = {ipaddress.ip_network(n, strict=False) for n in nets}
    return [str(n) for n in ipaddress.collapse_addresses(nets)]


# --- host states -----------------------------------------------------------------

@dataclass(frozen=True)
class State:
    name: str
    sysctls: dict = field(default_factory=dict)  # host values, in this order
    probe: dict = field(default_factory=dict)  # what a fresh namespace then reads
    # Values of the namespace the suite is started from (a CI job inside a
    # container); with devconf_inherit_init_net=3 new namespaces copy them.
    creator: dict = field(default_factory=dict)
    env: dict = field(default_factory=dict)
    system_ovs: bool = False
    firewall: bool = False
    br_netfilter: bool = False
    suite: tuple = EXPOSED
    workers: int = 0
    xfail: str = ""


FORWARDING = {"net.ipv4.conf.all.forwarding": "1", "net.ipv4.conf.default.forwarding": "1",
              "net.ipv6.conf.all.forwarding": "1", "net.ipv6.conf.default.forwarding": "1"}
BRIDGE_NF = {f"net.bridge.bridge-nf-call-{t}": "1" for t in ("iptables", "ip6tables", "arptables")}
# The opposite of each value the lab's tables hold, where there is one.
HOSTILE = {"0": "1", "1": "0", "1024 65535": "32768 60999",
           "4096 131072 6291456": "4096 65536 1048576", "4096 16384 4194304": "4096 8192 65536"}
# Every conf/all and conf/default value of the VM table turned around:
# forwarding, strict rp_filter, proxy ARP, IPv6 off, ...
CONTAINER = {key: HOSTILE[s.value] for s in sysctls.ROLES["vm"] if "{if}" in s.key
             for key, _ in s.expand() if key.split(".")[3] != "lo"}
IPV6_OFF = {"net.ipv6.conf.all.disable_ipv6": "1", "net.ipv6.conf.default.disable_ipv6": "1"}

STATES = [
    # podman, docker, libvirt, Kubernetes: a router host
    State("forwarding", FORWARDING, {"net.ipv4.ip_forward": "1"}),
    # new namespaces copy IPv4 and IPv6 conf/all+default from the host
    State("inherit-1", {INHERIT: "1", **FORWARDING},
          {"net.ipv4.ip_forward": "1", "net.ipv6.conf.all.forwarding": "1"}),
    # new namespaces start from kernel defaults whatever the host has
    State("inherit-2", {INHERIT: "2", "net.ipv4.conf.all.rp_filter": "1"},
          {"net.ipv4.ip_forward": "0", "net.ipv4.conf.all.rp_filter": "0"}),
    # hardening guides (and systemd's rp_filter=2 on Debian/Ubuntu)
    State("rp-filter", {"net.ipv4.conf.all.rp_filter": "1",
                        "net.ipv4.conf.default.rp_filter": "1"},
          {"net.ipv4.conf.all.rp_filter": "1"}),
    # IPv6 off: the host's default for new interfaces, and all and default
    # where the suite starts (the kernel copies `default.disable_ipv6` into a
    # new namespace from its boot parameter only, `all` from the creator)
    State("ipv6-off", {INHERIT: "3", "net.ipv6.conf.default.disable_ipv6": "1"},
          {"net.ipv6.conf.all.disable_ipv6": "1"}, creator=IPV6_OFF),
    # the suite run from a container whose every setting is the opposite of
    # the lab's, copied into new namespaces (devconf_inherit_init_net=3)
    State("container", {INHERIT: "3"},
          {"net.ipv4.ip_forward": "1", "net.ipv4.conf.all.proxy_arp": "1",
           "net.ipv4.conf.all.rp_filter": "1", "net.ipv6.conf.all.forwarding": "1",
           "net.ipv6.conf.all.disable_ipv6": "1"}, creator=CONTAINER),
    State("system-ovs", system_ovs=True),
    State("firewall", firewall=True),
    State("br-netfilter", BRIDGE_NF, {"net.bridge.bridge-nf-call-iptables": "1"},
          br_netfilter=True),
    # a proxy for the host's own HTTP traffic (here a local one)
    State("http-proxy", env={"http_proxy": "http://127.0.0.1:3128",
                             "HTTP_PROXY": "http://127.0.0.1:3128", "no_proxy": "",
                             "NO_PROXY": ""},
          suite=("conformance/test_stickiness.py",)),
]


def _all_at_once() -> State:
    values, probe, env = {}, {}, {}
    for s in STATES:
        if not s.creator and s.name != "inherit-2":  # one inheritance mode: 1
            values.update(s.sysctls)
            probe.update(s.probe)
        if not s.xfail:
            env.update(s.env)
    values["net.ipv6.conf.default.disable_ipv6"] = "1"
    # kube-proxy in IPVS mode
    values.update({"net.ipv4.conf.all.arp_ignore": "1", "net.ipv4.conf.all.arp_announce": "2"})
    probe.update({"net.ipv4.conf.all.arp_ignore": "1"})
    return State("all-at-once", values, probe, env=env, system_ovs=True, firewall=True,
                 br_netfilter=True, suite=BROAD, workers=2)


ALL = _all_at_once()


# --- changing the host, and undoing it ----------------------------------------

class Host:
    """Host-wide changes; each is journaled before it is made, and `restore`
    undoes them in reverse order."""

    def __init__(self):
        self.undo: list[dict] = []

    def _journal(self, action: dict) -> None:
        self.undo.append(action)
        tmp = JOURNAL.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.undo))
        tmp.rename(JOURNAL)

    def sysctl(self, key: str, value: str) -> None:
        path = _path(key)
        saved = {path: _read(path)}
        all_key = re.fullmatch(r"net\.(ipv[46])\.conf\.all\.(.+)", key)
        if all_key:
            # Writing `all` also rewrites `default` and every interface (and
            # IPv4 forwarding resets accept_redirects): save those too.
            family, knob = all_key.groups()
            for p in glob.glob(f"/proc/sys/net/{family}/conf/*/{knob}"):
                saved[p] = _read(p)
            if (family, knob) == ("ipv4", "forwarding"):
                p = "/proc/sys/net/ipv4/conf/all/accept_redirects"
                saved[p] = _read(p)
        self._journal({"do": "sysctl", "first": path, "values": saved})
        _write(path, value)

    def iptables(self, cmd: str, change: list[str], undo: list[str]) -> None:
        self._journal({"do": "run", "argv": [cmd, "-w", *undo]})
        result = _run([cmd, "-w", *change])
        if result.returncode:
            raise RuntimeError(f"{cmd} {' '.join(change)}: {_last(result)}")

    def firewall(self) -> None:
        """Docker's policy: forwarded traffic dropped; plus rules counting
        every packet from or to a lab address that crosses this namespace."""
        nets = ",".join(_lab_networks())
        for cmd in ("iptables", "ip6tables"):
            policy = _run([cmd, "-w", "-S", "FORWARD"]).stdout.split("\n")[0].split()
            assert policy[:2] == ["-P", "FORWARD"], f"{cmd}: no FORWARD policy: {policy}"
            self.iptables(cmd, ["-P", "FORWARD", "DROP"], ["-P", "FORWARD", policy[2]])
        for chain, where in (("INPUT", "-s"), ("OUTPUT", "-d"), ("FORWARD", "-s"),
                             ("FORWARD", "-d")):
            spec = [chain, where, nets, "-m", "comment", "--comment", TAG]
            self.iptables("iptables", ["-I", *spec], ["-D", *spec])

    def br_netfilter(self) -> str:
        if Path("/proc/sys/net/bridge").is_dir():
            return "present"
        self._journal({"do": "run", "argv": ["modprobe", "-r", "br_netfilter"]})
        result = _run(["modprobe", "br_netfilter"])
        if result.returncode or not Path("/proc/sys/net/bridge").is_dir():
            pytest.skip(f"br_netfilter cannot be loaded here: {_last(result)}")
        return "loaded"

    def system_ovs(self) -> bool:
        """The distribution's OVS answering at its default socket, with a
        br-int of its own.  One already running is used as it is, never
        stopped.  Returns whether it was started here."""
        if _run(["ovs-vsctl", f"--db={SYSTEM_DB}", "--timeout=3", "show"]).returncode == 0:
            return False
        etc = {p.name: base64.b64encode(p.read_bytes()).decode()
               for p in OVS_ETC.iterdir() if p.is_file()} if OVS_ETC.is_dir() else {}
        self._journal({"do": "system-ovs-stop", "etc": etc, "rundir": OVS_RUN.is_dir()})
        result = _run([OVS_CTL, "start", "--system-id=random", "--no-mlockall"])
        if result.returncode:
            pytest.skip(f"the distribution's ovs-ctl cannot start OVS here: {_last(result)}")
        result = _run(["ovs-vsctl", f"--db={SYSTEM_DB}", "--timeout=10", "add-br", "br-int",
                       "--", "set", "Bridge", "br-int", "datapath_type=netdev"])
        assert result.returncode == 0, f"system OVS: add-br br-int: {_last(result)}"
        return True

    def creator_namespace(self, values: dict) -> str:
        """A namespace to start the suite from, holding `values`."""
        name = f"ovnlb-hermetic-host{os.getpid()}"
        self._journal({"do": "netns-remove", "name": name})
        procs.create_netns([name])
        with procs.in_netns(name):
            for key, value in values.items():
                _write(_path(key), value)
        return name

    def restore(self) -> list[str]:
        errors = []
        for action in reversed(self.undo):
            try:
                _undo(action)
            except Exception as exc:  # undo everything else all the same
                errors.append(f"{action['do']}: {exc}")
        self.undo = []
        JOURNAL.unlink(missing_ok=True)
        return errors


def _undo(action: dict) -> None:
    if action["do"] == "sysctl":
        values = dict(action["values"])
        first = action["first"]
        _write(first, values.pop(first))
        for path, value in values.items():
            try:
                if _read(path) != value:
                    _write(path, value)
            except FileNotFoundError:  # that interface is gone
                pass
    elif action["do"] == "run":
        _run(action["argv"])  # undoing what may not have been done: failure is fine
    elif action["do"] == "system-ovs-stop":
        _stop_system_ovs(action)
    elif action["do"] == "netns-remove" and (procs.NETNS_DIR / action["name"]).exists():
        netns.remove(action["name"])


def _stop_system_ovs(action: dict) -> None:
    bridges = set(_run(["ovs-vsctl", f"--db={SYSTEM_DB}", "--timeout=5",
                        "list-br"]).stdout.split())
    if bridges - {"br-int"}:
        warnings.warn(f"the system OVS started for the test now has bridges "
                      f"{sorted(bridges - {'br-int'})}: someone uses it, left running")
        return
    # --cleanup: the netdev datapath's taps go with ovs-vswitchd
    pid = (OVS_RUN / "ovs-vswitchd.pid").read_text().strip() \
        if (OVS_RUN / "ovs-vswitchd.pid").exists() else ""
    _run(["ovs-vsctl", f"--db={SYSTEM_DB}", "--timeout=5", "--if-exists", "del-br", "br-int"])
    if pid:
        _run(["ovs-appctl", "-t", str(OVS_RUN / f"ovs-vswitchd.{pid}.ctl"), "exit", "--cleanup"])
    result = _run([OVS_CTL, "stop"])
    if result.returncode:
        raise RuntimeError(f"ovs-ctl stop: {_last(result)}")
    for p in OVS_ETC.iterdir() if OVS_ETC.is_dir() else ():
        if p.is_file() and p.name not in action["etc"]:
            p.unlink()
    for name, data in action["etc"].items():
        (OVS_ETC / name).write_bytes(base64.b64decode(data))
    if not action["rundir"]:
        for p in OVS_RUN.iterdir():
            p.unlink()
        OVS_RUN.rmdir()


@contextmanager
def _locked():
    LOCK.parent.mkdir(parents=True, exist_ok=True)
    with open(LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@pytest.fixture
def host():
    """Host changes for one test, undone afterwards whatever happens."""
    if os.geteuid() != 0:
        pytest.skip("changes host settings: needs root")
    if not os.path.exists(_path(INHERIT)):  # only the host's namespace has it
        pytest.skip("not in the host's network namespace")
    with _locked():
        if JOURNAL.exists():  # a killed run's changes (its lock is gone with it)
            leftover = Host()
            leftover.undo = json.loads(JOURNAL.read_text())
            leftover.restore()
        changes = Host()
        try:
            with procs.sigterm_as_interrupt():
                yield changes
        finally:
            with procs.deferred_interrupts():  # a second Ctrl-C must not cut this short
                errors = changes.restore()
            assert not errors, "host settings not restored: " + "; ".join(errors)


# --- evidence -------------------------------------------------------------------

def _fresh_namespace_reads(keys, creator: str | None) -> dict:
    """What a namespace created now, as the lab creates them (from
    `creator`, or this namespace), reads."""
    name = f"ovnlb-hermetic-probe{os.getpid()}"
    if creator:
        with procs.in_netns(creator):  # the creating thread starts in there
            procs.create_netns([name])
    else:
        procs.create_netns([name])
    try:
        with procs.in_netns(name):
            return {k: _read(_path(k)) if os.path.exists(_path(k)) else None for k in keys}
    finally:
        netns.remove(name)


def _counted_packets() -> int:
    out = _run(["iptables", "-w", "-v", "-S"]).stdout
    return sum(int(m.group(1)) for line in out.splitlines() if TAG in line
               for m in [re.search(r" -c (\d+) \d+", line)] if m)


LAB_NAMES = ({"br-phy", "br-provider", "eth0", "eth1"} | {c.name for c in LAB.chassis}
             | {v.name for v in LAB.vms})


def _system_ovs_view() -> tuple[set, str]:
    """Interface names and Open_vSwitch external_ids of the system OVS."""
    db = ["ovs-vsctl", f"--db={SYSTEM_DB}", "--timeout=10"]
    names = _run(db + ["--bare", "--columns=name", "list", "Interface"]).stdout.split()
    ids = _run(db + ["get", "Open_vSwitch", ".", "external_ids"]).stdout.strip()
    return set(names), ids


def enter(host: Host, state: State) -> tuple[dict, list[str]]:
    """Put the host into `state`; returns the environment for the suite and
    the prefix that starts it in the creator namespace, if any."""
    env = dict(os.environ, **state.env)
    creator = host.creator_namespace(state.creator) if state.creator else None
    if state.br_netfilter:
        host.br_netfilter()
    for key, value in state.sysctls.items():
        if not os.path.exists(_path(key)):
            pytest.skip(f"this host has no {key}")
        host.sysctl(key, value)
    if state.firewall:
        host.firewall()
    if state.system_ovs:
        host.system_ovs()
        env.update(SYSTEM_ENV)
    if state.probe:
        reads = _fresh_namespace_reads(state.probe, creator)
        assert reads == state.probe, \
            f"host state {state.name} not in effect: a new namespace reads {reads}"
    # nsenter, not `ip netns exec`: a private mount namespace would hide the
    # lab's namespace mounts from everyone else
    return env, ["nsenter", f"--net={procs.NETNS_DIR / creator}", "--"] if creator else []


def _run_suite(state: State, env: dict, prefix: list[str]) -> tuple[int, str]:
    argv = prefix + [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rfE",
            "--ovn-topology=lab", *state.suite]
    if state.workers:
        argv += ["-n", str(state.workers)]
    proc = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        out, _ = proc.communicate(timeout=300)
    except BaseException:
        proc.terminate()  # a terminated run tears its lab down
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        raise
    return proc.returncode, out


def _summary(out: str) -> str:
    """The failed and errored tests, then the first one's report (why)."""
    lines = out.splitlines()
    keep = [line for line in lines if line.startswith(("FAILED", "ERROR", "E  "))][:12]
    first = next((i for i, line in enumerate(lines)
                  if re.match(r"^=+ (ERRORS|FAILURES) =+$", line)), None)
    detail = lines[first:first + 40] if first is not None else []
    return "\n".join(keep + lines[-1:] + ["", "the first of them:"] + detail)


# --- the tests ------------------------------------------------------------------

PARAMS = [pytest.param(s, id=s.name, marks=[pytest.mark.xfail(reason=s.xfail, strict=True)]
                        if s.xfail else []) for s in STATES + [ALL]]


@pytest.mark.parametrize("state", PARAMS)
def test_conformance_verdicts_ignore_the_host(host, state):
    env, prefix = enter(host, state)
    firewall_before = _counted_packets() if state.firewall else 0
    ovs_before = _system_ovs_view() if state.system_ovs else None

    code, out = _run_suite(state, env, prefix)

    assert code == 0, f"with the host in state {state.name}:\n{_summary(out)}"
    if state.firewall:
        crossed = _counted_packets() - firewall_before
        assert crossed == 0, f"{crossed} lab packets crossed the root namespace"
    if state.system_ovs:
        names, ids = _system_ovs_view()
        grabbed = (names - ovs_before[0]) & LAB_NAMES
        assert not grabbed, f"the system OVS got lab interfaces {sorted(grabbed)}"
        leaked = [w for w in ("ovnlb", *(c.name for c in LAB.chassis))
                  if w in ids and w not in ovs_before[1]]
        assert not leaked, f"the system OVS was configured by the lab: {ids}"


def _namespace_mismatches(ns: str, role: str) -> list[str]:
    """Every value of the role's table that `ns` does not read, in conf/all,
    conf/default, lo and every other interface in it."""
    wrong = []
    with procs.in_netns(ns):
        interfaces = {Path(p).name for p in glob.glob("/proc/sys/net/ipv4/conf/*")}
        for setting in sysctls.ROLES[role]:
            keys = [k for k, _ in setting.expand()]
            if "{if}" in setting.key:
                keys += [setting.key.replace("{if}", i) for i in sorted(interfaces)
                         if i not in sysctls.CONF_SCOPES]
            for key in keys:
                if not os.path.exists(_path(key)):
                    if not setting.optional:
                        wrong.append(f"{key} missing")
                    continue
                now = _read(_path(key))
                if now.split() != setting.value.split():
                    wrong.append(f"{key}={now}")
    return wrong


def test_every_lab_namespace_reads_its_role_table(host):
    """A lab started from a container whose every setting is the opposite
    of the lab's: every namespace, and every interface in it, reads its
    role's table."""
    _, prefix = enter(host, next(s for s in STATES if s.name == "container"))
    name = f"hm{os.getpid()}"
    up = _run(prefix + CLI + ["up", "--name", name], timeout=120)
    assert up.returncode == 0, f"ovnlb-lab up: {_last(up)}"
    try:
        roles = {"underlay": "underlay", **{c.name: "chassis" for c in LAB.chassis},
                 **{v.name: "vm" for v in LAB.vms}}
        wrong = {node: _namespace_mismatches(f"ovnlb-{name}-{node}", role)
                 for node, role in roles.items()}
        wrong = {node: w for node, w in wrong.items() if w}
        assert not wrong, f"lab namespaces differ from their tables: {wrong}"
    finally:
        down = _run(CLI + ["down", "--name", name], timeout=120)
        assert down.returncode == 0, f"ovnlb-lab down: {_last(down)}"


# --- the table applied to one namespace (no host change) --------------------------


@pytest.fixture
def namespace():
    name = f"ovnlb-hermetic-ns{os.getpid()}"
    procs.create_netns([name])
    yield name
    netns.remove(name)


def _set_hostile(ns: str, table) -> int:
    """Write the opposite of every table value inside `ns`; returns how many."""
    count = 0
    with procs.in_netns(ns):
        for setting in table:
            for _, path in setting.expand():
                if setting.value in HOSTILE and os.path.exists(path):
                    _write(path, HOSTILE[setting.value])
                    count += 1
    return count


@pytest.mark.parametrize("role", sorted(sysctls.ROLES))
def test_apply_overrides_whatever_the_namespace_inherited(namespace, role):
    """Every value set to its opposite first (forwarding on, IPv6 disabled in
    `all` and `default`, ...); after apply, the namespace, lo and an
    interface created afterwards read the table."""
    table = sysctls.ROLES[role]
    assert _set_hostile(namespace, table) > 0
    assert _namespace_mismatches(namespace, role), "the hostile values did not take"

    sysctls.apply(role, namespace)

    with procs.in_netns(namespace):
        assert _run(["ip", "link", "add", "hm0", "type", "veth", "peer", "name", "hm1"]
                    ).returncode == 0
    assert _namespace_mismatches(namespace, role) == []


def test_apply_takes_a_namespace_file_path(namespace):
    """As for a namespace inside a container: /proc/PID/root/run/netns/NAME."""
    _set_hostile(namespace, sysctls.ROLES["vm"])
    sysctls.apply("vm", f"/proc/{os.getpid()}/root/run/netns/{namespace}")
    assert _namespace_mismatches(namespace, "vm") == []


def test_missing_settings_required_fail_optional_are_skipped(namespace):
    knob = "net.ipv4.conf.{if}.no_such_setting"
    sysctls.apply_table([sysctls.Setting(knob, "0", "why", optional=True)], namespace)
    with pytest.raises(LabError, match=r"net\.ipv4\.conf\.all\.no_such_setting does not "
                                       r"exist on this kernel.*\(why\)"):
        sysctls.apply_table([sysctls.Setting(knob, "0", "why")], namespace, "vm")


def test_unknown_role_is_one_clear_error(namespace):
    with pytest.raises(LabError, match="unknown namespace role 'router'"):
        sysctls.apply("router", namespace)
