"""Shared pieces of the conformance suite.  The plugin (pytest_ovnlb) brings
the lab, the placement parametrization and the load balancer factory."""

import pytest

from pytest_ovnlb.engine.ovsdb import Southbound
from pytest_ovnlb.plugin.options import SETTINGS
from pytest_ovnlb.verdicts import checks
from pytest_ovnlb.verdicts.stats import samples_for


@pytest.fixture
def samples(request):
    """`samples(k)`: new connections a distribution check over k servers
    plans: the fewest giving its power, or --ovnlb-samples where more."""
    setting = request.config.stash[SETTINGS].samples
    return lambda k: samples_for(k, setting)


@pytest.fixture(scope="module")
def ovn_sb(ovn_lab):
    """The lab's Southbound DB (Service_Monitor, logical flows, MAC bindings)."""
    sb = Southbound(ovn_lab.sb_remote(), where=ovn_lab.central)
    yield sb
    sb.close()


@pytest.fixture
def control(ovn_hub):
    """`control(client, servers)`: the client reaches each server by its own
    address.  A test that asserts a refusal, a timeout or a missing
    translation runs this first, so that only the cause it asserts can
    explain the failure: a dead datapath fails the control, not passes."""
    def check(node: str, servers, count: int = 4) -> None:
        ovn_hub.serve(list(servers))
        for s in servers:
            results = ovn_hub.connect(node, s.ip, s.port, count, timeout=2.0)
            assert checks.tally(results) == {s.target: count}, (
                f"control failed: {node} cannot reach {s.target} at its own address "
                f"{s.endpoint}, so the lab cannot show what the test asserts: "
                f"{checks.summary(results)}")
    return check
