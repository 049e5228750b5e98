"""An upgrade run: which path (source and target installations, the
procedure OVN documents for the span), and the walk that takes a lab along
it with traffic held through its load balancers, judged step by step
(verdicts/upgrade.py).

The walk holds, from each placement's served client and in each address
family, a long-lived TCP connection and a UDP flow (a request every
INTERVAL), and a stream of new connections (one every STREAM) through a
load balancer of its own; plus a stream to a health-checked VIP one of whose
two servers is stopped, which must stay out of rotation.  Before the first
step and after each, the traffic runs for SETTLE seconds, then new
connections through each placement are split as dp_hash shares them, under
the versions now in charge.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from pytest_ovnlb.engine import install
from pytest_ovnlb.engine.install import Install
from pytest_ovnlb.engine.ovsdb import Southbound
from pytest_ovnlb.errors import LabError
from pytest_ovnlb.model import upgrades
from pytest_ovnlb.model.placements import PLACEMENTS
from pytest_ovnlb.traffic.harness import LoadBalancers
from pytest_ovnlb.verdicts import Unmet, checks, monitors, stats
from pytest_ovnlb.verdicts import upgrade as judge

INTERVAL = 0.2
STREAM = 0.1
# A measurement window, not a wait: how long the traffic is watched once a
# step has returned (the lab whole again), so a late effect of the step
# (a flow table rebuilt, a probe due) falls inside the step it belongs to.
SETTLE = 3.0
DISTRIBUTION_SERVERS = 2
HEALTH_CHECK = {"interval": 1, "timeout": 1, "failure_count": 2, "success_count": 1}
STEP_TIMEOUT = 60.0


@dataclass(frozen=True)
class Path:
    source: Install
    target: Install
    procedure: str
    steps: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"{self.source.ovn_version} -> {self.target.ovn_version} ({self.procedure})"

    def describe(self) -> dict:
        return {"from": str(self.source.ovn_version), "to": str(self.target.ovn_version),
                "from_ovs": str(self.source.ovs_version),
                "to_ovs": str(self.target.ovs_version),
                "from_root": self.source.root, "to_root": self.target.root,
                "procedure": self.procedure, "steps": list(self.steps)}


def plan(source: str, target: str | None, procedure: str | None = None) -> Path:
    """The path from installation `source` (a root filesystem, "/" this
    machine's) to `target` (None or "/": this machine's); one line for a
    source that is not an OVN installation, the same version, or a
    procedure that cannot be forced."""
    try:
        src = install.at(source)
    except LabError as exc:
        raise LabError(f"--ovn-upgrade-from={source}: not an OVN installation: {exc}") from None
    dst = install.find(target)
    try:
        chosen, steps = upgrades.plan(src.ovn_version, dst.ovn_version, procedure)
    except ValueError as exc:
        raise LabError(str(exc)) from None
    return Path(src, dst, chosen, steps)


def upgrade_path(settings) -> Path:
    """The run's upgrade path from its settings (options.Settings)."""
    if not settings.upgrade_from:
        raise LabError("--ovn-upgrade-procedure needs --ovn-upgrade-from")
    if settings.backend != "netns":
        raise LabError(f"--ovn-upgrade-from: the {settings.backend} backend does not upgrade "
                       "daemons; upgrade runs use the netns backend")
    if settings.ovn_central_root or settings.ovn_chassis_root:
        raise LabError("--ovn-upgrade-from walks every daemon from the source to the target: "
                       "drop --ovn-central-root/--ovn-chassis-root")
    return plan(settings.upgrade_from, settings.ovn_root, settings.upgrade_procedure)


def walk_quietly(lab, path: Path) -> None:
    """The path's steps on `lab`, without traffic (a lab the suite then runs on)."""
    for i, step in enumerate(path.steps):
        lab.upgrade(path.target.root, step, timeout=STEP_TIMEOUT,
                    pinned=upgrades.pinned(path.procedure, path.steps[:i + 1]))


@dataclass
class Outcome:
    path: Path
    verdicts: list[judge.StepVerdict]
    seconds: float

    @property
    def failures(self) -> list[str]:
        return [f"{v.name}: {f}" for v in self.verdicts for f in v.failures]

    def describe(self) -> dict:
        return {**self.path.describe(), "seconds": round(self.seconds, 3),
                "passed": not self.failures,
                "steps_judged": [{"step": v.name, "what": upgrades.WHAT.get(v.name, ""),
                                  "passed": v.passed, "failures": v.failures, **v.figures}
                                 for v in self.verdicts]}


