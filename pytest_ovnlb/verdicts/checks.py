"""Verdicts on traffic results, with messages a packager can act on."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

from pytest_ovnlb.traffic.client import Result
from pytest_ovnlb.verdicts import stats
from pytest_ovnlb.model.versions import Version, expects


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


def answers_and_losses(results: Iterable[Result],
                       shares: dict[str, float]) -> tuple[Counter, Counter]:
    """The outcomes of a split (answers, and errors `shares` expects, such
    as a stopped server's refusals), and the lost connections per error
    kind: judged apart, as a lost connection is not a split."""
    counts, lost = Counter(), Counter()
    for r in results:
        if r.ok or outcome(r) in shares:
            counts[outcome(r)] += 1
        else:
            lost[r.error] += 1
    return counts, lost


def summary(results: Sequence[Result]) -> str:
    counts = tally(results)
    return ", ".join(f"{k}={v}" for k, v in sorted(counts.items())) + f" (n={len(results)})"


def dp_hash_shares(targets: Sequence[str], ovs_version: Version) -> dict[str, float]:
    """Expected share of new connections per server, in the VIP's server
    order: OVN's select group uses dp_hash, whose slot table gives the first
    buckets the extra slots when k does not divide it."""
    legacy = not expects("ovs_dp_hash_4_slots_per_bucket", ovs_version)
    return dict(zip(targets, stats.dp_hash_shares(len(targets), legacy=legacy)))


class Settled:
    """A stop rule for `fresh(..., stop=)`.  `planned` counts answers
    (counted()): the lost connections come on top, so the split gets its
    planned sample.  True once the verdict fails whatever the rest would do
    (a server outside `shares`, too skewed counts, or more lost than the
    loss test allows over the plan), so a broken build fails after a round
    or two of connections instead of all of them; and, asked with exactly
    one of `looks` answers (which `fresh` cuts its batches to reach), True
    when the counts pass that interim look (stats.look_passes)."""

    def __init__(self, shares: dict[str, float], planned: int, alpha: float = stats.ALPHA):
        self.shares, self.planned, self.alpha = shares, planned, alpha
        self.looks = stats.looks(planned)

    def counted(self, results: Sequence[Result]) -> int:
        return sum(answers_and_losses(results, self.shares)[0].values())

    def __call__(self, results: Sequence[Result]) -> bool:
        counts, lost = answers_and_losses(results, self.shares)
        lost = sum(lost.values())
        return (stats.failure_settled(counts, self.shares, self.planned, self.alpha)
                or stats.loss_settled(lost, self.planned)
                or stats.look_passes(counts, self.shares, self.planned, self.alpha, lost))


def distribution(results: Sequence[Result], shares: dict[str, float],
                 alpha: float = stats.ALPHA, planned: int | None = None) -> stats.Verdict:
    """The verdict on results against shares: the split of the answers
    (chi-square) and the lost connections (a loss test), each on its own;
    `planned`: the answers asked for, when sampling may have stopped early
    (see Settled)."""
    counts, lost = answers_and_losses(results, shares)
    return stats.chi_square_test(counts, shares, alpha, planned=planned, lost=lost)


def failure(verdict: stats.Verdict, split: str) -> str:
    """What a failed distribution check says first: `split` when the split
    failed, the lost connections when too many were lost, or both."""
    why = [split] if verdict.split_passed is False else []
    if not verdict.losses.passed:
        why.append(verdict.losses.report())
    return "; ".join(why)


def peers_by_server(results: Iterable[Result]) -> dict[str, set[str]]:
    """Which source addresses each server saw."""
    seen: dict[str, set[str]] = {}
    for r in results:
        if r.ok:
            seen.setdefault(r.target, set()).add(r.peer)
    return seen


def served(results: Sequence[Result], lb, placement: str, client: str, lab,
           how: str = "the VIP") -> dict[str, set[str]]:
    """Assert that every connection was served and every server used;
    return the source addresses each server saw."""
    assert all(r.ok for r in results) and tally(results).keys() == set(lb.targets), (
        f"{how}: connections failed or a server unused: " + context(
            lb, placement, client, f"every connection served, by {sorted(lb.targets)}",
            results, lab))
    return peers_by_server(results)


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
