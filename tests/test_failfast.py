"""A broken build fails fast: with the gateway router's SNAT gone, every
connection from the inside client through it times out, and the
distribution checks fail after one round of connections (about one
connection timeout) instead of waiting out thousands of timeouts, saying
what they saw and that the verdict could not change."""

import re
import shutil
from pathlib import Path

import pytest

from pytest_ovnlb.verdicts.stats import DEFAULT_SAMPLES

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
    result.assert_outcomes(failed=3)
    calls = {m.group(2): float(m.group(1))
             for m in re.finditer(r"^([\d.]+)s call\s+\S+::(\S+)", out, re.M)}
    assert len(calls) == 3, out
    for test, seconds in calls.items():
        assert seconds < CONNECTION_TIMEOUT + SLACK, f"{test} took {seconds:.1f} s:\n{out}"
    # What was seen, and why sampling stopped.
    assert out.count(f"stopped after 16 of {DEFAULT_SAMPLES} planned samples: the verdict "
                     "cannot change (an outcome impossible under the expected shares)") == 3, out
    assert re.search(r"error:timeout\s+16\s+1\.0000\s+0\.0000", out), out
