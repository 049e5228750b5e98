"""pytest hooks of the reporting layer (loaded by pytest_ovnlb.plugin):
options, the `ovnlb_record` fixture, exemptions, per-test data shipped in
`user_properties` (so it crosses pytest-xdist), and, in the controller only,
the run report and the JUnit suite properties.

Worker side: each test's report carries its file, function, placement,
parameters and features (its `ovnlb_feature` markers), the versions its
lab reported, and what the test recorded.
Controller side: these entries are taken out of `user_properties` before
the JUnit writer sees them (a testcase with properties is not valid xunit2)
and collected; at the end the report is written once."""

from __future__ import annotations

import json
import os
import sys
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path

import pytest
from _pytest.junitxml import xml_key

import pytest_ovnlb
from pytest_ovnlb.backends import netns
from pytest_ovnlb.errors import LabError
from pytest_ovnlb.lab import preflight
from pytest_ovnlb.options import SETTINGS
from pytest_ovnlb.reporting import coverage, exempt, features, record, report
from pytest_ovnlb.verdicts.stats import SUITE_K, samples_for
from pytest_ovnlb.workers import worker_id

STATE = pytest.StashKey["Collector"]()
EXEMPT = pytest.StashKey[list]()
VERSIONS_SENT = pytest.StashKey[bool]()  # the lab's versions went with a report
XFAIL_PREFIX = "exempted: "
# a failure's report section naming its evidence folder (pytest_ovnlb/evidence.py)
EVIDENCE_SECTION, EVIDENCE_SAVED = "ovnlb evidence", "saved in "


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("ovnlb", "OVN load balancer conformance")
    for flag, ini, help, kind in [
        ("--ovnlb-report", "ovnlb_report",
         ("write the run's conformance report (JSON, schema "
          "pytest_ovnlb/reporting/report.schema.json) to PATH"), str),
        ("--ovnlb-exempt", "ovnlb_exempt",
         "exemption file: tests not to run, by stable id, each with a reason", str),
        ("--ovnlb-skip-exit-code", "ovnlb_skip_exit_code",
         ("exit with this code and one line when the suite cannot run here "
          "(not root, no OVN/OVS programs), e.g. 77 for autopkgtest"), int),
    ]:
        group.addoption(flag, dest=ini, default=None, type=kind,
                        help=f"{help} (ini: {ini})")
        parser.addini(ini, help, default="")


def _setting(config: pytest.Config, key: str, kind=str):
    value = config.getoption(key)
    if value is not None:
        return value
    text = config.getini(key)
    return kind(text) if text else None