class Walk:
    def __init__(self, lab, hub, path: Path):
        self.lab, self.hub, self.path = lab, hub, path
        self.flows: dict[str, judge.Flow] = {}
        self.nodes: list[str] = []  # the clients holding flows
        self.split: dict[str, tuple] = {}  # placement -> (its TCP load balancer, client)
        self.health: dict = {}  # the health-checked servers' wanted statuses
        self.distributions: dict[str, dict] = {}  # step -> its splits' figures

    def run(self) -> Outcome:
        started = time.monotonic()
        self._hold()
        datapath = self.lab.versions.datapath
        windows: list[judge.Window] = []
        name, mark = "before", time.monotonic()
        extra = {"before": self._settle("before")}
        for i, step in enumerate(self.path.steps, 1):
            windows.append(judge.Window(name, mark, time.monotonic(),
                                        upgrades.cost(datapath, name)))
            name, mark = step, time.monotonic()
            try:
                self.lab.upgrade(self.path.target.root, step, timeout=STEP_TIMEOUT,
                                 pinned=upgrades.pinned(self.path.procedure,
                                                        self.path.steps[:i]))
            except LabError as exc:
                extra[step] = [f"the lab did not come back: {exc}"]
                break
            extra[step] = self._settle(step)
        windows.append(judge.Window(name, mark, time.monotonic(), upgrades.cost(datapath, name)))
        for node in self.nodes:
            for fid, events in self.hub.agent(node).unhold().items():
                self.flows[fid].events = events
        verdicts = judge.judge(list(self.flows.values()), windows)
        for v in verdicts:
            v.failures += extra.get(v.name, [])
            v.figures.update(self.distributions.get(v.name, {}))
        return Outcome(self.path, verdicts, time.monotonic() - started)

    # --- traffic -----------------------------------------------------------
    def _hold(self) -> None:
        roles = self.lab.topology.roles
        per_node: dict[str, list[dict]] = {}
        for p in PLACEMENTS.values():
            if not roles.datapath(p.name):
                continue
            for family in self.lab.topology.families:
                lbs = LoadBalancers(self.lab, self.hub, p.name, family)
                node = roles.client(p.served)
                if node is None:
                    continue
                where = f"{p.name} ipv{family}"
                tcp = lbs(lbs.servers(DISTRIBUTION_SERVERS))
                udp = lbs(lbs.servers(DISTRIBUTION_SERVERS), protocol="udp")
                if family == 4:
                    self.split[p.name] = (tcp, node)
                for kind, lb, every in (("tcp", tcp, INTERVAL), ("udp", udp, INTERVAL),
                                        ("new", tcp, STREAM)):
                    fid = f"{p.name}{family}-{kind}"
                    self.flows[fid] = judge.Flow(fid, kind, where)
                    per_node.setdefault(node, []).append(
                        {"id": fid, "kind": kind, "host": lb.vip, "port": lb.port,
                         "interval": every, "timeout": 2.0 if kind == "new" else 30.0})
        self._health(per_node)
        self.nodes = list(per_node)
        for node, flows in per_node.items():
            self.hub.agent(node).hold(flows)

    def _health(self, per_node: dict[str, list[dict]]) -> None:
        """A health-checked VIP on the switch with one of its two servers
        stopped, offline before the traffic starts."""
        lbs = LoadBalancers(self.lab, self.hub, "switch", 4)
        # servers of their own: stopping one must not touch the other VIPs'
        dead, alive = servers = lbs.servers(DISTRIBUTION_SERVERS + 2)[-2:]
        lb = lbs(servers, health_check=HEALTH_CHECK)
        self.hub.stop(dead)
        self.health = {dead: "offline", alive: "online"}
        self._health_status("before the upgrade")
        node = self.lab.topology.roles.client("internal")
        self.flows["health-new"] = judge.Flow("health-new", "new", "switch ipv4, health-checked",
                                              refused_is_wrong=True)
        per_node.setdefault(node, []).append(
            {"id": "health-new", "kind": "new", "host": lb.vip, "port": lb.port,
             "interval": STREAM, "timeout": 2.0})

    def _health_status(self, when: str) -> None:
        sb = Southbound(self.lab.sb_remote(), where=self.lab.central)
        try:
            monitors.wait_status(sb, self.lab.names, self.health, "tcp", 15.0,
                                 f"health check {when}")
        finally:
            sb.close()

    def _settle(self, step: str) -> list[str]:
        """The traffic watched for SETTLE seconds more (a measurement window:
        the agents count every request meanwhile); then the health check's
        statuses unchanged, and new connections through each placement split
        as dp_hash shares them under the versions now in charge."""
        time.sleep(SETTLE)
        failures = []
        try:
            self._health_status(f"after {step}")
        except Unmet as exc:  # the statuses changed
            failures.append(str(exc).splitlines()[0])
        figures = {}
        for placement, (lb, node) in self.split.items():
            shares = checks.dp_hash_shares(lb.targets, self.lab.versions.ovs)
            planned = stats.samples_for(len(lb.targets))
            results = self.hub.connect(node, lb.vip, lb.port, planned,
                                     concurrency=checks.SAMPLING_CONCURRENCY,
                                     stop=checks.Settled(shares, planned))
            verdict = checks.distribution(results, shares, planned=planned)
            figures[placement] = {"n": verdict.n, "p": round(float(verdict.p), 6),
                                  "passed": bool(verdict.passed),
                                  "counts": {k: int(v) for k, v in verdict.counts.items()}}
            if not verdict.passed:
                failures.append(f"{placement} ipv4: new connections do not split as dp_hash "
                                f"shares them under {self.lab.versions.summary}: "
                                + checks.failure(verdict, "split") + f"\n{verdict.report()}")
        self.distributions[step] = {"distribution": figures}
        return failures
