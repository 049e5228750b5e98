"""The embedded lab engine, through `ovnlb-lab` as a person uses it.

Every test builds labs with names of its own (`tl<pid>_<n>`), so the user's
labs are left alone (the plain `sweep` some tests run removes only labs whose
owner process is gone, as any `up` does; `sweep --all` runs only under a run
directory base of the test's own).  Each test proves that what it built is
gone again: no namespace `ovnlb-<name>-*`, no process whose command line
mentions the lab's run directory, no run directory.  Needs root and the
OVN/OVS programs.
"""

from __future__ import annotations

import glob
import itertools
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_ovnlb.engine import install, records, topology
from pytest_ovnlb.engine.procs import NETNS_DIR

pytestmark = pytest.mark.lab

BIN = Path(sys.executable).parent
CLI = ([str(BIN / "ovnlb-lab")] if (BIN / "ovnlb-lab").exists()
       else [sys.executable, "-m", "pytest_ovnlb.cli"])
_counter = itertools.count()


# --- helpers ---------------------------------------------------------------

def _base(base: str | Path | None) -> Path:
    return Path(base) if base else records.base_dir()


def _lab_pids(name: str, base: str | Path | None = None) -> dict[int, str]:
    """Processes whose command line mentions the lab's run directory."""
    rundir = re.compile(re.escape(str(_base(base) / name)).encode() + rb"(?=/|\x00|$)")
    found = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{entry.name}/cmdline").read_bytes()
        except OSError:
            continue
        if rundir.search(cmdline):
            found[int(entry.name)] = cmdline.replace(b"\0", b" ").decode(errors="replace")
    return found


def _lab_namespaces(name: str) -> list[str]:
    prefix = f"{records.NS_PREFIX}{name}-"
    try:
        return sorted(n for n in os.listdir(NETNS_DIR) if n.startswith(prefix))
    except FileNotFoundError:
        return []


def leftovers(name: str, base: str | Path | None = None) -> list[str]:
    """Everything a lab called `name` left behind: its namespaces, processes
    mentioning its run directory, the run directory and half-made claims."""
    base = _base(base)
    found = [f"namespace {ns}" for ns in _lab_namespaces(name)]
    found += [f"process {pid}: {cmd.strip()}" for pid, cmd in _lab_pids(name, base).items()]
    if (base / name).exists():
        found.append(f"run directory {base / name}")
    found += [f"claim {p}" for p in glob.glob(str(base / f".claim-{name}-*"))]
    return found


def _force_clean(name: str, base: str | Path | None = None) -> None:
    """Remove what a failed test left, whatever state it is in."""
    env = dict(os.environ, **({"OVNLB_RUN_DIR": str(base)} if base else {}))
    if (_base(base) / name / "lab.json").exists():
        subprocess.run(CLI + ["down", "--name", name], env=env, capture_output=True, timeout=60)
    for pid in _lab_pids(name, base):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for ns in _lab_namespaces(name):
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    shutil.rmtree(_base(base) / name, ignore_errors=True)


def cli(*args: str, env: dict | None = None, timeout: float = 60, **kwargs):
    return subprocess.run(CLI + list(args), capture_output=True, text=True,
                          env=env, timeout=timeout, **kwargs)


def one_line_error(result) -> str:
    """The failed command's stderr, asserted to be exactly one line."""
    assert result.returncode not in (0, None), result
    lines = result.stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{result.stderr}"
    return lines[0]


def up(name: str, topo: str = "single", env: dict | None = None):
    result = cli("up", "--name", name, "--topology", topo, env=env)
    assert result.returncode == 0, result.stderr
    return result


def listed(name: str, env: dict | None = None) -> str:
    """The lab's line in `ovnlb-lab list` ("" if it is not listed)."""
    lines = cli("list", env=env).stdout.splitlines()
    return next((line for line in lines if line.split("\t")[0] == name), "")


def wait_for_path(pattern: str, proc: subprocess.Popen, timeout: float = 20) -> bool:
    """Poll until a file matching `pattern` exists; False if `proc` ended first."""
    deadline = time.monotonic() + timeout
    while not glob.glob(pattern):
        if proc.poll() is not None:
            return False
        assert time.monotonic() < deadline, f"{pattern} did not appear"
        time.sleep(0.001)
    return True


SERVER = """
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(1)
s.settimeout(10)
print("listening", flush=True)
conn, (host, port) = s.accept()
conn.sendall(b"hi")
print(host, flush=True)
conn.close()
"""
CLIENT = """
import socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=5)
print(c.recv(2).decode())
"""


