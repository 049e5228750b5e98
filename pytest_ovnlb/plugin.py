"""pytest-ovnlb hooks: options, markers, placement parametrization, report
header and failure context.  Fixtures live in `fixtures.py`."""

from __future__ import annotations

import contextlib
import itertools
import os

import pytest

from pytest_ovnlb import evidence
from pytest_ovnlb.backends import netns
from pytest_ovnlb.engine import records
from pytest_ovnlb.engine.procs import sigterm_as_interrupt
from pytest_ovnlb.errors import LabError
from pytest_ovnlb.fixtures import (  # noqa: F401  (re-exported so pytest finds them)
    _ovnlb_needs,
    family,
    ovn_case,
    ovn_hub,
    ovn_lab,
    ovn_lbs,
    ovn_upgrade,
    placement,
)
from pytest_ovnlb.lab import destroy, preflight, start_cluster
from pytest_ovnlb.upgrade import upgrade_path
from pytest_ovnlb.options import (
    CLUSTER,
    FAILED,
    SETTINGS,
    UPGRADE,
    Settings,
    add_options,
    count,
    setting,
)
from pytest_ovnlb.reporting import features
from pytest_ovnlb.verdicts import Unmet
from pytest_ovnlb.model.placements import DEFAULT, FAMILIES, PLACEMENTS
from pytest_ovnlb.workers import worker_id

# Reports, JUnit suite properties, exemptions, the ovnlb_record fixture
pytest_plugins = ["pytest_ovnlb.reporting.plugin"]
SIGTERM = pytest.StashKey[contextlib.ExitStack]()
FIRST_FAILURE = pytest.StashKey[dict]()  # lab name -> its first failing test


def pytest_addoption(parser: pytest.Parser) -> None:
    add_options(parser)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", f"{features.DECLARATION}(proves=(), needs=(), placement=None, family=None): "
        "what the test proves (features) and needs (version-table behaviours: skipped "
        "where the version under test lacks one), at every placement and family or at "
        "these only (pytest_ovnlb/reporting/features.py)")
    config.addinivalue_line(
        "markers", f"{features.MARKER}(name): set on every run for each feature it proves; "
        f"-m \"{features.MARKER}(name='health_check')\" selects a feature's tests")
    for p in PLACEMENTS.values():
        config.addinivalue_line(
            "markers", f"{p.name}: load balancer placed on the {p.what}"
            + ("" if p.default else "; only tests marked so run there"))
    config.addinivalue_line(
        "markers", "ipv4: VIP, backends and clients use IPv4 addresses")
    config.addinivalue_line(
        "markers", "ipv6: VIP, backends and clients use IPv6 addresses")
    settings = Settings(
        topology=setting(config, "ovn_topology"),
        backend=setting(config, "ovn_backend"),
        keep_on_failure=setting(config, "ovnlb_keep_on_failure", bool),
        samples=setting(config, "ovnlb_samples", count),
        ready_timeout=setting(config, "ovnlb_ready_timeout", float),
        ovn_root=setting(config, "ovn_root") or None,
        ovn_central_root=setting(config, "ovn_central_root") or None,
        ovn_chassis_root=setting(config, "ovn_chassis_root") or None,
        fmn_dir=setting(config, "ovn_fmn_dir") or None,
        fmn_runtime=setting(config, "ovn_fmn_runtime") or None,
        fmn_prepare_host=setting(config, "ovn_fmn_prepare_host", bool),
        upgrade_from=setting(config, "ovn_upgrade_from") or None,
        upgrade_procedure=setting(config, "ovn_upgrade_procedure") or None,
    )
    config.stash[SETTINGS] = settings
    config.stash[FAILED] = False
    # SIGTERM (a CI job cancelled, `timeout`) ends the run as Ctrl-C does: labs
    # removed, JUnit and the report written; in every process of the run.
    config.stash[SIGTERM] = contextlib.ExitStack()
    config.stash[SIGTERM].enter_context(sigterm_as_interrupt())
    config.pluginmanager.register(evidence, "ovnlb-evidence")  # failures' evidence, dead daemons


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """Spin-up mode: the controller (not xdist workers) starts the cluster
    from --ovn-fmn-dir when none runs, and stops it at the end.  A record
    owned by this process makes a later sweep stop it if the run is killed."""
    config = session.config
    settings = config.stash[SETTINGS]
    if settings.backend != "fake-multinode" or not settings.fmn_dir:
        return
    if worker_id(config):
        return
    try:
        config.stash[CLUSTER] = start_cluster(settings.request)
    except LabError as exc:
        raise pytest.UsageError(f"ovnlb: {exc}") from None


def pytest_unconfigure(config: pytest.Config) -> None:
    if SIGTERM in config.stash:
        config.stash[SIGTERM].close()
    record = config.stash.get(CLUSTER, None)
    if record is not None:
        config.stash[CLUSTER] = None
        destroy(record)


