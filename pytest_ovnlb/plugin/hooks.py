"""pytest-ovnlb's hooks: every pytest hook the plugin implements, once
each.  This module is the `pytest11` entry point; the fixtures it
re-exports live in `fixtures.py`, the options in `options.py`, the run's
state in `state.py` (on the config's stash)."""

from __future__ import annotations

import itertools
import os
import sys
import time

import pytest

from pytest_ovnlb import backends
from pytest_ovnlb.backends import netns
from pytest_ovnlb.engine import records, topology
from pytest_ovnlb.engine.procs import sigterm_as_interrupt
from pytest_ovnlb.errors import LabError
from pytest_ovnlb.lab import destroy, preflight, start_cluster
from pytest_ovnlb.model.placements import DEFAULT, FAMILIES, PLACEMENTS
from pytest_ovnlb.plugin import collector, evidence, hookspecs, options, state
from pytest_ovnlb.plugin.fixtures import (  # noqa: F401  (re-exported so pytest finds them)
    _ovnlb_needs,
    family,
    ovn_case,
    ovn_hub,
    ovn_lab,
    ovn_lbs,
    ovn_upgrade,
    ovnlb_measure,
    placement,
)
from pytest_ovnlb.reporting import features, measure
from pytest_ovnlb.upgrade import upgrade_path
from pytest_ovnlb.verdicts import Unmet


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hookspecs)


def pytest_addoption(parser: pytest.Parser) -> None:
    options.add_options(parser)


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
    added = plugged_in(config)  # before the settings name one of them
    try:
        settings = options.read(config)
    except pytest.UsageError:
        for registry, name in added:
            registry.remove(name)
        raise
    config.stash[options.SETTINGS] = settings
    worker = state.worker_id(config)
    if worker and "ovnlb_run" in config.workerinput:
        folder = config.workerinput["ovnlb_run"]
    else:
        folder = f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    run = state.Run(settings=settings, worker=worker, folder=folder,
                    exemptions=collector.exemptions(settings.exempt), added=added)
    config.stash[state.RUN] = run
    if not worker:  # the report's hooks (plugin/collector.py), in the controller only
        config.pluginmanager.register(collector.Collector(config), "ovnlb-report")
    # SIGTERM ends the run as Ctrl-C does: labs removed, JUnit and the report
    # written; in every process of the run.
    run.sigterm.enter_context(sigterm_as_interrupt())


def plugged_in(config: pytest.Config) -> list:
    """Other plugins' topologies and backends, added to the registries;
    returns what was added, as (registry, name)."""
    added = []
    try:
        for registry, hook in ((topology.REGISTRY, config.hook.pytest_ovnlb_topologies),
                               (backends.REGISTRY, config.hook.pytest_ovnlb_backends)):
            for item in itertools.chain.from_iterable(hook()):
                registry.add(item)
                added.append((registry, item.name))
    except LabError as exc:
        for registry, name in added:
            registry.remove(name)
        raise pytest.UsageError(f"ovnlb: {exc}") from None
    return added


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:
    """xdist: every worker saves evidence into the controller's run folder."""
    node.workerinput["ovnlb_run"] = state.of(node.config).folder


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """In the controller (not xdist workers):
    - --ovnlb-skip-exit-code: a run that cannot happen here ends at once
      with that code and one line;
    - spin-up mode: start the cluster from --ovn-fmn-dir when none runs, and
      stop it at the end.  A record owned by this process makes a later
      sweep stop it if the run is killed."""
    run = state.of(session.config)
    settings = run.settings
    if run.worker:
        return
    if settings.skip_exit_code is not None:
        try:
            preflight(settings.backend, settings.lab_spec)
        except LabError as exc:
            sys.stderr.write(f"ovnlb: skipped, cannot run here: {exc}\n")
            sys.stderr.flush()
            os._exit(settings.skip_exit_code)  # pytest.exit would add its own lines
    if settings.backend != "fake-multinode" or not settings.fmn_dir:
        return
    try:
        run.cluster = start_cluster(settings.lab_spec)
    except LabError as exc:
        raise pytest.UsageError(f"ovnlb: {exc}") from None


