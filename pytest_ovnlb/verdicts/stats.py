"""Judge whether a load balancer spreads new connections as expected.

Each server's connection count is compared with its expected share using
Pearson's chi-square goodness-of-fit test.  The expected shares come either
from a plain uniform split or from the way Open vSwitch maps dp_hash values
to select-group buckets, which is what OVN load balancers use.  Connections
that got no answer are not part of the split: they are judged on their own
against a tolerated loss rate (loss_test()).

Standard library only: this module runs inside test environments where
scipy is not guaranteed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Mapping, Sequence

# A strict default: a conformance suite that runs many times a day must not
# fail on chance alone.
ALPHA = 1e-6
# Each distribution check must catch every alternative of alternatives()
# with at least this probability.
POWER = 0.9
# The interim looks: a quarter, half and three quarters of the way through a
# check, a chi2 below that look's look_bound() ends sampling with a pass (a
# futility stop).  A look can only turn a rejection into a pass, never a pass
# into a rejection, so the false-alarm rate stays at most ALPHA.  Each look
# misses, with probability at most LOOK_MISS, a wrong split that the full
# test catches at least half the time.
LOOKS = (0.25, 0.5, 0.75)
LOOK_MISS = 0.02
# Per server count k, the samples a distribution check plans: the fewest
# (a multiple of 100) giving POWER at ALPHA, interim looks included, against
# every alternative for k under both OVS slot rules; for k = 2 also the first
# whose exact false-alarm rate (binomial) is at most ALPHA, as the discrete
# statistic's swings around ALPHA with N (samples_needed(); tests/test_stats.py
# checks each is still the smallest).
PLANNED_SAMPLES = {2: 500, 3: 5700, 5: 5300}
# Server counts the conformance suite balances over.
SUITE_K = (2, 3, 5)
# Lost connections (no answer: a timeout, a reset...) are judged apart from
# the split: a check fails when more are lost than a loss rate of
# LOSS_TOLERANCE explains, a one-sided exact binomial test at LOSS_ALPHA.  A
# shared cluster under load loses the odd SYN or reply (a connection is lost
# only when the kernel's retransmission is lost too); a build that drops
# connections loses far more than 1 in 100.  LOSS_ALPHA is far above ALPHA:
# a false alarm costs a rerun, and the test is exact, not approximate.
LOSS_TOLERANCE = 0.01
LOSS_ALPHA = 0.001
# Loss rates the README states the loss test's power against.
LOSS_RATES = (0.03, 0.05)

# OVS caps the dp_hash slot table at 256 entries (MAX_SELECT_GROUP_HASH_VALUES).
MAX_HASH_VALUES = 256
# OpenFlow bucket weights are 16-bit.
MAX_WEIGHT = 0xFFFF


def chi2_sf(x: float, df: int) -> float:
    """P(X >= x) for a chi-square variable X with integer df >= 1.

    Closed form for integer df.  All terms are positive, so there is no
    cancellation; summing them in log space keeps tiny p-values (1e-30 and
    below) accurate instead of underflowing.
    """
    if not isinstance(df, int) or df < 1:
        raise ValueError(f"df must be an integer >= 1, got {df!r}")
    if math.isnan(x):
        raise ValueError("x is NaN")
    if x <= 0:
        return 1.0
    if math.isinf(x):
        return 0.0
    h = x / 2.0
    log_h = math.log(h)
    if df % 2 == 0:
        # exp(-h) * sum_{i < df/2} h^i / i!
        logs = [i * log_h - math.lgamma(i + 1) for i in range(df // 2)]
        head = 0.0
    else:
        # erfc(sqrt(h)) + exp(-h) * sum_{i=1}^{(df-1)/2} h^(i-1/2) / Gamma(i+1/2)
        logs = [(i - 0.5) * log_h - math.lgamma(i + 0.5)
                for i in range(1, (df - 1) // 2 + 1)]
        head = math.erfc(math.sqrt(h))
    if not logs:
        return head
    top = max(logs)
    tail = math.exp(top - h + math.log(sum(math.exp(v - top) for v in logs)))
    return min(1.0, head + tail)


@lru_cache(maxsize=None)
def chi2_isf(p: float, df: int) -> float:
    """The x with chi2_sf(x, df) == p: the critical value of a test at level p."""
    if not 0 < p < 1:
        raise ValueError(f"p must be in (0, 1), got {p}")
    lo, hi = 0.0, 1.0
    while chi2_sf(hi, df) > p:
        hi *= 2
    for _ in range(200):  # bisection to double precision
        mid = (lo + hi) / 2
        if mid in (lo, hi):
            break
        lo, hi = (mid, hi) if chi2_sf(mid, df) > p else (lo, mid)
    return hi


def ncx2_sf(x: float, df: int, nc: float) -> float:
    """P(X >= x) for a non-central chi-square X (integer df, non-centrality nc).

    A Poisson(nc/2) mixture of central chi-square variables with df + 2j
    degrees of freedom, summed until the Poisson weights left are below 1e-17.
    """
    if nc < 0:
        raise ValueError(f"non-centrality must be >= 0, got {nc}")
    if nc == 0:
        return chi2_sf(x, df)
    half = nc / 2
    # Sum outwards from the Poisson mode, where the weights are largest.
    mode = int(half)
    total = 0.0
    for step in (1, -1):
        j = mode if step == 1 else mode - 1
        while j >= 0:
            weight = math.exp(j * math.log(half) - half - math.lgamma(j + 1))
            total += weight * chi2_sf(x, df + 2 * j)
            if weight < 1e-17 and abs(j - half) > math.sqrt(half):
                break
            j += step
    return min(1.0, total)


def ncx2_ppf(q: float, df: int, nc: float) -> float:
    """The x with P(X < x) == q for a non-central chi-square X (bisection)."""
    if not 0 < q < 1:
        raise ValueError(f"q must be in (0, 1), got {q}")
    lo, hi = 0.0, 1.0
    while 1 - ncx2_sf(hi, df, nc) < q:
        hi *= 2
    while hi - lo > 1e-9 * hi:
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if 1 - ncx2_sf(mid, df, nc) < q else (lo, mid)
    return hi


def uniform_shares(k: int) -> list[float]:
    """k equal shares."""
    if k < 1:
        raise ValueError(f"need at least one server, got k={k}")
    return [1.0 / k] * k


def dp_hash_slots(weights: Sequence[int] | int, legacy: bool = False) -> list[int]:
    """Number of dp_hash slots OVS gives each bucket of a select group.

    A mirror of group_setup_dp_hash_table() in ofproto/ofproto-dpif.c (Open
    vSwitch 2.10 and later).  OVS hashes each new flow, masks the hash down to
    a power-of-two slot table and maps each slot to one bucket, so a bucket's
    share of traffic is its slot count over the table size, not its weight
    over the total weight.

    `weights` are the OpenFlow bucket weights in bucket order (OVN gives every
    server weight 100); an int k means k equal weights.

    The table size changed in OVS 3.5.0 (backported to 3.1.6, 3.2.4, 3.3.3
    and 3.4.1): it is now at least 4 slots per bucket.  Set legacy=True for
    older releases, where it was only rounded up from total/min weight.
    Both use at least 16 slots, so up to 4 equal buckets are unaffected.

    Raises ValueError where OVS would not use dp_hash for the group and falls
    back to its default selection method, which this model does not cover.
    """
    if isinstance(weights, int):
        weights = [1] * weights
    weights = list(weights)
    n_buckets = len(weights)
    if n_buckets == 0:
        raise ValueError("a select group without buckets: OVS does not use dp_hash")
    for w in weights:
        if not isinstance(w, int) or not 0 <= w <= MAX_WEIGHT:
            raise ValueError(f"bucket weights must be integers 0..{MAX_WEIGHT}, got {w!r}")
    total = sum(weights)
    if total == 0:
        raise ValueError("all bucket weights are zero: OVS does not use dp_hash")

    # Enough slots for the lightest bucket to get at least one.
    min_weight = min(w for w in weights if w > 0)
    min_slots = -(-total // min_weight)
    if not legacy:
        min_slots = max(min_slots, min(4 * n_buckets, MAX_HASH_VALUES))
    n_hash = max(16, 1 << (min_slots - 1).bit_length())
    # Same limit whether dp_hash is the implicit default or, as OVN does,
    # requested with selection_method=dp_hash.
    if n_hash > MAX_HASH_VALUES:
        raise ValueError(
            f"{n_buckets} buckets with weights {weights} need {n_hash} dp_hash "
            f"values, over the OVS limit of {MAX_HASH_VALUES}; OVS falls back "
            "to its default hash method, whose shares this model does not cover")

    # Webster (Sainte-Lague) apportionment, as OVS does it: each slot goes to
    # the bucket with the highest weight/divisor, divisors 1, 3, 5, ...; ties
    # go to the earlier bucket.  Python floats are IEEE doubles like the C
    # code, so ties break the same way.
    hits = [0] * n_buckets
    divisor = [1] * n_buckets
    value = [float(w) for w in weights]
    for _ in range(n_hash):
        winner = 0
        for i in range(1, n_buckets):
            if value[i] > value[winner]:
                winner = i
        hits[winner] += 1
        divisor[winner] += 2
        value[winner] = weights[winner] / divisor[winner]
    return hits


def dp_hash_shares(weights: Sequence[int] | int, legacy: bool = False) -> list[float]:
    """Share of new connections each bucket gets under OVS dp_hash selection.

    For example 3 equal servers get 6/16, 5/16 and 5/16, not 1/3 each.
    See dp_hash_slots() for the model and its limits.
    """
    hits = dp_hash_slots(weights, legacy=legacy)
    n_hash = sum(hits)
    return [h / n_hash for h in hits]


# --- power ------------------------------------------------------------------

def alternatives(k: int, legacy: bool = False,
                 informative: bool = False) -> dict[str, list[float]]:
    """The wrong splits of k equal servers each distribution check must
    catch with POWER, as shares in server order, against the dp_hash shares
    of one OVS slot rule: 1/k shares where both slot rules agree (k <= 4;
    the slot model itself is in question), the other OVS slot rule where
    they differ (k >= 5), one server doubled (twice its expected share,
    relative to the others), one server missing (its share spread over the
    others); for the last two, the server whose change is hardest to see.
    Alternatives equal to the expected shares are left out.  With
    informative=True, 1/k shares where the rules differ too (shown in the
    power table, not required)."""
    p0 = dp_hash_shares(k, legacy=legacy)
    found: dict[str, list[float]] = {}
    if k < 2:
        return found
    other = dp_hash_shares(k, legacy=not legacy)
    rules_agree = other == p0
    for name, p1 in (("uniform shares", uniform_shares(k)), ("other OVS slot rule", other)):
        if name == "uniform shares" and not (rules_agree or informative):
            continue
        if any(abs(a - b) > 1e-12 for a, b in zip(p0, p1)):
            found[name] = p1

    def hardest(changed):
        return min(changed, key=lambda p1: noncentrality(p0, p1, 1))

    doubled = []
    missing = []
    for i in range(k):
        w = [2 * s if j == i else s for j, s in enumerate(p0)]
        doubled.append([x / sum(w) for x in w])
        missing.append([0.0 if j == i else s / (1 - p0[i]) for j, s in enumerate(p0)])
    found["one server doubled"] = hardest(doubled)
    found["one server missing"] = hardest(missing)
    return found


def noncentrality(p0: Sequence[float], p1: Sequence[float], n: int) -> float:
    """lambda = n * sum((p1 - p0)^2 / p0): the Pearson statistic under true
    shares p1 is approximately non-central chi-square with this parameter."""
    return n * sum((b - a) ** 2 / a for a, b in zip(p0, p1))


def power(p0: Sequence[float], p1: Sequence[float], n: int, alpha: float = ALPHA) -> float:
    """Probability that the test at level alpha rejects p0 with n samples
    when the true shares are p1."""
    df = len(p0) - 1
    return ncx2_sf(chi2_isf(alpha, df), df, noncentrality(p0, p1, n))


def looks(planned: int) -> list[int]:
    """After how many of the planned samples the interim looks are."""
    return [int(planned * f) for f in LOOKS]


@lru_cache(maxsize=None)
def look_bound(df: int, look: int, alpha: float = ALPHA, miss: float = LOOK_MISS) -> float:
    """Interim look number `look`'s bound (0 is the first): sampling stops
    with a pass when chi2 over the first looks(N)[look] samples is below it.
    It is the `miss` quantile of that chi2 when the full test has 50 % power
    (non-centrality lambda_50 over N, so lambda_50 * LOOKS[look] there): any
    wrong split the full test catches at least half the time stops at this
    look with probability at most `miss` (the non-central chi-square grows
    with lambda)."""
    return ncx2_ppf(miss, df, _nc_for_power(df, alpha, 0.5) * LOOKS[look])


def power_with_look(p0: Sequence[float], p1: Sequence[float], n: int,
                    alpha: float = ALPHA) -> float:
    """A lower bound of the power with the interim looks: the full test's
    power less the chance of stopping at each look."""
    df = len(p0) - 1
    stop = sum(1 - ncx2_sf(look_bound(df, i, alpha), df, noncentrality(p0, p1, at))
               for i, at in enumerate(looks(n)))
    return max(0.0, power(p0, p1, n, alpha) - stop)


def look_stops(df: int, alpha: float = ALPHA) -> list[float]:
    """Per interim look, how often a correct split is below its bound there,
    P(chi2 < bound): a lower bound of how often it has stopped by then."""
    return [1 - chi2_sf(look_bound(df, i, alpha), df) for i in range(len(LOOKS))]


def mean_samples_bound(planned: int, df: int, alpha: float = ALPHA) -> float:
    """At most how many samples a correct split takes on average: past each
    look only while not stopped, which is at most 1 - look_stops() there."""
    edges = looks(planned) + [planned]
    return edges[0] + sum((1 - s) * (b - a) for s, a, b in
                          zip(look_stops(df, alpha), edges, edges[1:]))


@lru_cache(maxsize=None)
def _nc_for_power(df: int, alpha: float, target: float) -> float:
    """The smallest non-centrality giving `target` power (bisection)."""
    crit = chi2_isf(alpha, df)
    lo, hi = 0.0, 1.0
    while ncx2_sf(crit, df, hi) < target:
        hi *= 2
    while hi - lo > 1e-6 * hi:
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if ncx2_sf(crit, df, mid) < target else (lo, mid)
    return hi


def samples_for_power(p0: Sequence[float], p1: Sequence[float], alpha: float = ALPHA,
                      target: float = POWER) -> int:
    """The fewest samples giving `target` power against p1."""
    per_sample = noncentrality(p0, p1, 1)
    if per_sample <= 0:
        raise ValueError("the alternative equals the expected shares")
    return math.ceil(_nc_for_power(len(p0) - 1, alpha, target) / per_sample)


def two_way_false_alarm(n: int, alpha: float = ALPHA) -> float:
    """The exact false-alarm rate of the test at level alpha over n samples
    of two equal shares (a fair coin's binomial), against which the
    chi-square approximation is only approximate."""
    crit = chi2_isf(alpha, 1)
    # chi2 = (2x - n)^2 / n: the tails beyond the critical value, both sides
    x = math.floor((n - math.sqrt(crit * n)) / 2)
    while x >= 0 and (2 * x - n) ** 2 / n < crit:
        x -= 1
    total, log_n = 0.0, math.lgamma(n + 1) - n * math.log(2)
    for i in range(x, -1, -1):  # terms shrink fast away from the middle
        term = math.exp(log_n - math.lgamma(i + 1) - math.lgamma(n - i + 1))
        total += term
        if term < total * 1e-17:
            break
    return 2 * total


def samples_needed(ks: Sequence[int] = SUITE_K, alpha: float = ALPHA,
                   target: float = POWER) -> int:
    """The fewest samples, a multiple of 100, giving `target` power with the
    interim looks (power_with_look) against every alternative for each k in
    ks under both OVS slot rules, and for k = 2 (two equal shares under
    both rules) an exact false-alarm rate of at most alpha."""
    cases = [(dp_hash_shares(k, legacy=legacy), p1) for k in ks for legacy in (False, True)
             for p1 in alternatives(k, legacy).values()]
    # without the looks it takes fewer: start there
    n = -(-max(samples_for_power(p0, p1, alpha, target) for p0, p1 in cases) // 100) * 100
    while (any(power_with_look(p0, p1, n, alpha) < target for p0, p1 in cases)
           or (2 in ks and two_way_false_alarm(n, alpha) > alpha)):
        n += 100
    return n


def planned_samples(k: int) -> int:
    """The samples a distribution check over k servers plans."""
    return PLANNED_SAMPLES.get(k) or _samples_needed_for(k)


def samples_for(k: int, at_least: int | None = None) -> int:
    """The samples a check over k servers takes: its plan, or `at_least`
    (--ovnlb-samples) where that is more: a setting adds power, never
    takes any away."""
    return max(planned_samples(k), at_least or 0)


@lru_cache(maxsize=None)
def _samples_needed_for(k: int) -> int:
    return samples_needed((k,))


def power_table(ks: Sequence[int] = SUITE_K, alpha: float = ALPHA) -> str:
    """Markdown table: each alternative's power at 1000 samples and at the
    check's planned N, without and with the interim looks, and the samples
    the fixed test needs for POWER.  README.md shows this table."""
    rules = ((False, "\u2265 4 slots/bucket (OVS 3.5)"), (True, "16 slots (OVS 3.1.0)"))
    lines = ["| k | N planned | OVS slot rule | alternative | \u03bb / N | power, N = 1000 "
             f"| power, N planned | with the looks, at least | N for {POWER:.0%} without |",
             "|---|---|---|---|---|---|---|---|---|"]
    for k in ks:
        n = planned_samples(k)
        for legacy, rule in rules:
            p0 = dp_hash_shares(k, legacy=legacy)
            required = alternatives(k, legacy)
            for name, p1 in alternatives(k, legacy, informative=True).items():
                if name not in required:
                    name += " (not required)"
                lines.append(
                    f"| {k} | {n} | {rule} | {name} | {noncentrality(p0, p1, 1):.5f} "
                    f"| {power(p0, p1, 1000, alpha):.4f} | {power(p0, p1, n, alpha):.4f} "
                    f"| {power_with_look(p0, p1, n, alpha):.4f} "
                    f"| {samples_for_power(p0, p1, alpha)} |")
    return "\n".join(lines)


def look_table(ks: Sequence[int] = SUITE_K, alpha: float = ALPHA) -> str:
    """Markdown table: per k, the interim looks and their bounds, how often a
    correct split is below each (so has stopped by then), and at most how
    many samples it takes on average."""
    lines = ["| k | N planned | df | looks after | bounds | a correct split below the bound "
             "| samples on average, at most |", "|---|---|---|---|---|---|---|"]
    for k in ks:
        n, df = planned_samples(k), k - 1
        bounds = " / ".join(f"{look_bound(df, i, alpha):.3f}" for i in range(len(LOOKS)))
        stops = " / ".join(f"{s:.3f}" for s in look_stops(df, alpha))
        lines.append(f"| {k} | {n} | {df} | {' / '.join(map(str, looks(n)))} | {bounds} "
                     f"| {stops} | {mean_samples_bound(n, df, alpha):.0f} |")
    return "\n".join(lines)


# --- lost connections ----------------------------------------------------------

def binomial_sf(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p), summed term by term in log space."""
    if k <= 0:
        return 1.0
    if k > n or p <= 0:
        return 0.0
    if p >= 1:
        return 1.0
    log_p, log_q, log_n = math.log(p), math.log1p(-p), math.lgamma(n + 1)
    total = 0.0
    for i in range(k, n + 1):
        term = math.exp(log_n - math.lgamma(i + 1) - math.lgamma(n - i + 1)
                        + i * log_p + (n - i) * log_q)
        total += term
        if i > n * p and term <= total * 1e-17:  # past the mode terms only shrink
            break
    return min(1.0, total)


def loss_p(lost: int, answered: int, tolerance: float = LOSS_TOLERANCE) -> float:
    """The loss test's p: P(X >= lost) for X ~ Binomial(answered + lost,
    tolerance), lost connections among all those made at a loss rate of
    `tolerance`.  Sampling runs until a set number of answers, so the exact
    tail is over one connection fewer (negative binomial); this one is at
    least as large, so the false-alarm rate stays at most alpha."""
    return binomial_sf(lost, answered + lost, tolerance)


def loss_settled(lost: int, planned: int, tolerance: float = LOSS_TOLERANCE,
                 alpha: float = LOSS_ALPHA) -> bool:
    """Whether the loss test fails whatever follows: over the `planned`
    answers (the most a check takes) the losses so far already fail it, and
    fewer answers or more losses only lower p."""
    return loss_p(lost, planned, tolerance) < alpha


def loss_critical(answered: int, tolerance: float = LOSS_TOLERANCE,
                  alpha: float = LOSS_ALPHA) -> int:
    """The fewest lost connections that fail the loss test beside `answered`
    answers."""
    lost = 0
    while loss_p(lost, answered, tolerance) >= alpha:
        lost += 1
    return lost


def loss_power(rate: float, planned: int, tolerance: float = LOSS_TOLERANCE,
               alpha: float = LOSS_ALPHA, looks_too: bool = False) -> float:
    """How often a check sampling `planned` answers fails its loss test when
    connections are lost at `rate` (at rate = tolerance: its false-alarm
    rate): loss_critical() lost before the last answer, P(Binomial(planned +
    c - 1, rate) >= c).  looks_too: a lower bound with the interim looks,
    less the chance of losing nothing by the first (a check stops at a look
    only while nothing is lost)."""
    c = loss_critical(planned, tolerance, alpha)
    caught = binomial_sf(c, planned + c - 1, rate)
    return max(0.0, caught - (1 - rate) ** looks(planned)[0]) if looks_too else caught


def loss_table(ks: Sequence[int] = SUITE_K, rates: Sequence[float] = LOSS_RATES) -> str:
    """Markdown table: per k, how many lost connections fail a check over its
    planned answers, the false-alarm rate at the tolerated loss rate, and the
    power against `rates`, without and with the interim looks."""
    tolerated = f"{LOSS_TOLERANCE * 100:g} %"
    lines = [f"| k | N planned | fails from lost | false alarms, {tolerated} lost | "
             + " | ".join(f"power, {r * 100:g} % lost | with the looks, at least"
                          for r in rates) + " |",
             "|---|---|---|---|" + "---|---|" * len(rates)]
    for k in ks:
        n = planned_samples(k)
        powers = [f"{loss_power(r, n):.4f} | {loss_power(r, n, looks_too=True):.4f}"
                  for r in rates]
        lines.append(f"| {k} | {n} | {loss_critical(n)} | {loss_power(LOSS_TOLERANCE, n):.2g} | "
                     + " | ".join(powers) + " |")
    return "\n".join(lines)


@dataclass(frozen=True)
class Losses:
    """The lost connections of a check, judged apart from its split
    (loss_test()); report() says how many and why they pass or fail."""

    kinds: Mapping[str, int]  # error kind -> lost connections, e.g. {"timeout": 1}
    answered: int
    p: float
    passed: bool
    tolerance: float = LOSS_TOLERANCE
    alpha: float = LOSS_ALPHA
    # Sampling stopped early as the test over the planned answers fails
    # whatever follows (loss_settled()): the p it would end with is at most p.
    settled: bool = False

    @property
    def lost(self) -> int:
        return sum(self.kinds.values())

    def report(self) -> str:
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(self.kinds.items()))
        head = (f"lost {self.lost} of {self.answered + self.lost} connections"
                + (f" ({kinds})" if kinds else ""))
        p = f"p{'<=' if self.settled else '='}{self.p:.2g}"
        rate = f"{self.tolerance * 100:g} %"
        if self.passed:
            return f"{head}: within the {rate} tolerance ({p} >= {self.alpha:g})"
        return f"{head}: more than a {rate} loss rate explains ({p} < {self.alpha:g})"


