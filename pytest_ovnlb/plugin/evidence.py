"""Evidence of a failing test, kept after the lab is gone, and daemons that
die during a test.

When a test that uses the lab fails, what a packager needs to file an OVN bug
without rerunning is saved in `<evidence dir>/<run>/<test>/`: the evidence
dir is `--ovnlb-evidence-dir` (default `ovnlb-evidence`, relative to where
pytest was started), outside the lab's run directory so that it outlives the
lab; `<run>` is the start time and the pid of the run (xdist workers share
the controller's); `<test>` is the test's node id.  The failure report names
the folder (section "ovnlb evidence").

    README.txt                    test, phase, lab status, versions, VIPs,
                                  log offsets, daemons that died, what could
                                  not be collected
    failure.txt                   the failure as pytest reported it
    nb-load-balancers.txt         the test's Load_Balancer rows, their health
                                  checks, the switches and routers holding them
                                  (and their Load_Balancer_Groups)
    sb-lflows.txt                 `ovn-sbctl lflow-list` lines naming a VIP
    sb-service-monitors.txt       Service_Monitor rows (health check status)
    sb-mac-bindings.txt           MAC_Binding rows (what routers learned of
                                  their neighbours)
    chassis/<node>/groups.txt     `ovs-ofctl -O OpenFlow15 dump-groups br-int`
    chassis/<node>/flows.txt      br-int OpenFlow flows naming a VIP
    chassis/<node>/conntrack.txt  `ovs-appctl dpctl/dump-conntrack` entries naming a VIP
    chassis/<node>/coverage.txt   `ovs-appctl coverage/show`: OVS's counters, drops by reason
    chassis/<node>/datapath.txt   `ovs-appctl dpctl/show -s`: ports, hits, misses, lost
    nodes/<node>/kernel-counters.txt  the node's kernel IP/TCP/UDP counters
                                  (non-zero): listen queue overflows,
                                  retransmissions, resets, ICMP errors
    logs/<node>_<daemon>.log      each daemon's log from the test's start
    crashes/<node>_<daemon>/      a daemon that crashed: its core and
                                  backtrace.txt (every thread, from gdb)

What comes from the nodes (chassis/, nodes/, logs/) is collected the same
way for every backend, by pytest_ovnlb/engine/evidence.py.

Daemon pids are read after each phase of a test: one that is gone or
replaced fails that phase, naming it, how it ended and its last log lines
(pytest_ovnlb/crashes.py); the lab restarts it before the next test.

Daemon logs are read after a test's call, where the lab's daemons are its
own (netns): a WARN, ERR or EMER line written since the end of its set-up
that verdicts/logs.py does not explain fails the test, naming the line.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from pytest_ovnlb.backends.base import program_of
from pytest_ovnlb.crashes import Crash, Watchdog, backtrace
from pytest_ovnlb.engine.evidence import mentioning
from pytest_ovnlb.engine.logical import OWNER
from pytest_ovnlb.plugin import state
from pytest_ovnlb.reporting import measure
from pytest_ovnlb.verdicts import logs

WATCH = pytest.StashKey["Watch"]()
CTL_TIMEOUT = 30


@dataclass
class Watch:
    """What was true at a test's start, and the daemons that died during it."""

    offsets: dict[str, int]
    lab: object = None
    crashes: list[Crash] = field(default_factory=list)
    saved: Path | None = None
    judged_from: dict[str, int] = field(default_factory=dict)  # log offsets after set-up
    mixed: bool = False  # the lab ran mixed versions at the test's start
    restarts: int = 0  # the lab's deliberate restarts then (an upgrade step since: mixed)


def uses_lab(item: pytest.Item) -> bool:
    return "ovn_lab" in getattr(item, "fixturenames", ())


def died(item: pytest.Item) -> None:
    """After a phase: fail it if a lab daemon died meanwhile."""
    watch, dog = item.stash.get(WATCH, None), state.of(item.config).dog
    if watch is None or watch.lab is None or dog is None or watch.lab.gone:
        return
    new = dog.check()
    if new:
        watch.crashes += new
        pytest.fail("lab daemon died during the test: "
                    + "; ".join(c.describe() for c in new)
                    + "\nits log, and its core and backtrace if it left one, are kept with "
                    "the evidence (section 'ovnlb evidence'); the next test first restarts it",
                    pytrace=False)


