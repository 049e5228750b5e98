import math
from pathlib import Path

import pytest

from pytest_ovnlb.traffic.client import Agent, Result
from pytest_ovnlb.verdicts import checks
from pytest_ovnlb.verdicts.stats import (
    ALPHA,
    LOSS_ALPHA,
    LOSS_TOLERANCE,
    PLANNED_SAMPLES,
    POWER,
    SUITE_K,
    alternatives,
    binomial_sf,
    chi2_isf,
    chi2_sf,
    chi_square_test,
    dp_hash_shares,
    dp_hash_slots,
    expected_counts,
    failure_settled,
    look_bound,
    look_passes,
    look_stops,
    look_table,
    looks,
    loss_critical,
    loss_p,
    loss_power,
    loss_settled,
    loss_table,
    mean_samples_bound,
    min_final_chi2,
    ncx2_ppf,
    ncx2_sf,
    noncentrality,
    power,
    power_table,
    power_with_look,
    samples_for_power,
    planned_samples,
    samples_needed,
    two_way_false_alarm,
    uniform_shares,
)

ROOT = Path(__file__).resolve().parent.parent
N3 = PLANNED_SAMPLES[3]  # what a check over 3 servers plans


def named(shares):
    return {f"server{i}": s for i, s in enumerate(shares)}


def counts_of(*values):
    return {f"server{i}": c for i, c in enumerate(values)}


# chi2_sf ------------------------------------------------------------------

# (x, df, p) reference values from scipy.stats.chi2.sf (scipy 1.17.1).
REFERENCE = [
    (3.841458820694124, 1, 0.04999999999999989),
    (5.991464547107979, 2, 0.05000000000000007),
    (1.0, 1, 0.31731050786291115),
    (2.0, 2, 0.36787944117144245),
    (10.0, 3, 0.01856613546304325),
    (20.0, 4, 0.0004993992273873336),
    (0.01, 5, 0.9999994699729957),
    (27.96125, 2, 8.477966749585546e-07),
    (100.0, 1, 1.5239706048320995e-23),
    (150.0, 10, 3.727485055062505e-27),
    (200.0, 1, 2.0884875837625688e-45),
    (300.0, 20, 8.082849629775851e-52),
]


@pytest.mark.parametrize("x, df, p", REFERENCE)
def test_chi2_sf_reference_values(x, df, p):
    assert chi2_sf(x, df) == pytest.approx(p, rel=1e-9)


def test_chi2_sf_edges():
    assert chi2_sf(0.0, 1) == 1.0
    assert chi2_sf(0.0, 7) == 1.0
    assert chi2_sf(math.inf, 3) == 0.0
    # df=2 is a plain exponential.
    assert chi2_sf(7.0, 2) == pytest.approx(math.exp(-3.5), rel=1e-12)
    with pytest.raises(ValueError):
        chi2_sf(1.0, 0)


def test_chi2_sf_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    xs = [0.0, 1e-9, 1e-3, 0.1, 0.5] + [i * 0.25 for i in range(1, 801)]
    for df in range(1, 21):
        for x in xs:
            ref = float(stats.chi2.sf(x, df))
            assert chi2_sf(x, df) == pytest.approx(ref, rel=1e-9, abs=0), (x, df)
    # The sweep reaches far into the tail.
    assert stats.chi2.sf(200.0, 20) < 1e-30


# dp_hash shares -----------------------------------------------------------

@pytest.mark.parametrize("k, slots", [
    (1, [16]),
    (2, [8, 8]),
    (3, [6, 5, 5]),
    (4, [4, 4, 4, 4]),
    (5, [7, 7, 6, 6, 6]),
    (6, [6, 6, 5, 5, 5, 5]),
    (7, [5, 5, 5, 5, 4, 4, 4]),
    (8, [4] * 8),
])
def test_dp_hash_slots_equal_weights(k, slots):
    assert dp_hash_slots(k) == slots
    # OVN gives every server weight 100; only the ratios matter.
    assert dp_hash_slots([100] * k) == slots
    total = sum(slots)
    assert dp_hash_shares(k) == [s / total for s in slots]