def loss_test(kinds: Mapping[str, int], answered: int, planned: int | None = None,
              tolerance: float = LOSS_TOLERANCE, alpha: float = LOSS_ALPHA) -> Losses:
    """Judge the lost connections (`kinds`: per error kind) beside `answered`
    answers: they fail the check when loss_p() < alpha.  `planned`: the
    answers sampling was to reach; stopped short of them because
    loss_settled(), the verdict is a failure with p bounded over them."""
    lost = sum(kinds.values())
    settled = (planned is not None and answered < planned
               and loss_settled(lost, planned, tolerance, alpha))
    p = loss_p(lost, planned if settled else answered, tolerance)
    return Losses(dict(kinds), answered, p, p >= alpha, tolerance, alpha, settled)


def expected_counts(n: int, shares: Mapping[str, float]) -> dict[str, float]:
    """Expected number of connections per server out of n."""
    return {name: n * share for name, share in shares.items()}


@dataclass(frozen=True)
class Verdict:
    """Outcome of chi_square_test(): the split of the answered connections
    and the lost ones, each with its own verdict; str() gives a readable
    report."""

    counts: Mapping[str, int]
    shares: Mapping[str, float]
    n: int
    chi2: float
    df: int
    p: float
    alpha: float
    # None: not judged, sampling stopped on the losses first
    split_passed: bool | None
    # Sampling planned for this many and stopped at n because even the most
    # favourable rest would leave chi2 at least `bound`, over the critical value.
    planned: int | None = None
    bound: float | None = None
    # Stopped at an interim look: chi2 over n was below this bound.
    look: float | None = None
    losses: Losses = Losses({}, 0, 1.0, True)

    @property
    def passed(self) -> bool:
        return bool(self.split_passed) and self.losses.passed

    def report(self) -> str:
        names = list(self.shares) + [b for b in self.counts if b not in self.shares]
        width = max([len("server")] + [len(b) for b in names])
        lines = [f"{'server':<{width}}  {'observed':>8}  {'obs.share':>9}  "
                 f"{'exp.share':>9}  {'expected':>9}"]
        for b in names:
            count = self.counts.get(b, 0)
            share = self.shares.get(b, 0.0)
            # Any connection here is impossible under the expected shares.
            note = "  (unexpected)" if count > 0 and share == 0 else ""
            lines.append(f"{b:<{width}}  {count:>8d}  {count / max(1, self.n):>9.4f}  "
                         f"{share:>9.4f}  {share * self.n:>9.1f}{note}")
        lines.append(f"{'total':<{width}}  {self.n:>8d}")
        stopped = self.planned is not None and self.n < self.planned
        chi2, p = (f">={self.chi2:.3f}", f"<={self.p:.3g}") if self.bound is not None else (
            f"={self.chi2:.3f}", f"={self.p:.3g}")
        if self.split_passed is None:
            lines.append("split not judged: sampling stopped on the lost connections")
        else:
            verdict = "consistent" if self.split_passed else "NOT consistent"
            lines.append(f"chi2{chi2}, df={self.df}, p{p}, "
                         f"alpha={self.alpha:g}, verdict: {verdict} with expected shares")
        if self.losses.lost:
            lines.append(self.losses.report())
        if stopped and self.look is not None:
            lines.append(f"stopped after {self.n} of {self.planned} planned samples at an "
                         f"interim look: chi2 below its bound {self.look:.3f}")
        elif stopped:
            if self.split_passed is not False:
                why = (f"the {self.losses.lost} lost fail the loss test over all {self.planned} "
                       "planned, whatever follows")
            elif self.bound is None:
                why = "an outcome impossible under the expected shares"
            else:
                why = (f"whatever the other {self.planned - self.n} do, chi2 over all "
                       f"{self.planned} stays >= {self.bound:.1f}, above the critical "
                       f"{chi2_isf(self.alpha, self.df):.1f}")
            lines.append(f"stopped after {self.n} of {self.planned} planned samples: "
                         f"the verdict cannot change ({why})")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.report()


