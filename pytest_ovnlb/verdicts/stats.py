"""Judge whether a load balancer spreads new connections as expected.

Each backend's connection count is compared with its expected share using
Pearson's chi-square goodness-of-fit test.  The expected shares come either
from a plain uniform split or from the way Open vSwitch maps dp_hash values
to select-group buckets, which is what OVN load balancers use.

Standard library only: this module runs inside test environments where
scipy is not guaranteed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

# A strict default: a conformance suite that runs many times a day must not
# fail on chance alone, and a real skew (a dead or doubled backend) still
# gives p-values far below this with a few hundred connections.
ALPHA = 1e-6
DEFAULT_SAMPLES = 1000

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


def uniform_shares(k: int) -> list[float]:
    """k equal shares."""
    if k < 1:
        raise ValueError(f"need at least one backend, got k={k}")
    return [1.0 / k] * k


def dp_hash_slots(weights: Sequence[int] | int, legacy: bool = False) -> list[int]:
    """Number of dp_hash slots OVS gives each bucket of a select group.

    A mirror of group_setup_dp_hash_table() in ofproto/ofproto-dpif.c (Open
    vSwitch 2.10 and later).  OVS hashes each new flow, masks the hash down to
    a power-of-two slot table and maps each slot to one bucket, so a bucket's
    share of traffic is its slot count over the table size, not its weight
    over the total weight.

    `weights` are the OpenFlow bucket weights in bucket order (OVN gives every
    backend weight 100); an int k means k equal weights.

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

    For example 3 equal backends get 6/16, 5/16 and 5/16, not 1/3 each.
    See dp_hash_slots() for the model and its limits.
    """
    hits = dp_hash_slots(weights, legacy=legacy)
    n_hash = sum(hits)
    return [h / n_hash for h in hits]


def expected_counts(n: int, shares: Mapping[str, float]) -> dict[str, float]:
    """Expected number of connections per backend out of n."""
    return {name: n * share for name, share in shares.items()}


@dataclass(frozen=True)
class Verdict:
    """Outcome of chi_square_test(); str() gives a readable report."""

    counts: Mapping[str, int]
    shares: Mapping[str, float]
    n: int
    chi2: float
    df: int
    p: float
    alpha: float
    passed: bool

    def report(self) -> str:
        names = list(self.shares) + [b for b in self.counts if b not in self.shares]
        width = max([len("backend")] + [len(b) for b in names])
        lines = [f"{'backend':<{width}}  {'observed':>8}  {'obs.share':>9}  "
                 f"{'exp.share':>9}  {'expected':>9}"]
        for b in names:
            count = self.counts.get(b, 0)
            share = self.shares.get(b, 0.0)
            # Any connection here is impossible under the expected shares.
            note = "  (unexpected)" if count > 0 and share == 0 else ""
            lines.append(f"{b:<{width}}  {count:>8d}  {count / self.n:>9.4f}  "
                         f"{share:>9.4f}  {share * self.n:>9.1f}{note}")
        lines.append(f"{'total':<{width}}  {self.n:>8d}")
        verdict = "consistent" if self.passed else "NOT consistent"
        lines.append(f"chi2={self.chi2:.3f}, df={self.df}, p={self.p:.3g}, "
                     f"alpha={self.alpha:g}, verdict: {verdict} with expected shares")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.report()


def chi_square_test(counts: Mapping[str, int], shares: Mapping[str, float],
                    alpha: float = ALPHA) -> Verdict:
    """Pearson goodness-of-fit of observed counts per backend to expected shares.

    Backends listed in `shares` but absent from `counts` got no connections.
    Any connection to a backend with no share (share 0, or not in `shares`)
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
    if n == 0:
        raise ValueError("no connections counted")

    expected = {b: n * s for b, s in shares.items() if s > 0}
    small = {b: e for b, e in expected.items() if e < 5}
    if small:
        # Below about 5 expected per category the chi-square distribution is
        # a poor approximation of the statistic, and p would mislead.
        need = math.ceil(5 / min(s for s in shares.values() if s > 0))
        raise ValueError(
            f"expected counts below 5 for {sorted(small)}: the chi-square "
            f"approximation is not valid; collect at least {need} connections")

    df = len(expected) - 1
    unexpected = any(c > 0 and shares.get(b, 0) == 0 for b, c in counts.items())
    if unexpected:
        chi2, p = math.inf, 0.0
    else:
        chi2 = sum((counts.get(b, 0) - e) ** 2 / e for b, e in expected.items())
        # One backend only: every connection went to it, nothing to test.
        p = chi2_sf(chi2, df) if df > 0 else 1.0
    return Verdict(counts=dict(counts), shares=dict(shares), n=n, chi2=chi2,
                   df=df, p=p, alpha=alpha, passed=p >= alpha)