def test_dp_hash_shares_documented_values():
    assert dp_hash_shares(3) == [6 / 16, 5 / 16, 5 / 16]
    assert dp_hash_shares(5) == [7 / 32, 7 / 32, 6 / 32, 6 / 32, 6 / 32]
    for k in (2, 4, 8, 16, 64):
        assert dp_hash_shares(k) == uniform_shares(k)


def test_dp_hash_weighted_by_hand():
    # Weights 1 and 2: 16 slots (the minimum).  Slots go to the larger
    # weight/divisor, divisors 1, 3, 5, ...:
    #   b1 2/1, b0 1/1, b1 2/3, b1 2/5, b0 1/3, b1 2/7, b1 2/9, b0 1/5,
    #   b1 2/11, b1 2/13, b0 1/7, b1 2/15, b1 2/17, b0 1/9, b1 2/19, b1 2/21
    assert dp_hash_slots([1, 2]) == [5, 11]
    assert dp_hash_shares([1, 2]) == [5 / 16, 11 / 16]


def test_dp_hash_matches_ovs_own_tests():
    # Expected hits from tests/ofproto-dpif.at in Open vSwitch.
    assert dp_hash_slots([5, 10, 25, 60, 0]) == [2, 3, 8, 19, 0]
    assert dp_hash_slots([5, 6]) == [7, 9]
    assert dp_hash_slots([5, 7, 8, 6]) == [3, 4, 5, 4]
    assert dp_hash_slots([5, 7, 8]) == [4, 6, 6]
    assert dp_hash_slots([5, 8]) == [6, 10]


def test_dp_hash_table_size():
    # At least 4 slots per bucket, capped at 256.
    assert sum(dp_hash_slots(10)) == 64
    assert sum(dp_hash_slots(65)) == 256
    assert dp_hash_slots(256) == [1] * 256
    # Before the change 10 buckets shared 16 slots: six got 2, four got 1.
    assert dp_hash_slots(10, legacy=True) == [2] * 6 + [1] * 4


def test_dp_hash_fallback_is_refused():
    with pytest.raises(ValueError, match="falls back"):
        dp_hash_slots(257)
    with pytest.raises(ValueError, match="falls back"):
        dp_hash_slots([1, 300])
    with pytest.raises(ValueError):
        dp_hash_slots([])
    with pytest.raises(ValueError):
        dp_hash_slots([0, 0])
    with pytest.raises(ValueError):
        dp_hash_slots([1, 70000])


def test_uniform_and_expected_counts():
    assert uniform_shares(4) == [0.25] * 4
    assert expected_counts(1600, named(dp_hash_shares(3))) == counts_of(600, 500, 500)
    with pytest.raises(ValueError):
        uniform_shares(0)


# chi_square_test ----------------------------------------------------------

def test_constants():
    assert ALPHA == 1e-6
    assert POWER == 0.9
    # Each check plans the smallest sample size with the required power
    # (for k = 2, and an exact false-alarm rate at most ALPHA).
    for k in SUITE_K:
        assert PLANNED_SAMPLES[k] == samples_needed((k,)) == planned_samples(k)
    assert PLANNED_SAMPLES == {2: 500, 3: 5700, 5: 5300}
    # one sample size giving every check its power at once (and 2 servers an
    # exact false-alarm rate at most ALPHA); each check plans its own instead
    assert samples_needed() == 5800


def test_two_equal_shares_false_alarm_is_exact():
    """The binomial tail beyond the critical chi2, summed exactly: it swings
    around ALPHA with N (the statistic is discrete), so 400 samples, enough
    for the power, are too few and k = 2 plans 500."""
    from math import comb
    crit = chi2_isf(ALPHA, 1)
    for n in (200, 400, 500, 2850):
        exact = sum(comb(n, x) for x in range(n + 1) if (2 * x - n) ** 2 / n >= crit) / 2 ** n
        assert two_way_false_alarm(n) == pytest.approx(exact, rel=1e-9)
    assert two_way_false_alarm(400) > ALPHA >= two_way_false_alarm(500)
    assert samples_needed((2,), target=POWER) == 500