def min_final_chi2(counts: Mapping[str, int], shares: Mapping[str, float],
                   planned: int) -> float:
    """The smallest Pearson chi2 over `planned` samples that can follow from
    `counts` so far, whatever the remaining samples do (continuous relaxation,
    so a lower bound of the integer minimum).  inf if an outcome with no
    share has been seen."""
    n = sum(counts.values())
    if n > planned:
        raise ValueError(f"{n} samples counted, more than the {planned} planned")
    if any(c > 0 and shares.get(b, 0) == 0 for b, c in counts.items()):
        return math.inf
    expected = {b: planned * s for b, s in shares.items() if s > 0}
    seen = {b: counts.get(b, 0) for b in expected}

    # The rest goes where it lowers chi2 most: final counts max(seen, t * e)
    # for the t that uses them all up (Lagrange; bisection on t).
    def total(t):
        return sum(max(seen[b], t * e) for b, e in expected.items())

    lo, hi = 0.0, 1.0
    while total(hi) < planned:
        hi *= 2
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if total(mid) < planned else (lo, mid)
    final = {b: max(seen[b], hi * e) for b, e in expected.items()}
    return sum((final[b] - e) ** 2 / e for b, e in expected.items())


def failure_settled(counts: Mapping[str, int], shares: Mapping[str, float],
                    planned: int, alpha: float = ALPHA) -> bool:
    """Whether the test over `planned` samples must fail whatever the samples
    still to come: then sampling can stop (curtailment: the verdict, and so
    the false-alarm rate and the power, are those of the full test)."""
    df = sum(1 for s in shares.values() if s > 0) - 1
    bound = min_final_chi2(counts, shares, planned)
    return math.isinf(bound) or (df > 0 and bound > chi2_isf(alpha, df))