def tcp_source(name: str, server: str, server_ip: str, client: str, port: int = 9000) -> str:
    """Connect from `client` to a one-shot server in `server`; return the
    source address the server saw."""
    srv = subprocess.Popen(CLI + ["exec", "--name", name, server, "--", sys.executable, "-c",
                                  SERVER, str(port)], stdout=subprocess.PIPE, text=True)
    try:
        assert srv.stdout.readline().strip() == "listening"
        conn = cli("exec", "--name", name, client, "--", sys.executable, "-c", CLIENT,
                   server_ip, str(port), timeout=20)
        assert conn.returncode == 0 and conn.stdout.strip() == "hi", conn
        out, _ = srv.communicate(timeout=15)
        return out.strip()
    finally:
        if srv.poll() is None:
            srv.kill()
            srv.wait()


@pytest.fixture
def names():
    """A factory of lab names unique to this test; removes whatever the test
    left under them, even when it failed."""
    made: list[tuple[str, Path | None]] = []

    def new(base: Path | None = None) -> str:
        name = f"tl{os.getpid()}_{next(_counter)}"
        made.append((name, base))
        return name

    yield new
    for name, base in made:
        _force_clean(name, base)


def _private_base(tag: str):
    base = Path(f"/run/ovnlb{tag}{os.getpid()}")
    yield base, dict(os.environ, OVNLB_RUN_DIR=str(base))
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def private_base():
    """A run directory base of this test's own (the environment for the CLI)."""
    yield from _private_base("t")


@pytest.fixture
def stale_base():
    """Another one, for labs the test leaves stale on purpose: any lab built
    meanwhile (by another xdist worker) sweeps the stale labs of its base."""
    yield from _private_base("s")


# --- life cycle --------------------------------------------------------------

@pytest.mark.parametrize("topo", ["single", "lab"])
def test_up_status_exec_nbctl_down(names, topo):
    name = names()
    t = topology.get(topo)
    result = up(name, topo)
    rundir = records.base_dir() / name
    assert f"lab {name} ({topo}) is up" in result.stdout
    assert leftovers(name), "up made nothing?"

    assert "no owner" in listed(name)
    status = cli("status", "--name", name)
    assert status.returncode == 0, status.stderr
    assert str(rundir) in status.stdout
    assert "all daemons running" in status.stdout
    logs = [rundir / "central" / f"{d}.log" for d in ("nb", "sb", "northd")]
    logs += [rundir / c.name / f"{d}.log" for c in t.chassis
             for d in ("ovsdb-server", "ovs-vswitchd", "ovn-controller")]
    for log in logs:
        assert str(log) in status.stdout
        assert log.is_file()

    assert cli("exec", "--name", name, t.vms[0].name, "--", "sh", "-c", "exit 7").returncode == 7
    assert cli("exec", "--name", name, t.chassis[0].name, "--", "true").returncode == 0

    show = cli("nbctl", "--name", name, "--", "show")
    assert show.returncode == 0, show.stderr
    for switch in t.switches:
        assert f"({switch.name})" in show.stdout

    # Inside a node, the OVS/OVN tools reach the node's daemons and the
    # lab's databases, as on the hosts of the reference lab.
    for chassis in t.chassis:
        vsctl = cli("exec", "--name", name, chassis.name, "--", "ovs-vsctl", "get",
                    "Open_vSwitch", ".", "external_ids:system-id")
        assert vsctl.stdout.strip().strip('"') == chassis.name, vsctl.stderr
        appctl = cli("exec", "--name", name, chassis.name, "--", "ovs-appctl", "version")
        assert appctl.returncode == 0, appctl.stderr
    nbctl = cli("exec", "--name", name, t.central.name, "--", "ovn-nbctl", "ls-list")
    assert {s.name for s in t.switches} <= set(re.findall(r"\((\w+)\)", nbctl.stdout))

    down = cli("down", "--name", name)
    assert down.returncode == 0, down.stderr
    assert leftovers(name) == []


def test_traffic_crosses_the_lab(names):
    """vm3 (inside) reaches vm1 (dmz) through the distributed router, with
    its own address as the source."""
    name = names()
    up(name, "lab")
    assert tcp_source(name, "vm1", "172.16.255.130", "vm3") == "172.16.255.194"
    assert cli("down", "--name", name).returncode == 0
    assert leftovers(name) == []