def test_measured_data_rejects_uniform_accepts_dp_hash():
    counts = counts_of(633, 486, 481)
    uniform = chi_square_test(counts, named(uniform_shares(3)))
    assert not uniform.passed
    assert uniform.p == pytest.approx(8.477966749585546e-07, rel=1e-9)
    assert uniform.df == 2 and uniform.n == 1600

    dp_hash = chi_square_test(counts, named(dp_hash_shares(3)))
    assert dp_hash.passed
    assert dp_hash.chi2 == pytest.approx(2.929)
    assert dp_hash.p == pytest.approx(0.23119355936263253, rel=1e-9)


def test_everything_to_one_backend_rejected():
    for shares in (uniform_shares(3), dp_hash_shares(3)):
        verdict = chi_square_test(counts_of(1000, 0, 0), named(shares))
        assert not verdict.passed
        assert verdict.p < 1e-100


def test_double_share_rejected():
    verdict = chi_square_test(counts_of(667, 333), named(dp_hash_shares(2)))
    assert not verdict.passed
    assert verdict.p == pytest.approx(4.469989837212933e-26, rel=1e-9)


def test_dead_backend_rejected():
    for shares in (uniform_shares(3), dp_hash_shares(3)):
        verdict = chi_square_test(counts_of(500, 500, 0), named(shares))
        assert not verdict.passed
        assert verdict.p < 1e-100


def test_exact_expected_counts_accepted():
    verdict = chi_square_test(counts_of(600, 500, 500), named(dp_hash_shares(3)))
    assert verdict.passed
    assert verdict.chi2 == 0
    assert verdict.p == 1.0


def test_missing_backend_counts_as_zero():
    verdict = chi_square_test({"a": 1000}, {"a": 0.5, "b": 0.5})
    assert not verdict.passed
    assert verdict.counts == {"a": 1000}


def test_traffic_to_unexpected_backend_fails():
    shares = {"a": 0.5, "b": 0.5, "c": 0.0}
    assert chi_square_test({"a": 500, "b": 500, "c": 0}, shares).passed
    zero_share = chi_square_test({"a": 500, "b": 500, "c": 1}, shares)
    assert not zero_share.passed and zero_share.p == 0.0
    unknown = chi_square_test({"a": 500, "b": 500, "x": 1}, shares)
    assert not unknown.passed and unknown.p == 0.0
    assert "unexpected" in unknown.report()


def test_single_server():
    assert chi_square_test({"a": 50}, {"a": 1.0}).passed
    assert not chi_square_test({"a": 50, "b": 1}, {"a": 1.0}).passed


def test_invalid_input():
    with pytest.raises(ValueError, match="no connections"):
        chi_square_test(counts_of(0, 0), named(uniform_shares(2)))
    with pytest.raises(ValueError, match="approximation"):
        chi_square_test(counts_of(5, 4), named(uniform_shares(2)))
    with pytest.raises(ValueError, match="sum to 1"):
        chi_square_test(counts_of(50, 50), {"server0": 0.5, "server1": 0.4})


def test_report_is_readable():
    verdict = chi_square_test(counts_of(633, 486, 481), named(dp_hash_shares(3)))
    text = verdict.report()
    assert str(verdict) == text
    for name in ("server0", "server1", "server2"):
        assert name in text
    assert "633" in text and "600.0" in text
    assert "chi2=2.929" in text
    assert "p=0.231" in text
    assert "verdict: consistent" in text
    assert "NOT consistent" in str(
        chi_square_test(counts_of(633, 486, 481), named(uniform_shares(3))))


# power ----------------------------------------------------------------------

# (x, df, nc, sf) from scipy.stats.ncx2.sf (scipy 1.17.1).
NCX2_REFERENCE = [
    (27.631021115928547, 2, 44.4, 0.932086954408168),
    (33.37684158171984, 4, 50.0, 0.9368819701598119),
    (23.928126976934827, 1, 38.1, 0.8998823135616673),
    (1.0, 1, 0.5, 0.42870298961325404),
    (10.0, 3, 2.0, 0.10143503648600136),
]