def pytest_report_header(config: pytest.Config) -> list[str]:
    settings = config.stash[SETTINGS]
    try:
        found = preflight(settings.backend, settings.request)
    except LabError as exc:
        return [f"ovnlb: {exc}; topology {settings.topology}, backend {settings.backend}"]
    lines = [f"ovnlb: {found}; topology {settings.topology}, backend {settings.backend}"]
    if settings.upgrade_from:
        try:
            lines.append(f"ovnlb: upgrade run, OVN {upgrade_path(settings).name}: labs start "
                         f"on {settings.upgrade_from} and are upgraded before the tests")
        except LabError as exc:
            lines.append(f"ovnlb: {exc}")
    if settings.backend == "netns":  # which build runs, program by program
        found = netns.installs(settings.request)
        mixed = found["central"] != found["chassis"]
        for part, ins in found.items() if mixed else [("", found["central"])]:
            which = f" ({part}, in {ins.root or '/'})" if mixed else ""
            lines.append(f"ovnlb: programs{which}: "
                         + ", ".join(f"{p} {path}" for p, path in ins.programs.items()))
    return lines


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Refuse to start, with one line, when tests need a lab that can't be built."""
    if not any({"ovn_lab", "ovn_upgrade"} & set(getattr(item, "fixturenames", ()))
               for item in items):
        return
    if worker_id(config):
        items[:] = interleaved(items)
    if config.option.collectonly:
        return
    settings = config.stash[SETTINGS]
    try:
        if settings.upgrade_from or settings.upgrade_procedure:
            config.stash[UPGRADE] = upgrade_path(settings)
        preflight(settings.backend, settings.request)
    except LabError as exc:
        raise pytest.UsageError(str(exc)) from None


def interleaved(items: list[pytest.Item]) -> list[pytest.Item]:
    """Tests sampling thousands of connections (CPU-bound) alternating with
    the others, health checks first (they mostly wait for probes): xdist
    hands tests out in this order, so one worker's waiting overlaps another's
    sampling instead of both sampling, or both waiting, at once."""
    def has(item, feature):
        return feature in features.of(item)

    sampling = [i for i in items if has(i, "distribution")]
    rest = sorted((i for i in items if not has(i, "distribution")),
                  key=lambda i: not has(i, "health_check"))  # stable
    out = []
    for pair in itertools.zip_longest(sampling, rest):
        out += [i for i in pair if i is not None]
    return out


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test using `placement` runs once per placement it is marked with
    (router and switch when unmarked), and a test using `family` once per
    address family it is marked with (ipv4 and ipv6 when unmarked); each run
    carries its placement's and family's marker and id."""
    for fixture, values, default in (("placement", tuple(PLACEMENTS), DEFAULT),
                                     ("family", tuple(FAMILIES), tuple(FAMILIES))):
        if fixture not in metafunc.fixturenames:
            continue
        marked = [v for v in values if metafunc.definition.get_closest_marker(v)]
        metafunc.parametrize(fixture, [pytest.param(v, marks=getattr(pytest.mark, v), id=v)
                                       for v in marked or default], indirect=True)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    """A verdict that does not hold fails the test with its message alone."""
    try:
        return (yield)
    except Unmet as exc:
        raise pytest.fail.Exception(str(exc), pytrace=False) from None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    report = yield
    if report.failed and "ovn_lab" in getattr(item, "fixturenames", ()):
        item.config.stash[FAILED] = True
        lab = getattr(item, "funcargs", {}).get("ovn_lab")
        if lab is not None:
            # the lab's whole status once, under its first failure; a line after that
            first = item.config.stash.setdefault(FIRST_FAILURE, {}).setdefault(
                lab.name, item.nodeid)
            if first != item.nodeid:
                text = f"lab {lab.name}: its status is under the first failure, {first}"
            else:
                keep = item.config.stash[SETTINGS].keep_on_failure
                note = ("kept after the run (--ovnlb-keep-on-failure)" if keep else
                        "removed at the end of the run; --ovnlb-keep-on-failure keeps it")
                text = f"{lab.status()}\n  this lab is {note}"
            report.sections.append(("ovnlb lab", text))
    return report


def pytest_itemcollected(item: pytest.Item) -> None:
    # before -m selects on the markers: a run keeps its own placement's marker only
    callspec = getattr(item, "callspec", None)
    placement = callspec.params.get("placement") if callspec else None
    if placement:
        item.own_markers[:] = [m for m in item.own_markers
                               if m.name not in PLACEMENTS or m.name == placement]
    features.mark(item)


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    kept = [r for r in records.all_records() if r.kept_for == os.getpid()]
    for record in kept:
        terminalreporter.write_line(
            f"ovnlb: lab {record.name} kept after failures: "
            f"`ovnlb-lab status --name {record.name}`, "
            f"`ovnlb-lab exec --name {record.name} NODE -- CMD`, "
            f"`ovnlb-lab down --name {record.name}` when done", yellow=True)