# --- failures while building ---------------------------------------------------

def wrapped(tmp_path, program: str, script: str) -> dict:
    """An environment whose PATH finds `program` as the shell `script`
    first (it may call the real ones, `install.find()`)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    wrapper = bindir / program
    wrapper.write_text("#!/bin/sh\n" + script)
    wrapper.chmod(0o755)
    return dict(os.environ, PATH=f"{bindir}:{os.environ.get('PATH', '')}")

def test_failed_up_leaves_nothing(names, tmp_path):
    """A chassis whose ovn-controller never reaches the Southbound DB: one
    line naming the chassis and its log, exit status 1, nothing left."""
    real = install.find()
    env = wrapped(tmp_path, "ovn-controller",
                  "# the real ovn-controller, pointed at a Southbound DB that does not exist\n"
                  'for db; do :; done\n'
                  f'{real["ovs-vsctl"]} --no-wait --db="$db" set Open_vSwitch . '
                  "external_ids:ovn-remote=unix:/nonexistent || exit 1\n"
                  f'exec {real["ovn-controller"]} "$@"\n')

    name = names()
    result = cli("up", "--name", name, "--topology", "single", "--timeout", "3", env=env)
    line = one_line_error(result)
    assert result.returncode == 1
    assert "chassis host1" in line and "Southbound" in line
    assert str(records.base_dir() / name / "host1" / "ovn-controller.log") in line
    assert "unix:/nonexistent" in line  # what the controller last complained about
    assert result.stdout == ""
    assert leftovers(name) == []


def test_a_controller_that_dies_during_up_is_named(names, tmp_path):
    """A chassis whose ovn-controller dies as it starts: the one line says
    it died, and how."""
    real = install.find()
    env = wrapped(tmp_path, "ovn-controller",
                  "# the real ovn-controller, detached, then crashed as a null pointer would\n"
                  f'{real["ovn-controller"]} "$@" || exit 1\n'
                  'kill -SEGV "$(cat "$OVS_RUNDIR/ovn-controller.pid")"\n')

    name = names()
    result = cli("up", "--name", name, "--topology", "single", "--timeout", "3", env=env)
    line = one_line_error(result)
    assert result.returncode == 1
    assert re.search(r"chassis host1 did not .*; its ovn-controller \(pid \d+\) died: "
                     r"killed by signal 11 \(SIGSEGV\)", line), line
    assert leftovers(name) == []


def test_a_slow_northd_does_not_crash_the_controllers(names, tmp_path):
    """ovn-controller dies when it finds the Southbound DB without the row
    ovn-northd writes first (SB_Global); an ovn-northd that starts late
    still makes a lab, its controllers alive."""
    real = install.find()
    env = wrapped(tmp_path, "ovn-northd", f'sleep 2\nexec {real["ovn-northd"]} "$@"\n')

    name = names()
    result = cli("up", "--name", name, "--topology", "lab", env=env)
    try:
        assert result.returncode == 0, result.stderr
    finally:
        assert cli("down", "--name", name).returncode == 0
    assert leftovers(name) == []


def interruptible() -> None:
    """In a child: SIGINT as in a terminal's foreground job.  A child of a
    background job inherits SIGINT ignored, and Python then never raises
    KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


# Where a Ctrl-C lands: just after the name is claimed (namespaces, links),
# while the central daemons start, and while the chassis come up.
PHASES = {"claimed": "lab.json", "daemons": "central/nb.pid",
          "controllers": "*/ovn-controller.pid"}