@pytest.mark.parametrize("x, df, nc, sf", NCX2_REFERENCE)
def test_ncx2_sf_reference_values(x, df, nc, sf):
    assert ncx2_sf(x, df, nc) == pytest.approx(sf, rel=1e-9)


def test_ncx2_sf_matches_scipy():
    stats = pytest.importorskip("scipy.stats")
    for df in (1, 2, 3, 4, 7):
        crit = chi2_isf(ALPHA, df)
        assert crit == pytest.approx(float(stats.chi2.isf(ALPHA, df)), rel=1e-12)
        for nc in (0.0, 0.3, 5.0, 30.0, 44.0, 60.0, 150.0, 400.0):
            for x in (0.5, crit / 2, crit, crit * 2):
                ref = float(stats.ncx2.sf(x, df, nc)) if nc else float(stats.chi2.sf(x, df))
                assert ncx2_sf(x, df, nc) == pytest.approx(ref, rel=1e-8, abs=1e-15), (x, df, nc)


def test_power_known_values():
    # DESIGN's figures: at N = 1000, about 1 % against 1/k instead of the
    # slot model (k = 3) or against the other slot rule (k = 5), near 1 for
    # a doubled or a dead server; about 6000 samples give 90 %.
    p3 = dp_hash_shares(3)
    assert noncentrality(p3, uniform_shares(3), 1) == pytest.approx(1 / 135)
    assert power(p3, uniform_shares(3), 1000) == pytest.approx(0.0081, abs=1e-4)
    assert power(dp_hash_shares(5), dp_hash_shares(5, legacy=True), 1000) == pytest.approx(
        0.0075, abs=1e-4)
    assert samples_for_power(p3, uniform_shares(3)) == 5620
    assert power(p3, uniform_shares(3), 5620) >= POWER > power(p3, uniform_shares(3), 5619)
    stats = pytest.importorskip("scipy.stats")
    for k in SUITE_K:
        for legacy in (False, True):
            p0 = dp_hash_shares(k, legacy=legacy)
            df = k - 1
            crit = stats.chi2.isf(ALPHA, df)
            for p1 in alternatives(k, legacy, informative=True).values():
                for n in (1000, planned_samples(k)):
                    nc = n * sum((b - a) ** 2 / a for a, b in zip(p0, p1))
                    assert power(p0, p1, n) == pytest.approx(
                        float(stats.ncx2.sf(crit, df, nc)), rel=1e-7)


def test_every_required_alternative_has_the_power():
    for k in SUITE_K:
        for legacy in (False, True):
            p0 = dp_hash_shares(k, legacy=legacy)
            required = alternatives(k, legacy)
            assert "one server doubled" in required and "one server missing" in required
            for p1 in required.values():
                assert power(p0, p1, planned_samples(k)) >= POWER
    assert "uniform shares" in alternatives(3)
    assert "other OVS slot rule" in alternatives(5) and "other OVS slot rule" in alternatives(
        5, legacy=True)
    # Where the two rules agree, the other rule is no alternative.
    assert "other OVS slot rule" not in alternatives(3)
    assert set(alternatives(2)) == {"one server doubled", "one server missing"}


def test_alternatives_are_the_hardest_cases():
    p0 = dp_hash_shares(3)
    found = alternatives(3)
    # Doubling the 6/16 server (12/22 against 5/22, 5/22) is harder to see
    # than doubling a 5/16 one (6/21, 10/21, 5/21) ...
    assert found["one server doubled"] == pytest.approx([12 / 22, 5 / 22, 5 / 22])
    assert noncentrality(p0, found["one server doubled"], 1) < noncentrality(
        p0, [6 / 21, 10 / 21, 5 / 21], 1)
    # ... and losing a 5/16 one harder than losing the 6/16 one.
    assert found["one server missing"] == pytest.approx([6 / 11, 5 / 11, 0])
    assert noncentrality(p0, found["one server missing"], 1) < noncentrality(
        p0, [0, 0.5, 0.5], 1)