def pytest_unconfigure(config: pytest.Config) -> None:
    run = config.stash.get(state.RUN, None)
    if run is None:
        return
    run.sigterm.close()
    for registry, name in run.added:
        registry.remove(name)
    if run.cluster is not None:
        cluster, run.cluster = run.cluster, None
        destroy(cluster)


def pytest_report_header(config: pytest.Config) -> list[str]:
    settings = state.of(config).settings
    try:
        found = preflight(settings.backend, settings.lab_spec)
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
        found = netns.installs(settings.lab_spec)
        mixed = found["central"] != found["chassis"]
        for part, ins in found.items() if mixed else [("", found["central"])]:
            which = f" ({part}, in {ins.root or '/'})" if mixed else ""
            lines.append(f"ovnlb: programs{which}: "
                         + ", ".join(f"{p} {path}" for p, path in ins.programs.items()))
    return lines


@pytest.hookimpl(tryfirst=True)  # every collected test, before -k/-m deselect any
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Exemptions marked; tests using the lab interleaved in xdist workers;
    a one-line refusal to start when they need a lab that can't be built."""
    collector.mark_exempted(config, items)
    if not any(evidence.uses_lab(item) or "ovn_upgrade" in getattr(item, "fixturenames", ())
               for item in items):
        return
    run = state.of(config)
    if run.worker:
        items[:] = interleaved(items)
    if config.option.collectonly:
        return
    try:
        if run.settings.upgrade_from or run.settings.upgrade_procedure:
            run.upgrade = upgrade_path(run.settings)
        preflight(run.settings.backend, run.settings.lab_spec)
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


def pytest_itemcollected(item: pytest.Item) -> None:
    # before -m selects on the markers: a run keeps its own placement's marker only
    callspec = getattr(item, "callspec", None)
    placement = callspec.params.get("placement") if callspec else None
    if placement:
        item.own_markers[:] = [m for m in item.own_markers
                               if m.name not in PLACEMENTS or m.name == placement]
    features.mark(item)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem):
    measure.running(item)
    state.of(item.config).current = item
    try:
        return (yield)
    finally:
        measure.running(None)
        state.of(item.config).current = None


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item):
    if not evidence.uses_lab(item):
        return (yield)
    watch = evidence.before_setup(item)
    try:
        return (yield)
    finally:
        evidence.after_setup(item, watch)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    """A verdict that does not hold fails the test with its message alone;
    a lab daemon that died, or logged what it should not, fails it too."""
    try:
        try:
            result = yield
        except Unmet as exc:
            raise pytest.fail.Exception(str(exc), pytrace=False) from None
    finally:
        evidence.died(item)
    evidence.complained(item)  # only after a call that passed: a failure says more
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem):
    try:
        return (yield)
    finally:
        evidence.died(item)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    collector.describe_test(item, call.when)
    report = yield
    if report.failed and evidence.uses_lab(item):
        run = state.of(item.config)
        run.failed = True
        lab = getattr(item, "funcargs", {}).get("ovn_lab")
        if lab is not None:
            # the lab's whole status once, under its first failure; a line after that
            first = run.first_failure.setdefault(lab.name, item.nodeid)
            if first != item.nodeid:
                text = f"lab {lab.name}: its status is under the first failure, {first}"
            else:
                note = ("kept after the run (--ovnlb-keep-on-failure)"
                        if run.settings.keep_on_failure else
                        "removed at the end of the run; --ovnlb-keep-on-failure keeps it")
                text = f"{lab.status()}\n  this lab is {note}"
            report.sections.append(("ovnlb lab", text))
    evidence.add_to_report(item, report)
    return report


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    kept = [r for r in records.all_records() if r.kept_for == os.getpid()]
    for lab in kept:
        terminalreporter.write_line(
            f"ovnlb: lab {lab.name} kept after failures: "
            f"`ovnlb-lab status --name {lab.name}`, "
            f"`ovnlb-lab exec --name {lab.name} NODE -- CMD`, "
            f"`ovnlb-lab down --name {lab.name}` when done", yellow=True)