def last_look(run: state.Run, lab) -> str | None:
    """The session's lab once more before it goes down: a daemon that died
    after the last test's own check (in its teardown) fails that teardown
    rather than going down with the lab unseen."""
    dog, item = run.dog, run.current
    if dog is None or dog.lab is not lab or item is None:  # no test to fail (interrupted)
        return None
    new = dog.check()
    if not new:
        return None
    run.failed = True
    watch = item.stash.get(WATCH, None)
    if watch is not None:
        watch.crashes += new  # with the evidence, and counted in the report
    return "lab daemon died at the end of the run: " + "; ".join(c.describe() for c in new)


def before_setup(item: pytest.Item) -> Watch:
    """Restart daemons that died in an earlier test and start watching this one."""
    dog = state.of(item.config).dog
    if dog is not None:
        dog.repair()
        if dog.broken:  # fail at once, before the lab is touched
            pytest.fail(f"ovnlb: {dog.broken}", pytrace=False)
    # Before the lab exists its whole logs are this test's (it built the lab).
    watch = Watch(offsets=dog.lab.log_offsets() if dog is not None else {})
    item.stash[WATCH] = watch
    return watch


def after_setup(item: pytest.Item, watch: Watch) -> None:
    lab = getattr(item, "funcargs", {}).get("ovn_lab")
    if lab is None:
        return
    watch.lab = lab
    watch.judged_from = lab.log_offsets()
    watch.mixed, watch.restarts = lab.versions.mixed, len(lab.restarted)
    run = state.of(item.config)
    if run.dog is None:
        run.dog = Watchdog(lab)
    else:
        died(item)


def complained(item: pytest.Item) -> None:
    """Fail the test if a lab daemon logged what verdicts/logs.py does not
    explain since the end of its set-up (a crashed daemon's log is the
    crash's)."""
    watch = item.stash.get(WATCH, None)
    if watch is None or watch.lab is None or not watch.lab.backend.logs_are_ours:
        return
    ovn, found = watch.lab.versions.ovn, []
    mixed = (watch.mixed or watch.lab.versions.mixed
             or len(watch.lab.restarted) != watch.restarts)
    for key, path in watch.lab.backend.log_files().items():
        try:
            with open(path, "rb") as f:
                f.seek(watch.judged_from.get(key, 0))
                text = f.read().decode(errors="replace")
        except OSError:
            continue
        found += [f"{key}: {line}" for line in logs.complaints(program_of(key), text, ovn, mixed)]
    if found:
        pytest.fail(f"a lab daemon logged {len(found)} unexpected WARN/ERR/EMER line(s) "
                    "during the test (verdicts/logs.py lists the expected ones):\n"
                    + "\n".join(found[:5]) + ("\n..." if len(found) > 5 else ""),
                    pytrace=False)


def add_to_report(item: pytest.Item, report: pytest.TestReport) -> None:
    """A failure's evidence saved and named in its report; the daemons that
    died during the phase in its user properties."""
    watch = item.stash.get(WATCH, None)
    failed = report.failed and watch is not None and watch.lab is not None
    if failed and watch.lab.gone:
        # the last test's teardown: the lab it failed on went down with the run
        report.sections.append(("ovnlb evidence", "not saved: the lab went down at the end "
                                "of the run (--ovnlb-keep-on-failure keeps it)"))
    elif failed and watch.saved is None:
        # The section holds exactly "saved in DIR": reports read it from there.
        try:
            directory, problems = save(item, watch, report.when, report.longreprtext)
            report.sections.append(("ovnlb evidence", f"saved in {directory}"))
            if problems:
                report.sections.append(("ovnlb evidence not collected", "\n".join(problems)))
        except Exception as exc:  # evidence must never hide the failure itself
            report.sections.append(("ovnlb evidence",
                                    f"could not be saved: {type(exc).__name__}: {exc}"))
    if watch is not None and watch.crashes and watch.saved is not None:
        save_crashes(watch.saved, watch.crashes)  # a later phase's crash: same folder
    if watch is not None and watch.crashes:
        # the run's report counts and names them (plugin/collector.py)
        report.user_properties += [(measure.CRASH, {
            "daemon": c.key, "pid": c.pid, "how": c.how, "test": item.nodeid,
            "phase": report.when, "core": str(c.core) if c.core else None})
            for c in watch.crashes]
        watch.crashes = []


def folder(nodeid: str) -> str:
    """A test's folder name: its node id, made a single path component."""
    return re.sub(r"[^\w.\[\]=+-]+", "_", nodeid.replace("::", "__")).strip("_")[:200]


