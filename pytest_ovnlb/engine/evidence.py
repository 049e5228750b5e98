"""What a failing test's evidence holds from the deployment's nodes, collected
the same way whatever runs them: each backend offers the primitives
(`chassis_hosts`, `run`, `appctl`, `enter_prefix`, `log_files`), this module
decides what is collected and where it goes.  pytest_ovnlb/plugin/evidence.py
decides when, adds the databases' view and lists the whole folder.
"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

from pytest_ovnlb.errors import LabError

TIMEOUT = 30  # seconds one command may take

# Per chassis: (file, command, the whole output or only the lines naming a
# VIP).  Drop counters and datapath stats show packets OVS dropped, and why,
# without a rerun.  `ovs-appctl` commands go to ovs-vswitchd's control socket.
CHASSIS = (
    ("groups.txt", ("ovs-ofctl", "-O", "OpenFlow15", "dump-groups", "br-int"), True),
    ("flows.txt", ("ovs-ofctl", "-O", "OpenFlow15", "dump-flows", "br-int"), False),
    ("conntrack.txt", ("ovs-appctl", "dpctl/dump-conntrack"), False),
    ("coverage.txt", ("ovs-appctl", "coverage/show"), True),
    ("datapath.txt", ("ovs-appctl", "dpctl/show", "-s"), True),
)

LOG_CAP = 16 << 20  # bytes of one daemon's log kept as evidence


def collect(backend, directory: Path, vips: list[str], since: dict[str, int]) -> list[str]:
    """Write into `directory` per chassis the br-int groups, the OpenFlow
    flows and the conntrack entries mentioning any of `vips`, OVS's counters;
    each daemon's log from offset `since[key]` (0 when unknown); each node's
    kernel counters.  Returns what could not be collected, one line each;
    never raises for a dead daemon."""
    return (chassis(backend, directory, vips) + logs(backend, directory, since)
            + node_counters(backend, directory))


def chassis(backend, directory: Path, vips: list[str]) -> list[str]:
    problems = []
    for host in backend.chassis_hosts():
        out = directory / "chassis" / host
        out.mkdir(parents=True, exist_ok=True)
        for name, argv, keep_all in CHASSIS:
            try:
                if argv[0] == "ovs-appctl":
                    text = backend.appctl(host, "ovs-vswitchd", *argv[1:])
                else:
                    text = backend.run(host, list(argv), TIMEOUT)
                text = text if keep_all else mentioning(text, vips)
            except LabError as exc:
                problems.append(f"{host}: {' '.join(argv)}: {exc}")
                text = f"# failed: {exc}\n"
            (out / name).write_text(f"# {' '.join(argv)}\n" + text)
    return problems


def mentioning(text: str, vips: list[str]) -> str:
    """The lines of `text` naming any of `vips` (all of it without VIPs);
    a `Datapath:` header of ovn-sbctl lflow-list is kept above its matches."""
    if not vips:
        return text
    pattern = re.compile("|".join(rf"(?<![\d.]){re.escape(v)}(?!\d)" for v in vips))
    kept, header = [], None
    for line in text.splitlines():
        if line.startswith("Datapath:"):
            header = line
        elif pattern.search(line):
            if header:
                kept.append(header)
                header = None
            kept.append(line)
    return "\n".join(kept) + ("\n" if kept else "")


def log_offsets(backend) -> dict[str, int]:
    """Current size of each daemon's log (keys as in `log_files`), so that
    `logs` can keep only what a test wrote."""
    sizes = {}
    for key, path in backend.log_files().items():
        try:
            sizes[key] = os.stat(path).st_size
        except OSError:
            sizes[key] = 0
    return sizes


def logs(backend, directory: Path, since: dict[str, int]) -> list[str]:
    """`logs/<node>_<daemon>.log`: each daemon's log from `since[key]`."""
    out = directory / "logs"
    out.mkdir(parents=True, exist_ok=True)
    problems = []
    for key, path in backend.log_files().items():
        try:
            copy_log(path, since.get(key, 0), out / f"{key.replace('/', '_')}.log")
        except OSError as exc:
            problems.append(f"{key}: log {path}: {exc.strerror}")
    return problems


def copy_log(path: str, offset: int, dest: Path) -> None:
    """Copy log `path` from byte `offset` (at most its last LOG_CAP bytes:
    a long-lived deployment's whole log is not the test's) to `dest`."""
    with open(path, "rb") as f:
        size = f.seek(0, 2)
        start = max(offset, size - LOG_CAP)
        f.seek(start)
        head = (f"[{start - offset} bytes after the test's start left out]\n".encode()
                if start > offset else b"")
        dest.write_bytes(head + f.read())


def kernel_counters(text: str) -> str:
    """The non-zero counters of /proc/net/netstat and /proc/net/snmp text
    (a header line and a value line per group), one `Group:Name value` a
    line."""
    lines, rows = [], text.splitlines()
    for head, values in zip(rows[::2], rows[1::2]):
        group, names = head.split(":", 1)
        for name, value in zip(names.split(), values.split(":", 1)[-1].split()):
            if value not in ("0", "-1") or name in ("RtoMin", "MaxConn"):
                lines.append(f"{group}:{name} {value}")
    return "\n".join(lines) + "\n"


def node_counters(backend, directory: Path) -> list[str]:
    """Each node's kernel IP/TCP/UDP counters, read in its network
    namespace: what the kernels did with the test's packets (listen queue
    overflows, retransmissions, resets, ICMP errors)."""
    problems = []
    for node in backend.topo.nodes:
        argv = backend.enter_prefix(node) + ["cat", "/proc/net/netstat", "/proc/net/snmp"]
        out = directory / "nodes" / node
        out.mkdir(parents=True, exist_ok=True)
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT)
            text = kernel_counters(done.stdout) if done.returncode == 0 else (
                f"# failed: {done.stderr.strip()}\n")
            if done.returncode != 0:
                problems.append(f"{node}: kernel counters: {done.stderr.strip()}")
        except (subprocess.TimeoutExpired, ValueError) as exc:
            problems.append(f"{node}: kernel counters: {exc}")
            text = f"# failed: {exc}\n"
        (out / "kernel-counters.txt").write_text(
            "# /proc/net/netstat and /proc/net/snmp in the node (non-zero counters)\n" + text)
    return problems
