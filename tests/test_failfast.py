"""A broken build fails fast: with the gateway router's SNAT gone, every
connection from the inside client through it times out, and the
distribution checks fail after one or two rounds of connections (one
connection timeout each) instead of waiting out thousands of timeouts,
saying what they saw and that the verdict could not change."""

import re
import shutil
import time
from pathlib import Path

import pytest

from pytest_ovnlb.verdicts.checks import SAMPLING_CONCURRENCY
from pytest_ovnlb.verdicts.stats import PLANNED_SAMPLES, SUITE_K, loss_critical

pytestmark = pytest.mark.lab

CONFORMANCE = Path(__file__).resolve().parent.parent / "conformance"

# Loaded with -p: after the lab is up, edge1 loses its SNAT row, so replies
# from the backends to the inside client bypass edge1's un-DNAT.
BREAK_SNAT = '''
import pytest

@pytest.fixture(scope="session", autouse=True)
def broken_snat(ovn_lab):
    router = ovn_lab.names.nb(ovn_lab.topology.roles.gateway_router)
    ovn_lab.nb.api.lr_nat_del(router, nat_type="snat").execute(check_error=True)
    ovn_lab.sync()
'''

# The timeout of one connection, and what the checks may take on top of it
# (load balancer set-up, a first batch, a report).
CONNECTION_TIMEOUT = 2.0
SLACK = 6.0


def test_distribution_fails_within_seconds_without_snat(pytester):
    for name in ("conftest.py", "test_distribution.py"):
        shutil.copy(CONFORMANCE / name, pytester.path / name)
    pytester.makepyfile(break_snat=BREAK_SNAT)
    pytester.syspathinsert()
    result = pytester.runpytest_subprocess(
        "-p", "break_snat", "-p", "no:cacheprovider", "test_distribution.py",
        "-k", "router and internal", "--durations=0", "--durations-min=0", "-rN",
        timeout=300)
    out = result.stdout.str()
    assert result.ret == pytest.ExitCode.TESTS_FAILED, out
    runs = 6  # k = 2, 3, 5, for each address family
    result.assert_outcomes(failed=runs)
    calls = {m.group(2): float(m.group(1))
             for m in re.finditer(r"^([\d.]+)s call\s+\S+::(\S+)", out, re.M)}
    assert len(calls) == runs, out
    for test, seconds in calls.items():
        assert seconds < 2 * CONNECTION_TIMEOUT + SLACK, f"{test} took {seconds:.1f} s:\n{out}"
    # What was seen, and why sampling stopped: as soon as the losses fail the
    # loss test over the planned answers, after one round of 64 connections
    # or two (64 + 128).
    for k in SUITE_K:  # once per address family
        planned = PLANNED_SAMPLES[k]
        lost = next(n for n in (SAMPLING_CONCURRENCY, 3 * SAMPLING_CONCURRENCY)
                    if n >= loss_critical(planned))
        assert (f"lost {lost} of {lost} connections (timeout {lost}): more than a 1 % loss "
                "rate explains") in out
        assert out.count(f"stopped after 0 of {planned} planned samples: the verdict cannot "
                         f"change (the {lost} lost fail the loss test over all {planned} "
                         "planned, whatever follows)") == 2, out


# --- the traffic agent alone, over a veth pair -----------------------------

from test_traffic import B_IP, agents, ip, netns_pair  # noqa: E402,F401  (fixtures)

from pytest_ovnlb.verdicts import checks  # noqa: E402


def test_stalled_connections_time_out_side_by_side(agents, netns_pair):
    """64 connections that all time out, 16 at a time: they stop holding a
    slot once stalled, so they take about one timeout, not four rounds."""
    a, _ = agents
    ip("-n", netns_pair[0], "neigh", "replace", "192.0.2.99",
       "lladdr", "02:00:00:00:00:99", "dev", "eth0", "nud", "permanent")
    started = time.monotonic()
    results = a.fresh("192.0.2.99", 8000, 64, concurrency=16, timeout=1.0)
    elapsed = time.monotonic() - started
    assert [r.error for r in results] == ["timeout"] * 64
    assert elapsed < 2.5, f"64 timeouts took {elapsed:.1f} s"


def test_sampling_stops_once_the_verdict_is_settled(agents, netns_pair):
    a, b = agents
    b.unserve(8000)
    shares = {f"{netns_pair[1]}:8000": 1.0}
    n = PLANNED_SAMPLES[3]
    results = a.fresh(B_IP, 8000, n, stop=checks.Settled(shares, n))
    # lost: rounds of 16, 32 and 64, as 84 fail the loss test over n answers
    assert [r.error for r in results] == ["refused"] * 112
    verdict = checks.distribution(results, shares, planned=n)
    assert not verdict.passed and f"stopped after 0 of {n}" in verdict.report()
    # A working path runs to the end.
    shares = {f"{netns_pair[1]}:8001": 1.0}
    results = a.fresh(B_IP, 8001, 600, stop=checks.Settled(shares, 600))
    assert len(results) == 600 and checks.distribution(results, shares, planned=600).passed
    # A stop rule is asked at exactly each of its looks.
    asked = []

    class Looks:
        looks = [100, 250, 450]

        def __call__(self, results):
            asked.append(len(results))
            return False
    assert len(a.fresh(B_IP, 8001, 600, stop=Looks())) == 600
    assert set(Looks.looks) <= set(asked), asked


def test_session_stops_at_its_first_failure(agents):
    a, b = agents
    with a.session(B_IP, 8000, timeout=1.0) as session:
        assert session.get(1)[0].ok
        b.unserve(8000)  # closes the connection; a new one is refused
        results = session.get(50)
    assert len(results) == 1 and results[0].error in ("reset", "refused"), results