def test_the_docs_show_the_tables():
    text = (ROOT / "docs" / "statistics.md").read_text()
    stale = "docs/statistics.md's {} table is stale: paste {}()"
    assert power_table() in text, stale.format("power", "power_table")
    assert look_table() in text, stale.format("interim look", "look_table")
    assert loss_table() in text, stale.format("loss", "loss_table")


def test_the_readme_shows_the_planned_samples():
    text = (ROOT / "README.md").read_text()
    per_k = ", ".join(f"{n} for {k} servers" for k, n in PLANNED_SAMPLES.items())
    assert f"`--ovnlb-samples=N` | `ovnlb_samples` | {per_k} |" in text
    assert "each check takes the larger: more power, never less" in text


# stopping early (curtailment) --------------------------------------------------

def test_an_impossible_outcome_settles_failure_at_once():
    shares = named(dp_hash_shares(3))
    assert failure_settled({"vm9:8000": 1}, shares, N3)
    assert min_final_chi2({"server0": 1, "x": 1}, shares, 100) == math.inf
    verdict = chi_square_test({"vm9:8000": 16}, shares, planned=N3)
    assert not verdict.passed and verdict.n == 16 and verdict.p == 0
    assert f"stopped after 16 of {N3}" in verdict.report()


def test_skewed_counts_settle_failure_before_the_end():
    shares = named(dp_hash_shares(3))
    # 3000 of 5700 on one server expected to get 2137.5 of all.
    counts = counts_of(3000, 0, 0)
    assert failure_settled(counts, shares, N3)
    verdict = chi_square_test(counts, shares, planned=N3)
    assert not verdict.passed and verdict.bound > chi2_isf(ALPHA, 2)
    assert verdict.p < ALPHA and "cannot change" in verdict.report()


def test_an_open_verdict_never_stops():
    shares = named(dp_hash_shares(3))
    for counts in (counts_of(600, 500, 500), counts_of(2000, 0, 0), counts_of(16, 0, 0)):
        assert not failure_settled(counts, shares, N3)
        with pytest.raises(ValueError, match="open"):
            chi_square_test(counts, shares, planned=N3)


def test_min_final_chi2_is_the_best_completion():
    shares = {"a": 0.5, "b": 0.5}
    # 60 of 100 seen, all on a: the best the other 40 can do is all on b.
    assert min_final_chi2({"a": 60}, shares, 100) == pytest.approx(2 * 10 ** 2 / 50)
    assert min_final_chi2({"a": 30, "b": 30}, shares, 100) == pytest.approx(0, abs=1e-9)
    # Brute force over every integer completion is never below the bound.
    counts = {"a": 7, "b": 1}
    best = min((7 + i - 10) ** 2 / 10 + (1 + 12 - i - 10) ** 2 / 10 for i in range(13))
    assert min_final_chi2(counts, shares, 20) <= best + 1e-9


def test_a_full_sample_is_judged_as_before():
    shares = named(dp_hash_shares(3))
    full = chi_square_test(counts_of(633, 486, 481), shares, planned=1600)
    plain = chi_square_test(counts_of(633, 486, 481), shares)
    assert full.passed == plain.passed and full.p == plain.p and full.bound is None


# the interim looks (futility stops) ------------------------------------------

def test_look_bounds_known_values():
    # df 1: lambda_50 = 23.20 (full test at 50 % power); the half-way bound
    # is the 2 % quantile of a non-central chi2(1, 11.60)
    assert looks(5700) == [1425, 2850, 4275] and looks(500) == [125, 250, 375]
    assert [[round(look_bound(df, i), 3) for i in range(3)] for df in (1, 2, 4)] == [
        [0.186, 1.975, 4.763], [0.773, 3.212, 6.569], [2.164, 5.495, 9.670]]
    assert 1 - ncx2_sf(ncx2_ppf(0.02, 2, 13.0), 2, 13.0) == pytest.approx(0.02, abs=1e-7)
    assert [[round(s, 3) for s in look_stops(df)] for df in (1, 2, 4)] == [
        [0.334, 0.840, 0.971], [0.320, 0.799, 0.963], [0.294, 0.760, 0.954]]
    stats = pytest.importorskip("scipy.stats")
    for df in (1, 2, 4):
        crit = stats.chi2.isf(ALPHA, df)
        lo, hi = 0.0, 200.0
        for _ in range(100):
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if stats.ncx2.sf(crit, df, mid) < 0.5 else (lo, mid)
        for i, fraction in enumerate((0.25, 0.5, 0.75)):
            assert look_bound(df, i) == pytest.approx(
                stats.ncx2.ppf(0.02, df, hi * fraction), rel=1e-5)


