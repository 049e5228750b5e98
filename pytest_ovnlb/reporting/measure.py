"""Measurements a test takes for the conformance report.

Stored in the test item's `user_properties` as `(KEY, {...})` with plain
values only, so pytest-xdist ships them to the controller with each report;
the controller moves them into the report and out of the JUnit file.

    def test_x(ovn_lbs, ovn_hub, ovnlb_measure):
        verdict = checks.distribution(results, shares)
        ovnlb_measure.distribution(verdict, client="vm3")

or, without a fixture argument, `measure.current().distribution(...)`: the
measurements of the test running in this process (one at a time per process,
xdist worker or not).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

from pytest_ovnlb.verdicts.stats import Verdict

MEASUREMENT = "ovnlb:measurement"
META = "ovnlb:meta"  # the test's file, function, placement, parameters
IMPLEMENTATION = "ovnlb:implementation"  # versions read from the test's lab
# Path of a failed test's evidence folder (logs, captures, database dumps),
# for whoever collects one: item.user_properties.append((EVIDENCE, path)).
EVIDENCE = "ovnlb:evidence"
CRASH = "ovnlb:crash"  # a lab daemon that died during the test
KEYS = (MEASUREMENT, META, IMPLEMENTATION, EVIDENCE, CRASH)


def _number(x: float) -> float | None:
    """JSON has no infinity: an impossible outcome's chi-square is null."""
    return None if math.isinf(x) or math.isnan(x) else float(x)


class Measurements:
    """The `ovnlb_measure` fixture's value: appends measurements to one item."""

    def __init__(self, item):
        self._item = item

    def _add(self, data: dict) -> None:
        self._item.user_properties.append((MEASUREMENT, data))

    def distribution(self, verdict: Verdict, label: str = "", **context) -> None:
        """Observed counts per backend (and per expected error), expected
        shares, the chi-square statistic, p and the verdict; the lost
        connections per error kind and their own verdict."""
        losses = verdict.losses
        self._add({
            "kind": "distribution", "label": label,
            "counts": {k: int(v) for k, v in verdict.counts.items()},
            "shares": {k: float(v) for k, v in verdict.shares.items()},
            "n": verdict.n, "chi2": _number(verdict.chi2), "df": verdict.df,
            "p": float(verdict.p), "alpha": verdict.alpha, "passed": bool(verdict.passed),
            "splitPassed": verdict.split_passed,
            # sampling stopped before `planned` once the verdict was settled
            "planned": getattr(verdict, "planned", None),
            "lost": {k: int(v) for k, v in losses.kinds.items()},
            "loss": {"tolerance": losses.tolerance, "alpha": losses.alpha,
                     "p": float(losses.p), "passed": bool(losses.passed)},
            "context": {k: str(v) for k, v in context.items()},
        })

    def sources(self, seen: Mapping[str, Iterable[str]],
                expected: Mapping[str, Iterable[str]] | None = None,
                label: str = "", **context) -> None:
        """Source addresses each backend saw, and those expected."""
        self._add({
            "kind": "sources", "label": label,
            "seen": {k: sorted(v) for k, v in seen.items()},
            "expected": None if expected is None else {k: sorted(v) for k, v in expected.items()},
            "context": {k: str(v) for k, v in context.items()},
        })

    def upgrade(self, walk: dict) -> None:
        """An upgrade walk (upgrade.Outcome.describe()): the path and, per
        step, the figures of the traffic held through it and its verdict."""
        self._add({"kind": "upgrade", **walk})


# The item whose test runs in this process (set by the plugin).  A module
# global, not the config's stash: current() is called without arguments
# (pytest_ovnlb/case.py, conformance tests), and one test runs at a time in
# a process.
_running = None


def running(item) -> None:
    global _running
    _running = item


def current() -> Measurements:
    """The measurements of the test running now."""
    if _running is None:
        raise RuntimeError("measure.current() outside a running test")
    return Measurements(_running)