@pytest.mark.parametrize("phase", PHASES)
def test_ctrl_c_during_up_leaves_nothing(names, phase):
    name = names()
    # Its own process group, signalled as a whole: what Ctrl-C in a terminal does.
    proc = subprocess.Popen(CLI + ["up", "--name", name, "--topology", "lab"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, preexec_fn=interruptible)
    try:
        reached = wait_for_path(str(records.base_dir() / name / PHASES[phase]), proc)
        if reached:
            os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if proc.returncode == 130:
        assert err.splitlines() == ["ovnlb-lab: interrupted; nothing left behind"]
        assert leftovers(name) == []
        return
    # Finished before the interrupt took effect: a complete lab, to remove.
    assert phase == "controllers", f"up was not interrupted: {proc.returncode} {err}"
    assert proc.returncode in (0, -signal.SIGINT), err
    assert records.load(name).state == "ready"
    assert cli("down", "--name", name).returncode == 0
    assert leftovers(name) == []


# Ctrl-C exactly as the build starts its last worker thread, whose chassis
# is slow to come up: the cleanup must not start before that worker is done
# (else it goes on starting daemons behind the cleanup's back).
WORKER_RACE = """
import json, os, signal, sys, threading, time
from pytest_ovnlb import lab
from pytest_ovnlb.engine import records
from pytest_ovnlb.backends.netns import NetnsBackend
from pytest_ovnlb.engine.topology import get

topo = get("lab")
workers, busy = [], []
real_start, real_chassis, real_destroy = (
    threading.Thread.start, NetnsBackend._start_chassis, lab.destroy)

def start(self):
    real_start(self)
    if self.name.startswith("ThreadPoolExecutor"):
        workers.append(self)
        if len(workers) == len(topo.chassis) + 1:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.01)  # the interrupt lands here

def start_chassis(self, name):
    if name == topo.chassis[-1].name:
        time.sleep(0.5)
    real_chassis(self, name)

def destroy(record):
    busy.extend(t.name for t in workers if t.is_alive())
    real_destroy(record)

threading.Thread.start = start
NetnsBackend._start_chassis = start_chassis
lab.destroy = destroy
try:
    lab.Lab.up(sys.argv[1], "lab")
    outcome = "up"
except KeyboardInterrupt:
    outcome = "interrupted"
print(json.dumps({"outcome": outcome, "workers": len(workers), "busy": busy}))
"""


def test_ctrl_c_while_build_starts_its_workers(names):
    name = names()
    result = subprocess.run([sys.executable, "-c", WORKER_RACE, name], capture_output=True,
                            text=True, timeout=60, preexec_fn=interruptible)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.splitlines()[-1])
    # The race is only provoked with one worker per daemon group: a build
    # that changed its threads must change this test too.
    assert report["workers"] == len(topology.get("lab").chassis) + 1, (
        f"the build no longer starts one worker thread per daemon group: {report}")
    assert report["outcome"] == "interrupted"
    assert report["busy"] == [], "cleanup started while build workers were still running"
    time.sleep(0.6)  # anything a stray worker would start appears by now
    assert leftovers(name) == []