def test_the_looks_cost_little_power_and_keep_the_required_power():
    for k in SUITE_K:
        for legacy in (False, True):
            p0 = dp_hash_shares(k, legacy=legacy)
            for p1 in alternatives(k, legacy).values():
                with_look = power_with_look(p0, p1, planned_samples(k))
                assert POWER <= with_look <= power(p0, p1, planned_samples(k))
    # k=3, 1/k shares: the hardest case, 0.9078 without the looks
    p0 = dp_hash_shares(3)
    assert power_with_look(p0, uniform_shares(3), N3) == pytest.approx(
        0.9018, abs=1e-4)
    # a split the full test catches half the time loses at most LOOK_MISS per look
    crit = chi2_isf(ALPHA, 2)
    assert power(p0, uniform_shares(3), 3600) == pytest.approx(0.5, abs=0.01)
    loss = power(p0, uniform_shares(3), 3600) - power_with_look(p0, uniform_shares(3), 3600)
    assert 0 < loss <= 3 * 0.02 and crit > look_bound(2, 2)


def test_a_correct_split_stops_at_the_looks_as_often_as_computed():
    """Simulated dp_hash counts (a fixed seed), one check over 3 servers
    run to its end: the share below each look's bound matches look_stops()
    within 4 standard deviations, and the samples taken on average stay
    under mean_samples_bound()."""
    import random
    rng = random.Random(20261128)
    shares = named(dp_hash_shares(3))
    trials, at = 400, looks(N3)
    below = [0] * len(at)
    taken = 0
    for _ in range(trials):
        drawn = rng.choices(list(shares), weights=list(shares.values()), k=N3)
        stopped = None
        for i, n in enumerate(at):
            passes = look_passes({b: drawn[:n].count(b) for b in shares}, shares, N3)
            below[i] += passes
            if passes and stopped is None:
                stopped = n
        taken += stopped or N3
    for i, expected in enumerate(look_stops(2)):
        sd = math.sqrt(expected * (1 - expected) / trials)
        assert abs(below[i] / trials - expected) < 4 * sd
    assert taken / trials < mean_samples_bound(N3, 2)


def test_a_sample_stopped_at_a_look_passes_and_says_so():
    shares = named(dp_hash_shares(3))
    half = looks(N3)[1]
    counts = counts_of(1110, 870, half - 1110 - 870)  # chi2 = 2.55
    assert look_passes(counts, shares, N3)
    verdict = chi_square_test(counts, shares, planned=N3)
    assert verdict.passed and verdict.look == look_bound(2, 1)
    assert f"stopped after {half} of {N3} planned samples at an interim look" in (
        verdict.report())
    # The first look's bound is tighter: the same proportions do not stop there.
    quarter = counts_of(555, 435, looks(N3)[0] - 555 - 435)  # chi2 = 1.27
    assert not look_passes(quarter, shares, N3)
    # Above the bound the look does not stop, and a verdict there is open.
    skewed = counts_of(1150, 850, 850)
    assert not look_passes(skewed, shares, N3) and not failure_settled(
        skewed, shares, N3)
    with pytest.raises(ValueError, match="open"):
        chi_square_test(skewed, shares, planned=N3)
    # Between looks nothing passes early, however even.
    even = counts_of(600, 500, 500)
    assert not look_passes(even, shares, N3)
    with pytest.raises(ValueError, match="open"):
        chi_square_test(even, shares, planned=N3)


