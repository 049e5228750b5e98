"""What starting an ovn-fake-multinode cluster needs of this machine, and,
when the user asks for it, getting it ready and putting it back.

`ovn_cluster.sh start` wires its containers to two OVS bridges of the
host, `br-ovn` (underlay) and `br-ovn-ext`, through the host's `ovs-vsctl`;
it creates neither OVS nor (on a host without the openvswitch kernel
module, or ever for `br-ovn-ext`) the bridges, and `ovn_cluster.sh stop`
deletes them.  Its containers also need a container runtime that works
here (crun refuses hosts with hybrid cgroups; runc works).

Preparing the host (--ovn-fmn-prepare-host) starts an OVS of the run's
own (database, sockets and logs in the run's directory, found by
`ovs-vsctl` through OVS_RUNDIR) when none answers, creates the missing
bridges (netdev without the kernel module), and records both so that the
end of the run, or a later sweep, undoes exactly that.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from pytest_ovnlb.engine import unixctl
from pytest_ovnlb.engine.links import last_line
from pytest_ovnlb.engine.records import Record
from pytest_ovnlb.errors import LabError

BRIDGES = ("br-ovn", "br-ovn-ext")
SCHEMA = "/usr/share/openvswitch/vswitch.ovsschema"
VSCTL_TIMEOUT = 10
# What a runtime's refusal usually means here, and the way out.
HINTS = {
    "cgroup": ' (crun refuses hybrid cgroups; runc works: runtime = "runc" in '
              "containers.conf)",
    "rlimit": " (the default ulimits are above this host's hard limits: "
              'default_ulimits = ["nofile=N:N"] in containers.conf, N from `ulimit -Hn`)',
}


def _vsctl(env: dict, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(["ovs-vsctl", f"--timeout={VSCTL_TIMEOUT}", *args], env=env,
                            capture_output=True, text=True)
    if check and result.returncode != 0:
        raise LabError(f"fake-multinode: ovs-vsctl {' '.join(args)}: "
                       f"{last_line(result.stderr)}")
    return result


def environment(record: Record) -> dict:
    """The environment `ovn_cluster.sh` runs in: the run's own OVS, if it
    started one."""
    rundir = record.data.get("host", {}).get("ovs_rundir")
    return dict(os.environ, **({"OVS_RUNDIR": rundir} if rundir else {}))


def lacks(env: dict) -> list[str]:
    """What the host lacks for `ovn_cluster.sh start`, in words."""
    if subprocess.run(["ovs-vsctl", "--timeout=2", "show"], env=env,
                      capture_output=True).returncode != 0:
        return ["an OVS answering ovs-vsctl (ovsdb-server and ovs-vswitchd)",
                f"the bridges {' and '.join(BRIDGES)}"]
    missing = [b for b in BRIDGES if _vsctl(env, "br-exists", b, check=False).returncode != 0]
    return [f"the bridge{'s' * (len(missing) > 1)} {' and '.join(missing)}"] if missing else []


def check_runtime(runtime: str, image: str) -> None:
    """A container of `image` starts and ends here; LabError in one line if not."""
    result = subprocess.run([runtime, "run", "--rm", "--network=none", image, "true"],
                            capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        why = last_line(result.stderr or result.stdout)
        hint = next((h for word, h in HINTS.items() if word in why), "")
        raise LabError(f"fake-multinode: {runtime} cannot run a container of {image} "
                       f"here: {why}{hint}")


def prepare(record: Record, prepare_host: bool) -> None:
    """Check the host; with `prepare_host`, make what it lacks, recording it
    first in `record` (saved) for undo()."""
    missing = lacks(environment(record))
    if not missing:
        return
    if not prepare_host:
        raise LabError(f"fake-multinode: this host lacks what `ovn_cluster.sh start` needs: "
                       f"{'; '.join(missing)}; --ovn-fmn-prepare-host provides them for "
                       "the run and removes them after")
    host = record.data.setdefault("host", {"ovs_rundir": None, "bridges": []})
    if subprocess.run(["ovs-vsctl", "--timeout=2", "show"],
                      capture_output=True).returncode != 0:
        host["ovs_rundir"] = str(record.rundir / "host-ovs")
        record.save()
        _start_ovs(Path(host["ovs_rundir"]))
    env = environment(record)
    datapath = "system" if Path("/sys/module/openvswitch").exists() else "netdev"
    for bridge in BRIDGES:
        if _vsctl(env, "br-exists", bridge, check=False).returncode != 0:
            host["bridges"].append(bridge)
            record.save()
            _vsctl(env, "add-br", bridge, "--", "set", "Bridge", bridge,
                   f"datapath_type={datapath}")


def _start_ovs(rundir: Path) -> None:
    rundir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, OVS_RUNDIR=str(rundir), OVS_LOGDIR=str(rundir),
               OVS_DBDIR=str(rundir))
    db = rundir / "conf.db"

    def run(*argv: str) -> None:
        result = subprocess.run(argv, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            raise LabError(f"fake-multinode: preparing the host: {argv[0]}: "
                           f"{last_line(result.stderr)} (log in {rundir})")

    run("ovsdb-tool", "create", str(db), SCHEMA)
    run("ovsdb-server", str(db), f"--remote=punix:{rundir}/db.sock",
        f"--pidfile={rundir}/ovsdb-server.pid", "-vconsole:off",
        f"--log-file={rundir}/ovsdb-server.log", "--detach")
    # --no-wait: no ovs-vswitchd yet to acknowledge the change
    run("ovs-vsctl", "--no-wait", "init", "--", "set", "Open_vSwitch", ".",
        "other_config:userspace-tso-enable=true")
    run("ovs-vswitchd", f"unix:{rundir}/db.sock", f"--pidfile={rundir}/ovs-vswitchd.pid",
        "-vconsole:off", f"--log-file={rundir}/ovs-vswitchd.log", "--detach")


def undo(record: Record) -> None:
    """Remove what prepare() made (bridges `ovn_cluster.sh stop` left, the
    run's OVS); nothing if it made nothing."""
    host = record.data.get("host")
    if not host:
        return
    env = environment(record)
    rundir = host.get("ovs_rundir")
    for bridge in host.get("bridges", []):
        _vsctl(env, "--if-exists", "del-br", bridge, check=False)
    if rundir:
        # --cleanup: the netdev datapath's tap device goes with it
        for daemon, args in (("ovs-vswitchd", ("exit", "--cleanup")), ("ovsdb-server", ("exit",))):
            try:
                unixctl.call(unixctl.pidfile_socket(rundir, daemon), *args)
            except LabError:
                pass  # not running (any more)
