"""`ovnlb-lab`: bring up, inspect, drive and remove embedded labs by hand.

    ovnlb-lab up [--topology lab] [--name NAME] [--backend netns|fake-multinode]
    ovnlb-lab status [--name NAME] | env [--name NAME] | list
    ovnlb-lab exec [--name NAME] NODE -- CMD...
    ovnlb-lab nbctl [--name NAME] -- ARGS...   (and sbctl)
    ovnlb-lab upgrade [--name NAME] --to ROOT --step controllers|central|ovs|all
    ovnlb-lab down [--name NAME] | sweep [--all]
    ovnlb-lab coverage [--ovn-root DIR] [--json]
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys
import time

from pytest_ovnlb import version
from pytest_ovnlb.engine import topology
from pytest_ovnlb.errors import LabError

DEFAULT_NAME = "lab"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ovnlb-lab", description=__doc__.split("\n")[0])
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    def named(name: str, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help)
        p.add_argument("--name", default=DEFAULT_NAME, help=f"lab name (default {DEFAULT_NAME})")
        return p

    up = named("up", "build a lab and return when traffic can flow")
    up.add_argument("--topology", default="lab",
                    help="a topology: lab (default), single or one a plugin adds "
                         "(`ovnlb-lab topologies` lists them)")
    up.add_argument("--backend", default="netns",
                    help="netns (an embedded lab of namespaces, default), fake-multinode "
                         "(the topology inside a running ovn-fake-multinode cluster) or one "
                         "a plugin adds")
    up.add_argument("--fmn-dir", default=None, metavar="DIR",
                    help="fake-multinode: an ovn-fake-multinode checkout whose images must be "
                         "built; the lab goes into the cluster that runs (a pytest run with "
                         "--ovn-fmn-dir starts and stops one)")
    up.add_argument("--runtime", default=None,
                    help="fake-multinode: podman or docker (default $RUNC_CMD, else "
                         "whichever is installed, podman first)")
    up.add_argument("--ovn-root", default=None, metavar="DIR",
                    help="run the OVN installed in this root filesystem (e.g. made with "
                         "debootstrap) instead of the one on PATH; default $OVNLB_OVN_ROOT")
    for part, what in (("central", "NB/SB ovsdb-servers and ovn-northd"),
                       ("chassis", "each chassis's ovn-controller, ovsdb-server and ovs-vswitchd")):
        up.add_argument(f"--ovn-{part}-root", default=None, metavar="DIR",
                        help=f"run the {what} from this root filesystem ('/': this machine's) "
                             "instead of --ovn-root's")
    up.add_argument("--timeout", type=float, default=20.0,
                    help="seconds to wait for the chassis to be ready (default 20)")
    upgrade = named("upgrade", "restart daemons on another OVN/OVS installation, as a package "
                    "upgrade does, and return when every chassis follows the Northbound again "
                    "(controllers pinned to another northd version: when ovn-northd does)")
    upgrade.add_argument("--to", required=True, metavar="ROOT",
                         help="root filesystem holding the new OVN/OVS ('/': this machine's)")
    upgrade.add_argument("--step", required=True,
                         help="controllers (ovn-controller), central (NB/SB databases converted, "
                              "then ovn-northd), ovs (each chassis's ovsdb-server, conf.db "
                              "converted, and ovs-vswitchd), all (ovs, controllers, central) or "
                              "pin (ovn-match-northd-version=true on each chassis, before a "
                              "fail-safe upgrade)")
    upgrade.add_argument("--chassis", action="append", default=None, metavar="NAME",
                         help="only this chassis (repeatable; default every one)")
    upgrade.add_argument("--timeout", type=float, default=30.0,
                         help="seconds to wait after each step for the chassis (default 30)")
    named("status", "describe a lab: state, versions, run directory, logs")
    named("env", "the lab's names and addresses as shell assignments, for "
          "eval \"$(ovnlb-lab env)\" (ROUTER, ROUTER_VIP, VM1, ...)")
    named("down", "remove a lab and everything it made")
    sub.add_parser("list", help="list labs")
    sweep = sub.add_parser("sweep", help="remove what crashed or killed runs left")
    sweep.add_argument("--all", action="store_true", help="remove every lab, owned or not")
    ex = named("exec", "run a command in a node (a VM or a host namespace)")
    ex.add_argument("node")
    ex.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- CMD")
    for ctl, more in (("nbctl", ("; what it creates carries the lab's owner tag and goes "
                                 "with `down`")), ("sbctl", "")):
        p = named(ctl, f"run ovn-{ctl} against the lab's database{more}")
        p.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- ARGS")
    sub.add_parser("topologies", help="list the topologies")
    cov = sub.add_parser("coverage", help="the load balancer knobs the OVN under test "
                         "documents, each with the conformance tests that exercise it or why "
                         "none does; exits 1 when a documented knob is not in the table")
    cov.add_argument("--ovn-root", default=None, metavar="DIR",
                     help="the OVN installed in this root filesystem instead of the one on "
                          "PATH; default $OVNLB_OVN_ROOT")
    cov.add_argument("--json", action="store_true", help="print JSON")
    return parser


def _strip_dashes(argv: list[str]) -> list[str]:
    return argv[1:] if argv[:1] == ["--"] else argv


def run(args: argparse.Namespace) -> int:
    if args.command == "topologies":
        for t in topology.REGISTRY.values():
            print(f"{t.name}: {t.description}")
        return 0
    if args.command == "coverage":  # reads files and collects tests: no root needed
        from pytest_ovnlb.reporting import coverage
        return coverage.main(args.ovn_root or os.environ.get("OVNLB_OVN_ROOT") or None, args.json)
    # Imported here, inside main()'s handlers: a Ctrl-C while these heavy
    # modules load is then an ordinary interrupt, not a traceback.
    from pytest_ovnlb.backends.base import LabSpec
    from pytest_ovnlb.engine import procs, records
    from pytest_ovnlb.lab import Lab, destroy, sweep

    procs.require_root("ovnlb-lab")
    if args.command == "up":
        started = time.monotonic()
        spec = LabSpec(ovn_root=args.ovn_root, central_root=args.ovn_central_root,
                       chassis_root=args.ovn_chassis_root, fmn_dir=args.fmn_dir,
                       runtime=args.runtime)
        try:
            lab = Lab.up(args.name, args.topology, owner=None, timeout=args.timeout,
                         backend=args.backend, spec=spec)
        except KeyboardInterrupt:  # Lab.up removed what it had made
            print("ovnlb-lab: interrupted; nothing left behind", file=sys.stderr)
            return 130
        print(f"lab {lab.name} ({lab.topology.name}) is up in "
              f"{time.monotonic() - started:.2f} s; {lab.summary}; "
              f"`ovnlb-lab status --name {lab.name}` describes it")
        lab.close()
    elif args.command == "upgrade":
        lab = Lab.attach(args.name)
        started = time.monotonic()
        try:
            done = lab.upgrade(args.to, args.step, args.chassis, args.timeout)
        finally:
            lab.close()
        print(f"lab {lab.name}: {args.step} upgraded to {args.to} in "
              f"{time.monotonic() - started:.2f} s (restarted {', '.join(done)}); "
              f"{lab.versions.summary}")
    elif args.command == "status":
        print(Lab.attach(args.name, require_ready=False).status())
    elif args.command == "env":
        lab = Lab.attach(args.name, require_ready=False)
        print(f"# lab {lab.name} (topology {lab.topology.name}, backend {lab.record.backend})")
        for key, value in lab.shell_vars().items():
            print(f"{key}={shlex.quote(value)}")
    elif args.command == "list":
        for r in records.all_records():
            owner = f"owner pid {r.owner_pid}" if r.owner_pid else "no owner"
            stale = " (stale: owner gone)" if r.stale else ""
            print(f"{r.name}\t{r.backend}\t{r.topology}\t{r.state}\t{owner}{stale}\t{r.rundir}")
    elif args.command == "down":
        try:
            record = records.load(args.name)
        except LabError as exc:
            if (records.base_dir() / args.name).exists():
                raise  # there, but unreadable
            # gone already: what `down` is for (a CI's cleanup step may run twice)
            print(f"ovnlb-lab: {exc}; nothing to remove", file=sys.stderr)
            return 0
        destroy(record)
    elif args.command == "sweep":
        swept = sweep(everything=args.all)
        print(f"swept {len(swept)} lab(s)" + (f": {', '.join(swept)}" if swept else ""))
    elif args.command == "exec":
        argv = _strip_dashes(args.argv)
        if not argv:
            raise LabError("exec needs a command: ovnlb-lab exec NODE -- CMD...")
        lab = Lab.attach(args.name)
        prefix = lab.exec_prefix(args.node)
        sys.stdout.flush()
        os.execvp(prefix[0], prefix + argv)  # the exit status passes through
    elif args.command == "nbctl":
        lab = Lab.attach(args.name)
        try:
            return lab.nbctl(_strip_dashes(args.argv))
        finally:
            lab.close()
    elif args.command == "sbctl":
        cmd = Lab.attach(args.name).ctl_command("sb") + _strip_dashes(args.argv)
        os.execvp(cmd[0], cmd)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return run(args)
    except LabError as exc:
        print(f"ovnlb-lab: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("ovnlb-lab: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