def test_the_stop_rule_looks_at_each_look():
    from pytest_ovnlb.traffic.client import Result
    from pytest_ovnlb.verdicts.checks import Settled
    shares = {"vm1:8000": 0.5, "vm2:8000": 0.5}
    stop = Settled(shares, 100)
    assert stop.looks == [25, 50, 75]

    def results(a, b):
        return [Result(backend="vm1", port=8000)] * a + [Result(backend="vm2", port=8000)] * b
    assert not stop(results(10, 10))  # before the first look
    assert not stop(results(17, 8))   # the first look, chi2 = 3.24 > 0.186: go on
    assert not stop(results(28, 12))  # between looks
    assert not stop(results(34, 16))  # the second, chi2 = 6.48 > 1.975: go on
    assert stop(results(40, 35))      # the third, chi2 = 0.33 < 4.763: a pass
    assert Settled(shares, 100)(results(13, 12))  # a first look that passes
    # a server with no share settles the failure at once, a lost connection does not
    assert Settled(shares, 100)(results(0, 1) + [Result(backend="vm3", port=8000)])
    assert not Settled(shares, 100)(results(0, 1) + [Result(error="timeout")])
    # ... but once one is lost no look stops: the check runs to its plan
    assert not Settled(shares, 100)(results(13, 12) + [Result(error="timeout")])
    assert Settled(shares, 100).counted(results(13, 12) + [Result(error="reset")]) == 25


# lost connections ---------------------------------------------------------------

SHARES2 = {"vm1:8000": 0.5, "vm2:8000": 0.5}
SHARES3 = {"vm1:8000": 0.375, "vm2:8000": 0.3125, "vm1:8001": 0.3125}


def answers(counts: dict[str, int]) -> list[Result]:
    return [Result(backend=t.split(":")[0], port=int(t.split(":")[1]))
            for t, c in counts.items() for _ in range(c)]


def lost(n: int, kind: str = "timeout") -> list[Result]:
    return [Result(error=kind)] * n


def test_binomial_tail_is_the_brute_force_sum():
    from fractions import Fraction
    from math import comb
    for k, n, (a, b) in ((1, 64, (1, 100)), (9, 64, (1, 100)), (14, 514, (1, 100)),
                         (84, 5784, (1, 100)), (3, 20, (1, 2)), (40, 1000, (3, 100))):
        # in integers: sum of C(n, i) a^i (b - a)^(n - i), over b^n
        exact = Fraction(sum(comb(n, i) * a ** i * (b - a) ** (n - i)
                             for i in range(k, n + 1)), b ** n)
        assert binomial_sf(k, n, a / b) == pytest.approx(float(exact), rel=1e-9)
    assert binomial_sf(65, 64, 0.01) == 0.0 and binomial_sf(0, 64, 0.01) == 1.0
    assert loss_p(1, 63) == pytest.approx(1 - 0.99 ** 64, rel=1e-12)


def test_loss_test_constants_and_power():
    assert (LOSS_TOLERANCE, LOSS_ALPHA) == (0.01, 0.001)
    # the fewest lost that fail a check over its planned answers
    assert [loss_critical(PLANNED_SAMPLES[k]) for k in SUITE_K] == [14, 84, 79]
    for k in SUITE_K:
        n = PLANNED_SAMPLES[k]
        c = loss_critical(n)
        assert loss_p(c, n) < LOSS_ALPHA <= loss_p(c - 1, n)
        # the false-alarm rate at exactly the tolerated rate: at most LOSS_ALPHA
        assert loss_power(LOSS_TOLERANCE, n) <= LOSS_ALPHA
        # P(at least c lost before the n-th answer), summed as a negative binomial
        from math import comb
        r = 0.03
        below = sum(comb(n + i - 1, i) * (1 - r) ** n * r ** i for i in range(c))
        assert loss_power(r, n) == pytest.approx(1 - below, rel=1e-9)
    assert loss_power(0.05, 500) > 0.99 and loss_power(0.03, 500) > 0.6
    assert loss_power(0.03, N3, looks_too=True) > 0.9999


def test_one_lost_connection_of_64_passes():
    results = answers({"vm1:8000": 32, "vm2:8000": 31}) + lost(1)
    verdict = checks.distribution(results, SHARES2)
    assert verdict.passed and verdict.n == 63 and verdict.losses.lost == 1
    assert ("lost 1 of 64 connections (timeout 1): within the 1 % tolerance "
            "(p=0.47 >= 0.001)") in verdict.report()
    assert not checks.Settled(SHARES2, 500)(results)  # sampling goes on