def _ctl(lab, which: str, *args: str) -> tuple[str, str | None]:
    try:
        done = subprocess.run(lab.ctl_command(which) + list(args), capture_output=True,
                              text=True, timeout=CTL_TIMEOUT)
    except subprocess.TimeoutExpired:
        return "", f"ovn-{which}ctl {args[0]}: no answer within {CTL_TIMEOUT} s"
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines()
        return done.stdout, f"ovn-{which}ctl {' '.join(args)}: {lines[-1] if lines else ''}"
    return done.stdout, None


def save(item: pytest.Item, watch: Watch, phase: str,
         failure: str = "") -> tuple[Path, list[str]]:
    config = item.config
    run = state.of(config)
    base = Path(run.settings.evidence_dir)
    if not base.is_absolute():
        base = Path(config.invocation_params.dir) / base
    directory = base / run.folder / folder(item.nodeid)
    directory.mkdir(parents=True, exist_ok=True)
    watch.saved = directory
    lab = watch.lab
    lbs = getattr(item, "funcargs", {}).get("ovn_lbs")
    created = list(lbs.created) if lbs is not None else []
    vips = sorted({lb.vip for lb in created})
    problems: list[str] = []

    def write(name: str, parts: list[tuple[str, tuple[str, ...]]], vip_lines: bool = False):
        text = ""
        for which, args in parts:
            out, problem = _ctl(lab, which, *args)
            if problem:
                problems.append(problem)
            text += f"# ovn-{which}ctl {' '.join(args)}\n"
            text += (mentioning(out, vips) if vip_lines else out) + "\n"
        (directory / name).write_text(text)

    owner = f'external_ids:{OWNER}="{lab.names.owner}"'
    write("nb-load-balancers.txt",
          [("nb", ("find", "Load_Balancer", owner))]
          + [("nb", ("find", "Load_Balancer_Health_Check", f'vip="{lb.vip_key}"'))
             for lb in created]
          + [("nb", ("--columns=name,load_balancer", "find", table, owner))
             for table in ("Logical_Switch", "Logical_Router")]
          # load balancers attached through a Load_Balancer_Group
          + ([("nb", ("list", "Load_Balancer_Group"))]
             + [("nb", ("--columns=name,load_balancer_group", "find", table, owner))
                for table in ("Logical_Switch", "Logical_Router")]
             if any(getattr(lb, "group", None) for lb in created) else []))
    write("sb-lflows.txt", [("sb", ("lflow-list",))], vip_lines=True)
    write("sb-service-monitors.txt", [("sb", ("list", "Service_Monitor"))])
    # What routers learned of their neighbours: a stale or missing binding
    # sends packets to ovn-controller for resolution instead of forwarding them.
    write("sb-mac-bindings.txt", [("sb", ("list", "MAC_Binding"))])
    save_crashes(directory, watch.crashes)
    problems += lab.evidence(directory, vips, watch.offsets)
    (directory / "failure.txt").write_text(failure)

    placement = getattr(item, "funcargs", {}).get("placement")
    lines = [f"test: {item.nodeid}",
             f"failed in: {phase}",
             f"placement: {placement or '-'}",
             "load balancers: " + (", ".join(
                 f"{lb.name} {lb.vip_key}/{lb.protocol} -> "
                 f"{','.join(s.endpoint for s in lb.servers) or '(none)'} on "
                 f"{'/'.join(lb.attached)}"
                 + (f" through {lb.group}" if getattr(lb, "group", None) else "")
                 for lb in created) or "none"),
             f"versions: {lab.summary}",
             "daemons that died during the test: " + (
                 "; ".join(c.summary for c in watch.crashes) or "none"),
             "log offsets at the test's start (bytes; logs/ holds what follows): "
             + (", ".join(f"{k}={v}" for k, v in sorted(watch.offsets.items()))
                or "none (the lab was built for this test: whole logs)"),
             "not collected: " + ("; ".join(problems) or "nothing"),
             "",
             lab.status()]
    (directory / "README.txt").write_text("\n".join(lines) + "\n")
    return directory, problems


def save_crashes(directory: Path, crashes: list[Crash]) -> None:
    """Per dead daemon, `crashes/<node>_<daemon>/`: its core, moved out of
    the lab (a second crash would overwrite it there), and every thread's
    backtrace from it."""
    for crash in crashes:
        if crash.core is None or not crash.core.exists():
            continue
        out = directory / "crashes" / crash.key.replace("/", "_")
        out.mkdir(parents=True, exist_ok=True)
        crash.core = Path(shutil.move(crash.core, out / crash.core.name))
        if crash.program:
            program, root = crash.program
            (out / "backtrace.txt").write_text(backtrace(program, crash.core, root))
