"""Judging traffic held across an upgrade, step by step, from every request
counted (traffic/agent.py `Holds`): long-lived connections and UDP flows
that must not break, stall beyond the step's bound or move to another
server; a stream of new connections that must keep being served.

Time is cut into windows: "before" (from the start of the traffic to the
first step), then one per step, from the moment it begins to the moment the
next one does (the last to the end of the traffic).  A stall or gap that
spans windows counts in each for the part of it inside.  A connection that
broke is judged where it broke, and not after.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pytest_ovnlb.model.upgrades import Cost

# [sent, answered, server, error]: agent.Holds' event
Event = list


@dataclass
class Flow:
    id: str
    kind: str  # "tcp" (one long-lived connection), "udp" (one source port), "new"
    where: str  # placement and family, for messages: "router ipv4"
    events: list[Event] = field(default_factory=list)
    refused_is_wrong: bool = False  # a health-checked VIP: refused = an offline server used


@dataclass
class Window:
    name: str
    start: float
    end: float
    cost: Cost


@dataclass
class StepVerdict:
    name: str
    figures: dict
    failures: list[str]

    @property
    def passed(self) -> bool:
        return not self.failures


def _gaps(times: list[float], window: Window, stop: float) -> list[float]:
    """The stretches between consecutive `times` (sorted), the last one up
    to `stop`, each cut to the part of it inside `window`: a stall that
    spans the start of a step is that step's from there on."""
    cut = [min(b, window.end) - max(a, window.start)
           for a, b in zip(times, times[1:] + [stop])]
    return [c for c in cut if c > 0]


def judge(flows: list[Flow], windows: list[Window]) -> list[StepVerdict]:
    """One verdict per window."""
    stop = windows[-1].end
    verdicts = []
    for w in windows:
        failures: list[str] = []
        held = {"flows": 0, "broken": 0, "moved": 0, "requests": 0, "answered": 0,
                "longest_stall": 0.0}
        new = {"started": 0, "served": 0, "longest_gap": 0.0}
        for f in flows:
            judge_one = _judge_new if f.kind == "new" else _judge_held
            judge_one(f, w, stop, held if f.kind != "new" else new, failures)
        new["fraction"] = round(new["served"] / new["started"], 4) if new["started"] else None
        held["longest_stall"] = round(held["longest_stall"], 3)
        new["longest_gap"] = round(new["longest_gap"], 3)
        verdicts.append(StepVerdict(w.name, {
            "seconds": round(w.end - w.start, 3), "held": held, "new": new,
            "bound": {"stall": w.cost.stall, "gap": w.cost.gap,
                      "new_may_fail": w.cost.new_may_fail, "why": w.cost.why}},
            failures))
    return verdicts


def _longest(f: Flow, w: Window, stop: float) -> float:
    """The longest stretch without an answer inside `w`; the traffic's
    start counts as an answer (a flow silent from its start stalls too)."""
    answered = sorted(e[1] for e in f.events if e[3] is None)
    first = f.events[0][0] if f.events else w.start
    return max(_gaps([first] + answered, w, stop), default=0.0)


def _judge_new(f: Flow, w: Window, stop: float, new: dict, failures: list[str]) -> None:
    inside = [e for e in f.events if w.start <= e[0] < w.end]
    lost = [e for e in inside if e[3] is not None]
    longest = _longest(f, w, stop)
    new["started"] += len(inside)
    new["served"] += len(inside) - len(lost)
    new["longest_gap"] = max(new["longest_gap"], longest)
    if longest > w.cost.gap:
        failures.append(f"{f.where}: no new connection served for {longest:.1f} s "
                        f"(bound {w.cost.gap:g} s)")
    refused = [e for e in lost if e[3] == "refused"]
    if f.refused_is_wrong and refused:
        failures.append(f"{f.where}, health-checked VIP: {len(refused)} new "
                        "connections refused (an offline server back in rotation)")
    elif lost and not w.cost.new_may_fail:
        kinds = sorted({e[3] for e in lost})
        failures.append(f"{f.where}: {len(lost)} of {len(inside)} new connections "
                        f"failed ({', '.join(kinds)})")


def _judge_held(f: Flow, w: Window, stop: float, held: dict, failures: list[str]) -> None:
    # a TCP connection ends at its first error: judged up to there
    broke = next((e for e in f.events if e[3] is not None), None) if f.kind == "tcp" else None
    if broke is not None:
        if broke[0] < w.start:
            return
        stop = broke[1]
    inside = [e for e in f.events if w.start <= e[0] < w.end]
    longest = _longest(f, w, stop)
    held["flows"] += 1
    held["requests"] += len(inside)
    held["answered"] += sum(1 for e in inside if e[3] is None)
    held["longest_stall"] = max(held["longest_stall"], longest)
    what = "connection" if f.kind == "tcp" else "UDP flow"
    if broke is not None and broke[0] < w.end:
        held["broken"] += 1
        failures.append(f"{f.where}: long-lived {what} {f.id} broke: {broke[3]}")
    elif longest > w.cost.stall:
        failures.append(f"{f.where}: long-lived {what} {f.id} stalled {longest:.1f} s "
                        f"(bound {w.cost.stall:g} s)")
    servers = [e[2] for e in f.events if e[3] is None]
    moved = [e[2] for e in inside if e[3] is None and e[2] != servers[0]]
    if moved:
        held["moved"] += 1
        failures.append(f"{f.where}: long-lived {what} {f.id} moved from "
                        f"{servers[0]} to {moved[0]}")
