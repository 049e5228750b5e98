"""Verdicts on traffic results, with messages a packager can act on."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from pytest_ovnlb.traffic.client import Result
from pytest_ovnlb.verdicts import stats
from pytest_ovnlb.verdicts.versions import Version, expects


# New connections in flight while a distribution sample is taken: 64 makes
# about 1.5 times the connections per second of 16 through a switch or a
# gateway router LB (idle 2-core machine).  A timeout once seen in a soak at
# 64 was a server left holding an earlier test's connection (Hub.reset).
SAMPLING_CONCURRENCY = 64


def outcome(result: Result) -> str:
    """`vm1:8000` for an answer, `error:timeout` (refused, reset...) otherwise."""
    return result.target if result.ok else f"error:{result.error}"


def tally(results: Iterable[Result]) -> Counter:
    return Counter(outcome(r) for r in results)


def summary(results: Sequence[Result]) -> str:
    counts = tally(results)
    return ", ".join(f"{k}={v}" for k, v in sorted(counts.items())) + f" (n={len(results)})"


def dp_hash_shares(targets: Sequence[str], ovs_version: Version) -> dict[str, float]:
    """Expected share of new connections per backend, in the VIP's backend
    order: OVN's select group uses dp_hash, whose slot table gives the first
    buckets the extra slots when k does not divide it."""
    legacy = not expects("ovs_dp_hash_4_slots_per_bucket", ovs_version)
    return dict(zip(targets, stats.dp_hash_shares(len(targets), legacy=legacy)))


class Settled:
    """A stop rule for `fresh(..., stop=)`: True once the distribution
    verdict over `planned` samples fails whatever the rest would do (an
    error or a backend outside `shares`, or too skewed counts), so a broken
    build fails after a round of connections instead of all of them; and,
    asked with exactly one of `looks` samples (which `fresh` cuts its
    batches to reach), True when the counts pass that interim look
    (stats.look_passes)."""

    def __init__(self, shares: dict[str, float], planned: int, alpha: float = stats.ALPHA):
        self.shares, self.planned, self.alpha = shares, planned, alpha
        self.looks = stats.looks(planned)

    def __call__(self, results: Sequence[Result]) -> bool:
        counts = tally(results)
        return (stats.failure_settled(counts, self.shares, self.planned, self.alpha)
                or stats.look_passes(counts, self.shares, self.planned, self.alpha))


def distribution(results: Sequence[Result], shares: dict[str, float],
                 alpha: float = stats.ALPHA, planned: int | None = None) -> stats.Verdict:
    """Chi-square verdict of results (answers and errors alike) against
    shares; `planned`: the sample size asked for, when sampling may have
    stopped early (see Settled)."""
    return stats.chi_square_test(tally(results), shares, alpha, planned=planned)


def peers_by_backend(results: Iterable[Result]) -> dict[str, set[str]]:
    """Which source addresses each backend saw."""
    seen: dict[str, set[str]] = {}
    for r in results:
        if r.ok:
            seen.setdefault(r.target, set()).add(r.peer)
    return seen


def served(results: Sequence[Result], lb, placement: str, client: str, lab,
           how: str = "the VIP") -> dict[str, set[str]]:
    """Assert that every connection was served and every backend used;
    return the source addresses each backend saw."""
    assert all(r.ok for r in results) and tally(results).keys() == set(lb.targets), (
        f"{how}: connections failed or a backend unused: " + context(
            lb, placement, client, f"every connection served, by {sorted(lb.targets)}",
            results, lab))
    return peers_by_backend(results)


def context(lb, placement: str, client: str, expected, observed, lab) -> str:
    """The one shape of a conformance failure message: which VIP, where it
    is placed, from which client, expected versus observed, and which
    OVN/OVS ran it.  `observed` may be traffic results (summarised)."""
    if isinstance(observed, (list, tuple)) and observed and isinstance(observed[0], Result):
        observed = summary(observed)
    group = f" through Load_Balancer_Group {lb.group}" if getattr(lb, "group", None) else ""
    where = (f"VIP {lb.vip_key}/{lb.protocol} ({placement} placement, on "
             f"{'/'.join(lb.attached) or 'nothing'}{group})" if lb is not None
             else f"{placement} placement")
    return (f"{where}, client {client}: expected {expected}; observed {observed} "
            f"[{lab.summary}]")
