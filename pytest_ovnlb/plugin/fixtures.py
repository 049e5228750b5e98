"""pytest-ovnlb fixtures.

- `ovn_lab` (session): one lab per process, so each xdist worker has its own,
  named `pytest<pid>`; removed at the end (kept after a failure with
  --ovnlb-keep-on-failure).
- `ovn_hub` (session): traffic agents per node and the backends' web servers.
- `ovn_lbs` (test): load balancer factory for the test's `placement` and
  address `family` (VIPs, backends and clients all IPv4 or all IPv6); the lab
  is reset before each test (load balancers removed, conntrack flushed, the
  servers' open connections reset).
- `ovn_case` (test): all of that for one test, with its expectations
  (pytest_ovnlb/case.py).
- `ovnlb_measure` (test): the test's measurements for the run's report.
- `ovn_upgrade` (test): an upgrade run's walk and its verdicts
  (pytest_ovnlb/upgrade.py).
"""

from __future__ import annotations

import os

import pytest

from pytest_ovnlb.case import Case
from pytest_ovnlb.engine import topology
from pytest_ovnlb.errors import LabError
from pytest_ovnlb.lab import Lab
from pytest_ovnlb.model.placements import FAMILIES, PLACEMENTS
from pytest_ovnlb.plugin import evidence, state
from pytest_ovnlb.reporting import features, measure
from pytest_ovnlb.traffic.harness import Hub, LoadBalancers
from pytest_ovnlb.upgrade import Walk, walk_quietly


@pytest.fixture(scope="session")
def ovn_lab(request: pytest.FixtureRequest):
    run = state.of(request.config)
    settings = run.settings
    try:
        lab = Lab.up(f"pytest{os.getpid()}", settings.topology, owner=os.getpid(),
                     timeout=settings.ready_timeout, backend=settings.backend,
                     spec=settings.lab_spec)
        if run.upgrade is not None:  # an upgrade run: the suite runs on the upgraded lab
            try:
                walk_quietly(lab, run.upgrade)
            except BaseException:
                lab.down()
                raise
    except LabError as exc:
        failure = f"ovnlb: {exc}"
    else:
        failure = None
    if failure and run.worker:
        # An xdist worker that exits mid-test takes the reason with it (the
        # controller only sees a crashed item): each of its tests errors instead.
        pytest.fail(failure, pytrace=False)
    if failure:
        pytest.exit(failure, returncode=3)
    yield lab  # a terminated run tears it down too (SIGTERM interrupts: hooks.py)
    late = evidence.last_look(run, lab)
    if settings.keep_on_failure and run.failed:
        lab.close()
        # xdist workers are children of the controller, which prints the note
        lab.record.kept_for = os.getppid() if run.worker else os.getpid()
        lab.record.own(None)
    else:
        lab.down()
    if late:
        pytest.fail(late, pytrace=False)


@pytest.fixture(scope="session")
def ovn_hub(ovn_lab: Lab):
    hub = Hub(ovn_lab)
    yield hub
    hub.close()


@pytest.fixture
def placement(request: pytest.FixtureRequest) -> str:
    """"router", "switch" or "dgp"; set by parametrization from the test's markers."""
    return request.param


@pytest.fixture
def family(request: pytest.FixtureRequest) -> int:
    """4 or 6; set by parametrization (ids ipv4, ipv6) from the test's markers."""
    family = FAMILIES[request.param]
    name = state.of(request.config).settings.topology
    if family not in topology.get(name).families:
        pytest.skip(f"topology {name} has no IPv{family} addresses")
    return family


@pytest.fixture
def ovn_case(ovn_lab: Lab, ovn_hub: Hub, ovn_lbs: LoadBalancers,
             request: pytest.FixtureRequest) -> Case:
    """The test's lab, servers, load balancers, placement and family, and
    the outcomes it expects (pytest_ovnlb/case.py)."""
    return Case(ovn_lab, ovn_hub, ovn_lbs, request.node)


@pytest.fixture(autouse=True)
def _ovnlb_needs(request: pytest.FixtureRequest):
    """A test that needs a behaviour the lab's versions lack is skipped,
    with the version table's reason, before the lab is touched."""
    if "ovn_lab" not in request.fixturenames or not features.needs(request.node):
        return
    versions = request.getfixturevalue("ovn_lab").versions
    why = features.missing(request.node, versions.ovn, versions.ovs)
    if why:
        pytest.skip(why)


@pytest.fixture
def ovn_lbs(ovn_lab: Lab, ovn_hub: Hub, placement: str, family: int):
    # A placement a topology may not offer: a skip that says so.  Any other
    # failure to make the factory is an error, never a skip.
    if not ovn_lab.topology.roles.datapath(placement):
        pytest.skip(f"topology {ovn_lab.topology.name} has no "
                    f"{PLACEMENTS[placement].what}: no load balancer can be placed there")
    lbs = LoadBalancers(ovn_lab, ovn_hub, placement, family)
    ovn_hub.reset()
    ovn_lab.reset()
    yield lbs
    lbs.remove_all()


@pytest.fixture
def ovnlb_measure(request: pytest.FixtureRequest) -> measure.Measurements:
    """Record measurements for the conformance report (measure.Measurements)."""
    return measure.Measurements(request.node)


@pytest.fixture
def ovn_upgrade(request: pytest.FixtureRequest):
    """An upgrade run's walk (pytest_ovnlb/upgrade.py): a lab of its own
    started on the source, taken along the path with traffic held through
    it, judged step by step; the lab is removed after.  Skipped outside an
    upgrade run (--ovn-upgrade-from)."""
    run = state.of(request.config)
    if run.upgrade is None:
        pytest.skip("not an upgrade run: --ovn-upgrade-from names the OVN to upgrade from")
    settings = run.settings
    lab = Lab.up(f"pytest{os.getpid()}u", settings.topology, owner=os.getpid(),
                 timeout=settings.ready_timeout, spec=settings.lab_spec)
    hub = Hub(lab)
    try:
        outcome = Walk(lab, hub, run.upgrade).run()
        # A failure's evidence comes from this lab, still up when the test's
        # report is made: whole logs; none judged (the walk was the set-up).
        request.node.stash[evidence.WATCH] = evidence.Watch(
            offsets={}, lab=lab, judged_from=lab.log_offsets())
        yield outcome
    finally:
        hub.close()
        lab.down()
