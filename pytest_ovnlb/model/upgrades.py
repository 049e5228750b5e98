"""OVN's upgrade procedures (its ovn-upgrades.rst) as data: which one a span
of releases takes, the steps each one walks, and what each step may cost the
traffic through load balancers on a datapath.

- **rolling**: ovn-controller on every chassis first, then the databases and
  ovn-northd.  Supported from an LTS to the next LTS or to any release
  between them, and from any release to the next LTS; point releases of one
  series too.
- **fail-safe**, for every other span: `ovn-match-northd-version=true` on
  every chassis (a controller whose version differs from northd's keeps the
  flows it has and processes no change), then the databases and ovn-northd,
  then ovn-controller.  OVN asks for the latest point release of the old
  series first; that package is the packager's to install, not the lab's.
- **downgrade**: a rolling span walked backwards, which OVN does not
  document: the reverse of the rolling order, reported as what it is.

A chassis's OVS goes right after its ovn-controller: a restarted
ovs-vswitchd starts with no flows, and only a controller that processes
changes (not a pinned one) puts them back.
"""

from __future__ import annotations

from dataclasses import dataclass

from pytest_ovnlb.model.versions import Version

PROCEDURES = ("rolling", "fail-safe")
# The lab operations (Lab.upgrade) each procedure walks, in order.
STEPS = {
    "rolling": ("controllers", "ovs", "central"),
    "fail-safe": ("pin", "central", "controllers", "ovs"),
    "downgrade": ("central", "ovs", "controllers"),
}
# What each step does, for reports and messages.
WHAT = {
    "pin": "ovn-match-northd-version=true on every chassis",
    "central": "NB/SB ovsdb-servers (databases converted) and ovn-northd restarted on the target",
    "controllers": "every chassis's ovn-controller restarted on the target",
    "ovs": "every chassis's ovsdb-server and ovs-vswitchd restarted on the target",
}


def is_lts(v: Version) -> bool:
    """22.03 and every two years after it (24.03, 26.03, ...)."""
    return v.minor == 3 and v.major >= 22 and v.major % 2 == 0


def next_lts(v: Version) -> Version:
    """The first LTS series after `v`'s."""
    year = max(22, v.major)
    while year % 2 or (year, 3) <= _series(v):
        year += 1
    return Version(year, 3)


def _series(v: Version) -> tuple[int, int]:
    return (v.major, v.minor)


def documented(source: Version, target: Version) -> str:
    """The procedure OVN documents from `source` to `target`: "rolling",
    "fail-safe", or "downgrade" for a target older than the source."""
    if target < source:
        return "downgrade"
    if _series(target) == _series(source):
        return "rolling"  # a point release of the same series
    lts = next_lts(source)
    if _series(target) == _series(lts):
        return "rolling"
    if is_lts(source) and _series(target) < _series(lts):
        return "rolling"
    return "fail-safe"


def plan(source: Version, target: Version, forced: str | None = None) -> tuple[str, tuple[str, ...]]:
    """(procedure, steps) for an upgrade run; `forced` (a PROCEDURES name)
    overrides the documented choice.  ValueError, one line, for a span that
    cannot be walked."""
    if source == target:
        raise ValueError(f"the upgrade source and target are both OVN {source}: nothing to upgrade")
    procedure = documented(source, target)
    if forced is not None:
        if forced not in PROCEDURES:
            raise ValueError(f"unknown upgrade procedure {forced!r}: one of {', '.join(PROCEDURES)}")
        if procedure == "downgrade":
            raise ValueError(f"OVN {source} to {target} is a downgrade: no procedure can be forced")
        procedure = forced
    return procedure, STEPS[procedure]


def pinned(procedure: str, done: tuple[str, ...]) -> bool:
    """Whether, after steps `done`, the procedure leaves every controller
    pinned to an older northd: between a fail-safe's central and controllers
    steps, where chassis keep their flows and follow no change."""
    return procedure == "fail-safe" and "central" in done and "controllers" not in done


@dataclass(frozen=True)
class Cost:
    """The most a step may cost traffic through a load balancer: the longest
    an established flow waits between two answers, the longest stretch
    without a new connection served (seconds), and whether a new connection
    may fail at all (else every one must be served, if late)."""
    stall: float
    gap: float
    new_may_fail: bool = False
    why: str = ""


# A restarted daemon that is not on the data path costs nothing a client
# notices: a request every 0.2 s may wait one TCP retransmission (0.2 s) or
# one SYN retransmission (1 s) for a new connection.
QUIET = Cost(stall=1.0, gap=1.5)
# Steps whose cost depends on the datapath, with the reason.
COSTS = {
    ("netdev", "ovs"): Cost(
        stall=5.0, gap=5.0, new_may_fail=True,
        why="the userspace datapath lives in ovs-vswitchd: while it restarts and "
            "ovn-controller puts its flows back, nothing is forwarded (measured "
            "here: 1.5 to 3.5 s); its conntrack is lost, and connections go on "
            "because it picks them up mid-stream and dp_hash picks the same server"),
}


def cost(datapath: str, step: str) -> Cost:
    return COSTS.get((datapath, step), QUIET)