def test_a_5_percent_loss_at_the_planned_n_fails_for_that_reason():
    for shares in (SHARES2, SHARES3):
        n = 500 if len(shares) == 2 else N3
        results = answers({t: round(n * s) for t, s in shares.items()})
        lossy = results + lost(round(n * 0.05 / 0.95) - 3) + lost(3, "reset")
        verdict = checks.distribution(lossy, shares, planned=n)
        assert verdict.split_passed and not verdict.losses.passed and not verdict.passed
        why = checks.failure(verdict, "the split")
        assert why.startswith(f"lost {verdict.losses.lost} of {len(lossy)} connections (reset 3, "
                              "timeout ") and "more than a 1 % loss rate explains" in why
        assert "split" not in why and "verdict: consistent" in verdict.report()
        # 1 % lost passes
        assert checks.distribution(results + lost(n // 100), shares, planned=n).passed


def test_everything_lost_stops_after_a_round_or_two():
    """Nothing answers: 64 lost fail a check over 500 answers, 192 (a
    second round) one over 5700 or 5300."""
    assert loss_settled(64, 500) and not loss_settled(64, N3) and loss_settled(192, N3)
    assert checks.Settled(SHARES2, 500)(lost(64))
    assert not checks.Settled(SHARES3, N3)(lost(64)) and checks.Settled(SHARES3, N3)(lost(192))
    verdict = checks.distribution(lost(64), SHARES2, planned=500)
    assert not verdict.passed and verdict.n == 0 and verdict.split_passed is None
    text = verdict.report()
    assert "lost 64 of 64 connections (timeout 64): more than a 1 % loss rate explains" in text
    assert ("stopped after 0 of 500 planned samples: the verdict cannot change (the 64 lost "
            "fail the loss test over all 500 planned, whatever follows)") in text
    assert checks.failure(verdict, "the split").startswith("lost 64 of 64")
    with pytest.raises(ValueError, match="open"):
        checks.distribution(lost(64), SHARES3, planned=N3)


def test_a_backend_without_a_share_still_fails_at_once():
    results = answers({"vm1:8000": 10, "vm9:8000": 1}) + lost(1)
    assert checks.Settled(SHARES2, 500)(results)
    verdict = checks.distribution(results, SHARES2, planned=500)
    assert not verdict.passed and verdict.split_passed is False and verdict.chi2 == math.inf
    assert verdict.losses.passed and "(unexpected)" in verdict.report()
    assert checks.failure(verdict, "the split") == "the split"


def test_expected_errors_are_part_of_the_split():
    """A stopped server's refusals, when the check expects them, are an
    outcome of the split; a timeout there is lost."""
    shares = {"error:refused": 0.5, "vm2:8000": 0.5}
    results = [Result(error="refused")] * 250 + answers({"vm2:8000": 250}) + lost(1)
    counts, gone = checks.answers_and_losses(results, shares)
    assert counts == {"error:refused": 250, "vm2:8000": 250} and gone == {"timeout": 1}
    assert checks.distribution(results, shares, planned=500).passed


def test_sampling_goes_on_until_the_planned_answers():
    """fresh() counts what the stop rule counts: with connections lost it
    draws more, cut to reach each look exactly, and ends with the plan."""
    agent = Agent.__new__(Agent)
    made = []

    def scripted(host, port, count, *args):
        made.append(count)
        # every 7th connection is lost, a balanced split otherwise
        out = [Result(error="timeout") if (len(made) * 1000 + i) % 7 == 0
               else Result(backend=f"vm{1 + i % 2}", port=8000) for i in range(count)]
        return out
    agent._fresh = scripted
    asked = []

    class Stop(checks.Settled):
        def __call__(self, results):
            asked.append(self.counted(results))
            return False
    stop = Stop(SHARES2, 500)
    results = agent.fresh("192.0.2.1", 8000, 500, stop=stop)
    assert stop.counted(results) == 500 and len(results) > 500
    assert set(stop.looks) <= set(asked), asked
