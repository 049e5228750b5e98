"""The conformance report of one run: what was tested (implementation),
profiles with Gateway API results, and every test with its measurements.

Built by the controller from what the tests' reports carried (see
record.py); validated against report.schema.json (`validate`)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from pytest_ovnlb.reporting import features
from pytest_ovnlb.reporting.schema import validate as validate_against
from pytest_ovnlb.model.versions import Version

API_VERSION = "pytest-ovnlb.conformance/v1"
SCHEMA_FILE = "report.schema.json"
OUTCOMES = ("passed", "failed", "skipped", "exempted")


def schema() -> dict:
    return json.loads(resources.files("pytest_ovnlb.reporting").joinpath(SCHEMA_FILE).read_text())


def validate(report: dict) -> None:
    """Raise ValueError naming the first place `report` breaks the schema."""
    validate_against(report, schema())


def load(path: str | os.PathLike) -> dict:
    """A report from disk, checked; one-line ValueError otherwise."""
    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        raise ValueError(f"{path}: cannot read: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not JSON: {exc.msg} at line {exc.lineno}") from None
    try:
        validate(data)
    except ValueError as exc:
        raise ValueError(f"{path}: not a conformance report: {exc}") from None
    return data


def stable_id(nodeid: str) -> str:
    """`test_x.py::test_y[params]`: the node id without directories."""
    path, sep, rest = nodeid.partition("::")
    return f"{os.path.basename(path)}{sep}{rest}"


@dataclass
class TestEntry:
    """One test as the controller saw it, all phases merged."""

    __test__ = False  # not a pytest test class

    nodeid: str
    outcome: str = "passed"
    duration: float = 0.0
    reason: str | None = None  # skip or exemption reason
    message: str | None = None  # failure: what was asserted
    evidence: str | None = None
    meta: dict = field(default_factory=dict)
    measurements: list = field(default_factory=list)

    def features(self) -> dict[str, list[str]]:
        """{"core": [...], "extended": [...]}: what the test's markers name."""
        return features.classify(self.meta.get("features") or ())


def _resolve(path: str, root: str | None) -> str:
    """Follow symbolic links (alternatives) as seen inside `root`."""
    for _ in range(16):
        try:
            target = os.readlink((root or "") + path)
        except OSError:
            return path
        path = os.path.normpath(target if target.startswith("/")
                                else os.path.join(os.path.dirname(path), target))
    return path


def packages(programs: list[str], root: str | None) -> dict[str, str]:
    """Distribution packages (and their versions) that own the programs under
    test, from dpkg; empty where dpkg knows none of them (a build on PATH)."""
    where = ["--root", root] if root else []
    programs = [_resolve(p, root) for p in programs]
    # merged /usr: dpkg may know /sbin/X as such, not as /usr/sbin/X
    aliases = [p.removeprefix("/usr") if p.startswith("/usr/") else "/usr" + p for p in programs]
    try:
        owners = subprocess.run(["dpkg-query", *where, "-S", *programs, *aliases],
                                capture_output=True, text=True, timeout=20, check=False).stdout
        names = sorted({line.split(":")[0].strip() for line in owners.splitlines()
                        if ": " in line and "," not in line.split(":")[0]})
        if not names:
            return {}
        out = subprocess.run(["dpkg-query", *where, "-W", "-f", "${Package}\t${Version}\n",
                              *names], capture_output=True, text=True, timeout=20, check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    return dict(line.split("\t", 1) for line in out.splitlines() if "\t" in line)


def _result(stats: dict) -> str:
    """Gateway API: failure on any failure, else partial on any skip, else success."""
    if stats["Failed"]:
        return "failure"
    if stats["Skipped"] or stats["Exempted"]:
        return "partial"
    return "success"


def _stats(tests: list[TestEntry]) -> dict:
    count = {o: sum(t.outcome == o for t in tests) for o in OUTCOMES}
    return {"Passed": count["passed"], "Failed": count["failed"],
            "Skipped": count["skipped"], "Exempted": count["exempted"]}


def _profile(name: str, tests: list[TestEntry], implementation: dict) -> dict:
    ovn = Version.parse(implementation["ovn"]) if implementation.get("ovn") else None
    ovs = Version.parse(implementation["ovs"]) if implementation.get("ovs") else None
    rows, counted, supported, unsupported = [], [], [], []
    support = {f: True if name == "core" else features.supported(f, ovn, ovs)
               for f in features.names(name)}
    for feature in features.names(name):
        ok = support[feature]
        mine = [t for t in tests if feature in t.features()[name]]
        if ok is not False:
            # a test skipped for an unsupported behaviour counts for none of its
            # features; one that ran counts for each supported one it proves
            mine = [t for t in mine if t.outcome not in ("skipped", "exempted")
                    or all(support.get(f) is not False for f in t.features()[name])]
        if ok is False:
            unsupported.append(feature)
            result = "unsupported"
        else:
            supported.append(feature)
            counted += [t for t in mine if t not in counted]
            result = _result(_stats(mine)) if mine else "untested"
        rows.append({"name": feature, "description": features.describe(name, feature),
                     "supported": ok, "result": result, "statistics": _stats(mine),
                     "tests": [stable_id(t.nodeid) for t in mine]})
    return {
        "name": name,
        "result": _result(_stats(counted)) if counted else "untested",
        "statistics": _stats(counted),
        "supportedFeatures": supported,
        "unsupportedFeatures": unsupported,
        "features": rows,
        "skippedTests": [{"id": stable_id(t.nodeid), "reason": t.reason or ""}
                         for t in counted if t.outcome in ("skipped", "exempted")],
        "failedTests": [{"id": stable_id(t.nodeid), "message": t.message or "",
                         "evidence": t.evidence} for t in counted if t.outcome == "failed"],
    }


def build(tests: list[TestEntry], implementation: dict, suite: dict,
          date: str, duration: float, exemptions: list[dict],
          coverage: dict | None = None, crashes: list[dict] | None = None,
          interrupted: bool = False) -> dict:
    """The report; `coverage` is the section coverage.section() makes,
    `crashes` the lab daemons that died during the run; an `interrupted`
    run (Ctrl-C, SIGTERM) holds the tests that ran before it stopped."""
    profiles = [_profile(p, tests, implementation) for p in ("core", "extended")]
    unclassified = [stable_id(t.nodeid) for t in tests
                    if not any(t.features().values())]
    data = {
        "apiVersion": API_VERSION,
        "kind": "ConformanceReport",
        "date": date,
        "durationSeconds": round(duration, 3),
        "host": socket.gethostname(),
        "interrupted": interrupted,
        "implementation": implementation,
        "suite": suite,
        "result": _result(_stats(tests)) if tests else "untested",
        "statistics": _stats(tests),
        "profiles": profiles,
        "unclassifiedTests": unclassified,
        "exemptions": exemptions,
        "crashes": list(crashes or []),
        "tests": [{
            "id": stable_id(t.nodeid), "nodeid": t.nodeid, "outcome": t.outcome,
            "duration": round(t.duration, 3), "reason": t.reason, "message": t.message,
            "evidence": t.evidence, "placement": t.meta.get("placement"),
            "features": t.features(),
            "measurements": [dict(m) for m in t.measurements],
        } for t in tests],
    }
    if coverage is not None:
        data["coverage"] = coverage
    return data