class Collector:
    """The controller's view of the run."""

    def __init__(self, config: pytest.Config):
        self.config = config
        self.path = _setting(config, "ovnlb_report")
        self.start = time.time()
        self.tests: dict[str, report.TestRecord] = {}
        self.implementation: dict | None = None
        self.exemptions: list[exempt.Exemption] = []
        self.crashes: list[dict] = []  # lab daemons that died, in the order seen

    def take(self, rep: pytest.TestReport) -> None:
        ours = [(k, v) for k, v in rep.user_properties if k in record.KEYS]
        if not ours:
            return
        rep.user_properties = [(k, v) for k, v in rep.user_properties if k not in record.KEYS]
        test = self.tests.setdefault(rep.nodeid, report.TestRecord(rep.nodeid))
        test.duration += rep.duration
        for key, value in ours:
            if key == record.META:
                test.meta = dict(value)
            elif key == record.IMPLEMENTATION and self.implementation is None:
                self.implementation = dict(value)
            elif key == record.EVIDENCE:
                test.evidence = str(value)
            elif key == record.CRASH:
                self.crashes.append(dict(value))
        for title, content in rep.sections:
            if title == EVIDENCE_SECTION and content.startswith(EVIDENCE_SAVED):
                test.evidence = content[len(EVIDENCE_SAVED):].strip()
        if rep.when == "call" or rep.failed or rep.skipped:
            # a phase's own measurements: the latest list is the whole list
            test.measurements = [dict(v) for k, v in ours if k == record.MEASUREMENT]
        if rep.failed and test.outcome != "failed":
            test.outcome = "failed"
            crash = getattr(rep.longrepr, "reprcrash", None)
            message = crash.message if crash is not None else rep.longreprtext
            test.message = (f"{rep.when}: " if rep.when != "call" else "") + message[-4000:]
        elif rep.skipped and test.outcome == "passed":
            reason = getattr(rep, "wasxfail", None)
            if reason is not None and XFAIL_PREFIX in reason:
                test.outcome = "exempted"
                test.reason = reason[reason.index(XFAIL_PREFIX) + len(XFAIL_PREFIX):]
            else:
                test.outcome = "skipped"
                test.reason = (rep.longrepr[2] if isinstance(rep.longrepr, tuple)
                               else reason or rep.longreprtext).removeprefix("Skipped: ")

    def implementation_now(self) -> dict:
        settings = self.config.stash[SETTINGS]
        found = dict(self.implementation or {})
        impl = {"ovn": found.get("ovn"), "ovs": found.get("ovs"),
                "datapath": found.get("datapath"), "backend": settings.backend,
                "topology": settings.topology, "root": None, "packages": {}}
        if found.get("daemons"):
            impl["daemons"] = found["daemons"]
        if settings.backend == "netns":
            try:
                installs = netns.installs(settings.request)
            except LabError:
                return impl
            central, chassis = installs["central"], installs["chassis"]
            impl["root"] = central.root
            impl["ovn"] = impl["ovn"] or str(min(central.ovn_version, chassis.ovn_version))
            impl["ovs"] = impl["ovs"] or str(chassis.ovs_version)
            # central and chassis programs come from different packages: no name clashes
            impl["packages"] = {**report.packages([central["ovn-northd"]], central.root),
                                **report.packages([chassis[p] for p in (
                                    "ovn-controller", "ovs-vswitchd")], chassis.root)}
            impl["programs"] = dict(central.programs)
        return impl

    def suite(self) -> dict:
        setting = self.config.stash[SETTINGS].samples
        return {"name": "pytest-ovnlb", "version": pytest_ovnlb.version(),
                "samples": {str(k): samples_for(k, setting) for k in SUITE_K}}

    def finish(self, impl: dict, interrupted: bool = False) -> None:
        started = datetime.fromtimestamp(self.start, timezone.utc)
        tests = list(self.tests.values())
        data = report.build(
            tests, impl, self.suite(),
            started.strftime("%Y-%m-%dT%H:%M:%SZ"), time.time() - self.start,
            [{"id": e.id, "reason": e.reason,
              # counted here: under xdist the workers, not this process, collect
              "matched": sum(t.outcome == "exempted" and e.covers(report.stable_id(t.nodeid))
                             for t in tests)} for e in self.exemptions],
            coverage.section(impl["backend"], impl["root"], tests), self.crashes, interrupted)
        report.validate(data)
        path = Path(self.path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(data, indent=1) + "\n")
        os.replace(tmp, path)


def pytest_configure(config: pytest.Config) -> None:
    config.stash[VERSIONS_SENT] = False
    if not worker_id(config):
        config.stash[STATE] = Collector(config)
    path = _setting(config, "ovnlb_exempt")
    exemptions = []
    if path:
        try:
            exemptions = exempt.load(path)
        except ValueError as exc:
            raise pytest.UsageError(f"ovnlb: {exc}") from None
    config.stash[EXEMPT] = exemptions
    if not worker_id(config):
        config.stash[STATE].exemptions = exemptions
        config.pluginmanager.register(_ControllerHooks(config.stash[STATE]), "ovnlb-report")


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    """--ovnlb-skip-exit-code: a run that cannot happen here ends at once
    with that code and one line."""
    config = session.config
    try:
        code = _setting(config, "ovnlb_skip_exit_code", int)
    except ValueError:
        raise pytest.UsageError("ovnlb: ovnlb_skip_exit_code must be an integer, got "
                                f"{config.getini('ovnlb_skip_exit_code')!r}") from None
    if code is None or worker_id(config):
        return
    settings = config.stash[SETTINGS]
    try:
        preflight(settings.backend, settings.request)
    except LabError as exc:
        sys.stderr.write(f"ovnlb: skipped, cannot run here: {exc}\n")
        sys.stderr.flush()
        os._exit(code)  # pytest.exit would add its own lines; nothing has started yet


