"""The run report and the JUnit suite properties, written by the controller
(not xdist workers); the per-test data they are made of, shipped in
`user_properties` so that it crosses pytest-xdist; exemptions.

Worker side: each test's report carries its file, function, placement,
parameters and features (its `ovnlb_feature` markers), the versions its
lab reported, and what the test recorded.
Controller side: these entries are taken out of `user_properties` before
the JUnit writer sees them (a testcase with properties is not valid xunit2)
and collected; at the end the report is written once."""

from __future__ import annotations

import json
import os
import time
import warnings
from datetime import datetime, timezone
from pathlib import Path

import pytest
from _pytest.junitxml import xml_key

import pytest_ovnlb
from pytest_ovnlb.backends import netns
from pytest_ovnlb.errors import LabError
from pytest_ovnlb.plugin import state
from pytest_ovnlb.reporting import coverage, exempt, features, measure, report
from pytest_ovnlb.verdicts.stats import SUITE_K, samples_for

XFAIL_PREFIX = "exempted: "
# a failure's report section naming its evidence folder (plugin/evidence.py)
EVIDENCE_SECTION, EVIDENCE_SAVED = "ovnlb evidence", "saved in "


def exemptions(path: str | None) -> list[exempt.Exemption]:
    try:
        return exempt.load(path) if path else []
    except ValueError as exc:
        raise pytest.UsageError(f"ovnlb: {exc}") from None


def mark_exempted(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Exempted tests become xfail(run=False); an exemption naming no test
    of the suite is a warning."""
    run = state.of(config)
    if not run.exemptions:
        return
    ids = [report.stable_id(item.nodeid) for item in items]
    if run.worker in (None, "gw0"):  # said once, also under xdist
        for e in run.exemptions:
            if not any(e.covers(sid) for sid in ids):
                warnings.warn(pytest.PytestConfigWarning(
                    f"ovnlb: exemption {e.id} ({run.settings.exempt}) names no "
                    "test of this suite: a typo, or a test renamed?"))
    for item in items:
        sid = report.stable_id(item.nodeid)
        for e in run.exemptions:
            if e.covers(sid):
                item.add_marker(pytest.mark.xfail(reason=XFAIL_PREFIX + e.reason, run=False))
                break


def describe_test(item: pytest.Item, when: str) -> None:
    """Before a phase's report is made: the test's description (at set-up)
    and, once per process, the versions its lab reported."""
    if when == "setup":
        callspec = getattr(item, "callspec", None)
        params = {k: str(v) for k, v in callspec.params.items()} if callspec else {}
        item.user_properties.append((measure.META, {
            "file": os.path.basename(str(item.path)),
            "function": getattr(item, "originalname", item.name),
            "placement": params.get("placement"),
            "params": params,
            "features": features.of(item)}))
    run = state.of(item.config)
    if not run.versions_sent:
        lab = getattr(item, "funcargs", {}).get("ovn_lab")
        if lab is not None:
            v = lab.versions
            item.user_properties.append((measure.IMPLEMENTATION, {
                "ovn": str(v.ovn), "ovs": str(v.ovs), "datapath": v.datapath,
                "daemons": {key: {"program": d.program, "version": str(d.version),
                                  "root": d.root} for key, d in v.daemons.items()}}))
            run.versions_sent = True


class Collector:
    """The controller's view of the run; registered as a plugin there."""

    def __init__(self, config: pytest.Config):
        self.config = config
        self.settings = state.of(config).settings
        self.path = self.settings.report
        self.start = time.time()
        self.tests: dict[str, report.TestEntry] = {}
        self.implementation: dict | None = None
        self.exemptions: list[exempt.Exemption] = state.of(config).exemptions
        self.crashes: list[dict] = []  # lab daemons that died, in the order seen

    @pytest.hookimpl(tryfirst=True)  # before the JUnit writer's
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.take(report)

    def take(self, rep: pytest.TestReport) -> None:
        ours = [(k, v) for k, v in rep.user_properties if k in measure.KEYS]
        if not ours:
            return
        rep.user_properties = [(k, v) for k, v in rep.user_properties if k not in measure.KEYS]
        test = self.tests.setdefault(rep.nodeid, report.TestEntry(rep.nodeid))
        test.duration += rep.duration
        for key, value in ours:
            if key == measure.META:
                test.meta = dict(value)
            elif key == measure.IMPLEMENTATION and self.implementation is None:
                self.implementation = dict(value)
            elif key == measure.EVIDENCE:
                test.evidence = str(value)
            elif key == measure.CRASH:
                self.crashes.append(dict(value))
        for title, content in rep.sections:
            if title == EVIDENCE_SECTION and content.startswith(EVIDENCE_SAVED):
                test.evidence = content[len(EVIDENCE_SAVED):].strip()
        if rep.when == "call" or rep.failed or rep.skipped:
            # a phase's own measurements: the latest list is the whole list
            test.measurements = [dict(v) for k, v in ours if k == measure.MEASUREMENT]
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
        settings = self.settings
        found = dict(self.implementation or {})
        impl = {"ovn": found.get("ovn"), "ovs": found.get("ovs"),
                "datapath": found.get("datapath"), "backend": settings.backend,
                "topology": settings.topology, "root": None, "packages": {}}
        if found.get("daemons"):
            impl["daemons"] = found["daemons"]
        if settings.backend == "netns":
            try:
                installs = netns.installs(settings.lab_spec)
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
        setting = self.settings.samples
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

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus) -> None:
        """Before the JUnit writer's: suite properties and name; then the report."""
        xml = self.config.stash.get(xml_key, None)
        if xml is None and not self.path:
            return
        impl = self.implementation_now()
        if xml is not None:
            for key in ("ovn", "ovs", "datapath", "backend", "topology"):
                if impl.get(key):
                    xml.add_global_property(f"ovnlb.{key}", impl[key])
            for name, version in sorted(impl["packages"].items()):
                xml.add_global_property(f"ovnlb.package.{name}", version)
            if xml.suite_name == "pytest":  # junit_suite_name not set
                xml.suite_name = (f"ovnlb OVN {impl['ovn']} OVS {impl['ovs']} "
                                  f"{impl['datapath'] or ''} {impl['backend']}").replace("  ", " ")
        if self.path:
            self.finish(impl, exitstatus == pytest.ExitCode.INTERRUPTED)

    def pytest_terminal_summary(self, terminalreporter) -> None:
        crashes = self.crashes
        if crashes:
            terminalreporter.write_line(
                f"ovnlb: {len(crashes)} lab daemon crash{'es' * (len(crashes) > 1)} in this run:",
                red=True)
            for c in crashes:
                terminalreporter.write_line(
                    f"  {c['daemon']} (pid {c['pid']}) {c['how']}, during {c['phase']} of "
                    f"{c['test']}" + (f"; core: {c['core']}" if c['core'] else ""), red=True)