def look_index(n: int, planned: int) -> int | None:
    """Which interim look `n` samples of `planned` are at, if any."""
    at = looks(planned)
    return at.index(n) if n in at else None


def look_passes(counts: Mapping[str, int], shares: Mapping[str, float], planned: int,
                alpha: float = ALPHA, lost: int = 0) -> bool:
    """An interim look: whether the counts so far are exactly at one of the
    looks of `planned` samples and chi2 over them is below its look_bound(),
    so that sampling stops with a pass.  Once a connection is `lost` no look
    stops: the check runs to its plan, where the loss test has its power."""
    n = sum(counts.values())
    look = look_index(n, planned)
    expected = {b: n * s for b, s in shares.items() if s > 0}
    if (lost or look is None or len(expected) < 2
            or any(c > 0 and shares.get(b, 0) == 0 for b, c in counts.items())):
        return False
    chi2 = sum((counts.get(b, 0) - e) ** 2 / e for b, e in expected.items())
    return chi2 < look_bound(len(expected) - 1, look, alpha)


def chi_square_test(counts: Mapping[str, int], shares: Mapping[str, float],
                    alpha: float = ALPHA, planned: int | None = None,
                    lost: Mapping[str, int] | None = None) -> Verdict:
    """Pearson goodness-of-fit of observed counts per server to expected
    shares, and the loss test (loss_test()) of the `lost` connections (per
    error kind), which are not part of the split.

    Servers listed in `shares` but absent from `counts` got no connections.
    `planned`: the sample size of the test, when sampling stopped early at
    n < planned, either because failure_settled() or loss_settled() (the
    verdict then fails) or at an interim look, one of looks(planned),
    because look_passes() (the verdict then passes).
    Any connection to a server with no share (share 0, or not in `shares`)
    is impossible under the expected distribution, so the verdict fails with
    p = 0 regardless of the other counts.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if any(s < 0 for s in shares.values()):
        raise ValueError("shares must not be negative")
    if not math.isclose(sum(shares.values()), 1.0, abs_tol=1e-9):
        raise ValueError(f"shares must sum to 1, got {sum(shares.values())}")
    if any(c < 0 for c in counts.values()):
        raise ValueError("counts must not be negative")
    n = sum(counts.values())
    losses = loss_test(lost or {}, n, planned)
    if n == 0 and losses.passed:
        raise ValueError("no connections counted")

    stopped = planned is not None and n < planned
    failed = stopped and failure_settled(counts, shares, planned, alpha)
    looked = stopped and not failed and look_passes(counts, shares, planned, alpha,
                                                    losses.lost)
    if stopped and not (failed or looked or losses.settled):
        raise ValueError(f"{n} of {planned} planned samples and the verdict is open")
    expected = {b: n * s for b, s in shares.items() if s > 0}
    df = len(expected) - 1
    if n == 0:  # nothing answered: only the losses are judged
        return Verdict(counts=dict(counts), shares=dict(shares), n=0, chi2=math.nan, df=df,
                       p=1.0, alpha=alpha, split_passed=None, planned=planned,
                       losses=losses)
    small = {b: e for b, e in expected.items() if e < 5}
    if small and not stopped and not losses.settled:
        # Below about 5 expected per category the chi-square distribution is
        # a poor approximation of the statistic, and p would mislead.
        need = math.ceil(5 / min(s for s in shares.values() if s > 0))
        raise ValueError(
            f"expected counts below 5 for {sorted(small)}: the chi-square "
            f"approximation is not valid; collect at least {need} connections")

    unexpected = any(c > 0 and shares.get(b, 0) == 0 for b, c in counts.items())
    bound = None
    if unexpected:
        chi2, p = math.inf, 0.0
    elif failed:
        # The full test's chi2 is at least this, so its p at most this p.
        chi2 = bound = min_final_chi2(counts, shares, planned)
        p = chi2_sf(chi2, df)
    else:
        chi2 = sum((counts.get(b, 0) - e) ** 2 / e for b, e in expected.items())
        # One server only: every connection went to it, nothing to test.
        p = chi2_sf(chi2, df) if df > 0 else 1.0
    if failed or unexpected:
        split_passed = False
    elif looked or not stopped:
        split_passed = looked or p >= alpha
    else:
        split_passed = None  # stopped on the losses with the split still open
    return Verdict(counts=dict(counts), shares=dict(shares), n=n, chi2=chi2,
                   df=df, p=p, alpha=alpha, split_passed=split_passed, planned=planned,
                   bound=bound, losses=losses,
                   look=look_bound(df, look_index(n, planned), alpha) if looked else None)