def _kill_up_midway(name: str, phase: str, base: Path, env: dict) -> None:
    """`ovnlb-lab up` killed with SIGKILL once it reached `phase`."""
    proc = subprocess.Popen(CLI + ["up", "--name", name, "--topology", "lab"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_for_path(str(base / name / PHASES[phase]), proc), \
            "up finished before it could be killed"
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    if json.loads((base / name / "lab.json").read_text())["state"] == "building":
        # killed midway: it left things
        assert any(item.startswith("namespace") for item in leftovers(name, base))
        assert "stale" in listed(name, env)


def test_kill_during_up_then_sweep(names, stale_base):
    base, env = stale_base
    name = names(base)
    _kill_up_midway(name, "daemons", base, env)
    assert leftovers(name, base)
    swept = cli("sweep", env=env)
    assert swept.returncode == 0, swept.stderr
    assert name in swept.stdout
    assert leftovers(name, base) == []


def test_kill_during_up_then_next_up_sweeps(names, stale_base):
    base, env = stale_base
    dead, other = names(base), names(base)
    _kill_up_midway(dead, "controllers", base, env)
    up(other, "single", env)
    assert leftovers(dead, base) == []
    assert cli("down", "--name", other, env=env).returncode == 0
    assert leftovers(other, base) == []


def test_sweep_removes_labs_of_dead_owners_only(private_base, stale_base, names):
    base, private_env = private_base
    own, env = stale_base
    owned, kept, private = names(own), names(own), names(base)
    up(kept, "single", env)  # no owner: stays until `down`
    up(private, "single", private_env)  # no owner, in another run directory base

    owner = subprocess.Popen(
        [sys.executable, "-c",
         "import os, sys, time\n"
         "from pytest_ovnlb.lab import Lab\n"
         "Lab.up(sys.argv[1], 'single', owner=os.getpid())\n"
         "print('up', flush=True)\n"
         "time.sleep(120)\n", owned], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert owner.stdout.readline().strip() == "up"
        line = listed(owned, env)
        assert f"owner pid {owner.pid}" in line and "stale" not in line
        assert owned not in cli("sweep", env=env).stdout  # its owner is alive
        assert "all daemons running" in cli("status", "--name", owned, env=env).stdout
    finally:
        owner.kill()
        owner.wait()
    assert leftovers(owned, own), "the lab's daemons outlive its owner until a sweep"
    assert "stale" in listed(owned, env)

    swept = cli("sweep", env=env)
    assert swept.returncode == 0, swept.stderr
    assert owned in swept.stdout and kept not in swept.stdout
    assert leftovers(owned, own) == []
    status = cli("status", "--name", kept, env=env)
    assert "state: ready, all daemons running" in status.stdout, status
    assert cli("exec", "--name", kept, "vm3", "--", "true", env=env).returncode == 0

    # `sweep --all` takes every lab, but only under its own run directory base.
    assert private not in cli("sweep", env=private_env).stdout
    assert leftovers(private, base)
    swept_all = cli("sweep", "--all", env=private_env)
    assert swept_all.returncode == 0 and private in swept_all.stdout, swept_all
    assert leftovers(private, base) == []
    assert "all daemons running" in cli("status", "--name", kept, env=env).stdout

    assert cli("down", "--name", kept, env=env).returncode == 0
    assert leftovers(kept, own) == []


def test_sweep_leaves_foreign_namespaces(private_base):
    """Sweeping goes by the labs' records, never by namespace names."""
    _, private_env = private_base
    foreign = f"{records.NS_PREFIX}foreign-{os.getpid()}"
    subprocess.run(["ip", "netns", "add", foreign], check=True, capture_output=True)
    try:
        assert cli("sweep").returncode == 0
        assert cli("sweep", "--all", env=private_env).returncode == 0
        assert (NETNS_DIR / foreign).exists()
    finally:
        subprocess.run(["ip", "netns", "del", foreign], capture_output=True)


# --- bad input ---------------------------------------------------------------------

def test_unknown_topology(names):
    name = names()
    line = one_line_error(cli("up", "--name", name, "--topology", "nosuch"))
    assert "unknown topology 'nosuch'" in line and "single" in line
    assert leftovers(name) == []


@pytest.mark.parametrize("bad", ["Bad-Name", "x" * 25, "_lab"])
def test_invalid_lab_name(bad):
    line = one_line_error(cli("up", "--name", bad, "--topology", "single"))
    assert "invalid lab name" in line
    assert not (records.base_dir() / bad).exists()
    assert not any(bad in ns for ns in (os.listdir(NETNS_DIR) if NETNS_DIR.exists() else ()))


def test_not_root(names):
    name = names()
    if shutil.which("setpriv"):
        as_nobody = {"args": ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
                     + CLI + ["up", "--name", name, "--topology", "single"]}
    else:
        def drop():
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
        as_nobody = {"args": CLI + ["up", "--name", name, "--topology", "single"],
                     "preexec_fn": drop}
    result = subprocess.run(**as_nobody, capture_output=True, text=True, timeout=60)
    line = one_line_error(result)
    assert "needs root" in line
    assert leftovers(name) == []


def test_programs_missing(names, tmp_path):
    # A PATH with every program but two (links to this machine's), so the
    # check runs whatever is installed here.
    missing = {"ovn-northd": "ovn-central", "ovs-ofctl": "openvswitch-common"}
    for program in install.PROGRAMS:
        if program not in missing:
            (tmp_path / program).symlink_to(shutil.which(program))
    path = f"{BIN}:{tmp_path}"
    name = names()
    line = one_line_error(cli("up", "--name", name, "--topology", "single",
                              env=dict(os.environ, PATH=path)))
    for program, package in missing.items():
        assert f"{program} (package {package})" in line
    assert leftovers(name) == []


def test_exec_in_unknown_lab(names):
    name = names()
    line = one_line_error(cli("exec", "--name", name, "vm1", "--", "true"))
    assert f"no lab named {name!r}" in line


def test_down_of_a_lab_already_gone_is_done(names):
    """A cleanup step that runs twice (CI) is not an error: one line, exit 0."""
    name = names()
    result = cli("down", "--name", name)
    assert result.returncode == 0, result
    assert result.stderr == f"ovnlb-lab: no lab named {name!r} (see `ovnlb-lab list`); " \
                            "nothing to remove\n"


@pytest.mark.parametrize("command", ["ovnlb-lab", "ovnlb-report", "ovnlb-conformance"])
def test_every_command_tells_its_version(command):
    done = subprocess.run([str(BIN / command), "--version"], capture_output=True, text=True)
    assert re.fullmatch(rf"{command} \d+\.\d+\.\d+\n", done.stdout), done


def test_name_in_use_and_unknown_node(names):
    name = names()
    up(name, "single")
    status_before = cli("status", "--name", name).stdout

    again = cli("up", "--name", name, "--topology", "single")
    assert "already exists" in one_line_error(again)
    node = cli("exec", "--name", name, "vmx", "--", "true")
    assert "unknown node 'vmx'" in one_line_error(node)

    # The first lab is untouched and carries traffic.
    assert cli("status", "--name", name).stdout == status_before
    assert "all daemons running" in status_before
    assert tcp_source(name, "vm1", "10.0.1.11", "vm3") == "10.0.2.13"
    assert cli("down", "--name", name).returncode == 0
    assert leftovers(name) == []


# --- several labs ----------------------------------------------------------------

def test_two_labs_side_by_side(names):
    a, b = names(), names()
    procs = [subprocess.Popen(CLI + ["up", "--name", n, "--topology", "lab"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for n in (a, b)]  # built at the same time
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err

    for name in (a, b):
        assert tcp_source(name, "vm1", "172.16.255.130", "vm3") == "172.16.255.194"

    added = cli("nbctl", "--name", a, "--", "lb-add", "lbt", "172.16.255.62:80",
                "172.16.255.130:8000")
    assert added.returncode == 0, added.stderr
    assert "lbt" in cli("nbctl", "--name", a, "--", "lb-list").stdout
    other = cli("nbctl", "--name", b, "--", "lb-list")
    assert other.returncode == 0 and "lbt" not in other.stdout

    for name in (a, b):
        assert cli("down", "--name", name).returncode == 0
        assert leftovers(name) == []


# --- the README's walk-through ------------------------------------------------

def test_readme_walkthrough(names, walkthrough):
    """README's walk-through, as it is there, with the reference lab's
    plain names and addresses; `down` leaves nothing."""
    name = names()
    found = walkthrough(name)
    assert found["ROUTER"] == "edge1" and found["ROUTER_VIP"] == "10.127.0.254", found
    assert leftovers(name) == []


def test_nbctl_tags_what_it_creates_and_env(names):
    """Rows made through `ovnlb-lab nbctl` get the lab's owner tag (its
    output and exit status pass through); rows made otherwise, or tagged
    already, keep their external_ids.  `env` gives the lab's names and
    addresses as shell assignments; for no such lab, one line."""
    name = names()
    up(name, "single")
    made = cli("nbctl", "--name", name, "--", "lb-add", "mine", "10.0.9.100:80", "10.0.1.11:80",
               "--", "lsp-add", "web", "myport", "--", "create", "Address_Set", "name=myset",
               "external_ids:ovnlb-owner=someone")
    assert made.returncode == 0, made.stderr
    assert re.fullmatch(r"[0-9a-f-]{36}\n", made.stdout), made.stdout  # create's UUID
    by_hand = cli("exec", "--name", name, "host1", "--", "ovn-nbctl", "lb-add", "byhand",
                  "10.0.9.101:80", "10.0.1.12:80")
    assert by_hand.returncode == 0, by_hand.stderr

    def owner(table: str, row: str) -> str:
        got = cli("nbctl", "--name", name, "--", "get", table, row, "external_ids")
        assert got.returncode == 0, got.stderr
        return got.stdout.strip()

    assert owner("Load_Balancer", "mine") == f"{{ovnlb-owner={name}}}"
    assert owner("Logical_Switch_Port", "myport") == f"{{ovnlb-owner={name}}}"
    assert owner("Address_Set", "myset") == "{ovnlb-owner=someone}"
    assert owner("Load_Balancer", "byhand") == "{}"
    failed = cli("nbctl", "--name", name, "--", "no-such-command")
    assert failed.returncode == 1 and "no-such-command" in failed.stderr, failed

    env = cli("env", "--name", name)
    assert env.returncode == 0, env.stderr
    assert "\nPREFIX=''\nSWITCH=clients\nSWITCH_VIP=10.0.9.100\n" in env.stdout, env.stdout
    assert "\nVM1=10.0.1.11\n" in env.stdout and "ROUTER" not in env.stdout, env.stdout
    assert "SWITCH=clients SWITCH_VIP=10.0.9.100" in cli("status", "--name", name).stdout
    missing = names()
    assert f"no lab named {missing!r}" in one_line_error(cli("env", "--name", missing))
    assert cli("down", "--name", name).returncode == 0
    assert leftovers(name) == []