@pytest.hookimpl(tryfirst=True)  # every collected test, before -k/-m deselect any
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    exemptions = config.stash.get(EXEMPT, [])
    if not exemptions:
        return
    ids = [report.stable_id(item.nodeid) for item in items]
    if worker_id(config) in (None, "gw0"):  # said once, also under xdist
        for e in exemptions:
            if not any(e.covers(sid) for sid in ids):
                warnings.warn(pytest.PytestConfigWarning(
                    f"ovnlb: exemption {e.id} ({_setting(config, 'ovnlb_exempt')}) names no "
                    "test of this suite: a typo, or a test renamed?"))
    for item in items:
        sid = report.stable_id(item.nodeid)
        for e in exemptions:
            if e.covers(sid):
                item.add_marker(pytest.mark.xfail(reason=XFAIL_PREFIX + e.reason, run=False))
                break


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem):
    record.running(item)
    try:
        return (yield)
    finally:
        record.running(None)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call):
    if call.when == "setup":
        callspec = getattr(item, "callspec", None)
        params = {k: str(v) for k, v in callspec.params.items()} if callspec else {}
        item.user_properties.append((record.META, {
            "file": os.path.basename(str(item.path)),
            "function": getattr(item, "originalname", item.name),
            "placement": params.get("placement"),
            "params": params,
            "features": features.of(item)}))
    if not item.config.stash[VERSIONS_SENT]:
        lab = getattr(item, "funcargs", {}).get("ovn_lab")
        if lab is not None:
            v = lab.versions
            item.user_properties.append((record.IMPLEMENTATION, {
                "ovn": str(v.ovn), "ovs": str(v.ovs), "datapath": v.datapath,
                "daemons": {key: {"program": d.program, "version": str(d.version),
                                  "root": d.root} for key, d in v.daemons.items()}}))
            item.config.stash[VERSIONS_SENT] = True
    return (yield)


class _ControllerHooks:
    def __init__(self, collector: Collector):
        self.collector = collector

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.collector.take(report)

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus) -> None:
        """Before the JUnit writer's: suite properties and name; then the report."""
        collector = self.collector
        xml = session.config.stash.get(xml_key, None)
        if xml is None and not collector.path:
            return
        impl = collector.implementation_now()
        if xml is not None:
            for key in ("ovn", "ovs", "datapath", "backend", "topology"):
                if impl.get(key):
                    xml.add_global_property(f"ovnlb.{key}", impl[key])
            for name, version in sorted(impl["packages"].items()):
                xml.add_global_property(f"ovnlb.package.{name}", version)
            if xml.suite_name == "pytest":  # junit_suite_name not set
                xml.suite_name = (f"ovnlb OVN {impl['ovn']} OVS {impl['ovs']} "
                                  f"{impl['datapath'] or ''} {impl['backend']}").replace("  ", " ")
        if collector.path:
            collector.finish(impl, exitstatus == pytest.ExitCode.INTERRUPTED)

    def pytest_terminal_summary(self, terminalreporter) -> None:
        crashes = self.collector.crashes
        if crashes:
            terminalreporter.write_line(
                f"ovnlb: {len(crashes)} lab daemon crash{'es' * (len(crashes) > 1)} in this run:",
                red=True)
            for c in crashes:
                terminalreporter.write_line(
                    f"  {c['daemon']} (pid {c['pid']}) {c['how']}, during {c['phase']} of "
                    f"{c['test']}" + (f"; core: {c['core']}" if c['core'] else ""), red=True)


@pytest.fixture
def ovnlb_record(request: pytest.FixtureRequest) -> record.Recorder:
    """Record measurements for the conformance report (record.Recorder)."""
    return record.Recorder(request.node)
