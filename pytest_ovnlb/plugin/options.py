"""Command-line options and ini keys of pytest-ovnlb: one table, one reader
(`setting`), read once into `Settings` when pytest configures."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from pytest_ovnlb import backends
from pytest_ovnlb.backends.base import LabSpec
from pytest_ovnlb.engine import topology
from pytest_ovnlb.errors import LabError
from pytest_ovnlb.verdicts.stats import (
    ALPHA,
    PLANNED_SAMPLES,
    two_way_false_alarm,
)


@dataclass(frozen=True)
class Settings:
    topology: str
    backend: str
    keep_on_failure: bool
    samples: int | None  # None: each check plans its own (stats.planned_samples)
    ready_timeout: float
    ovn_root: str | None
    ovn_central_root: str | None
    ovn_chassis_root: str | None
    fmn_dir: str | None
    fmn_runtime: str | None
    fmn_prepare_host: bool
    evidence_dir: str
    report: str | None  # where the run's report is written
    exempt: str | None  # the exemption file
    skip_exit_code: int | None
    upgrade_from: str | None = None  # an upgrade run: the labs start on this root
    upgrade_procedure: str | None = None  # forced; else the one OVN documents

    @property
    def lab_spec(self) -> LabSpec:
        """What the run's labs start from: in an upgrade run, the source."""
        if self.upgrade_from:
            return LabSpec(ovn_root=self.upgrade_from)
        return LabSpec(ovn_root=self.ovn_root, central_root=self.ovn_central_root,
                       chassis_root=self.ovn_chassis_root, fmn_dir=self.fmn_dir,
                       runtime=self.fmn_runtime, prepare_host=self.fmn_prepare_host)


SETTINGS = pytest.StashKey[Settings]()

OPTIONS = [
    # (flag, ini key, help, default, type)
    ("--ovn-topology", "ovn_topology", "topology to build (lab, single)", "lab", str),
    ("--ovn-backend", "ovn_backend",
     "deployment backend: netns (an embedded lab of namespaces) or fake-multinode "
     "(a running ovn-fake-multinode cluster, or one started from --ovn-fmn-dir)", "netns", str),
    ("--ovn-fmn-dir", "ovn_fmn_dir",
     "fake-multinode: checkout of ovn-fake-multinode (images built) whose "
     "ovn_cluster.sh starts a cluster when none runs, and stops it afterwards", "", str),
    ("--ovn-fmn-runtime", "ovn_fmn_runtime",
     "fake-multinode: container runtime (podman or docker; default $RUNC_CMD, else "
     "podman, else docker)", "", str),
    ("--ovn-root", "ovn_root",
     "root filesystem holding the OVN under test (default: the one on PATH; "
     "$OVNLB_OVN_ROOT)", "", str),
    ("--ovn-central-root", "ovn_central_root",
     "root filesystem the NB/SB databases and ovn-northd run from ('/': this machine's; "
     "default: --ovn-root's)", "", str),
    ("--ovn-chassis-root", "ovn_chassis_root",
     "root filesystem each chassis's ovn-controller and OVS run from ('/': this machine's; "
     "default: --ovn-root's)", "", str),
    ("--ovn-upgrade-from", "ovn_upgrade_from",
     "an upgrade run: labs start on the OVN in this root filesystem ('/': this machine's) "
     "and are upgraded to the OVN under test by the procedure OVN documents for the span; "
     "test_upgrade.py judges traffic held through every step, the rest run on the upgraded "
     "labs (docs/upgrades.md)", "", str),
    ("--ovn-upgrade-procedure", "ovn_upgrade_procedure",
     "with --ovn-upgrade-from: rolling or fail-safe instead of the one OVN documents for "
     "the span", "", str),
    ("--ovnlb-samples", "ovnlb_samples",
     "answered new connections per distribution check, where more than the check's "
     "own plan (the fewest giving its power: "
     + ", ".join(f"{n} for {k} servers" for k, n in PLANNED_SAMPLES.items()) + ")",
     "", int),
    ("--ovnlb-ready-timeout", "ovnlb_ready_timeout",
     "seconds to wait for the lab's chassis", "30", float),
    ("--ovnlb-evidence-dir", "ovnlb_evidence_dir",
     "where a failing test's evidence is saved, in RUN/TEST folders", "ovnlb-evidence", str),
    ("--ovnlb-report", "ovnlb_report",
     "write the run's conformance report (JSON, schema "
     "pytest_ovnlb/reporting/report.schema.json) to PATH", "", str),
    ("--ovnlb-exempt", "ovnlb_exempt",
     "exemption file: tests not to run, by stable id, each with a reason", "", str),
    ("--ovnlb-skip-exit-code", "ovnlb_skip_exit_code",
     "exit with this code and one line when the suite cannot run here "
     "(not root, no OVN/OVS programs), e.g. 77 for autopkgtest", "", int),
]


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("ovnlb", "OVN load balancer conformance")
    for flag, ini, help, default, kind in OPTIONS:
        # Values are converted by setting(), so that a bad one is a one-line
        # usage error whichever way it came.
        group.addoption(flag, dest=ini, default=None,
                        help=f"{help} (ini: {ini}" + (f", default {default})" if default else ")"))
        parser.addini(ini, help, default=default)
    group.addoption("--ovnlb-keep-on-failure", dest="ovnlb_keep_on_failure",
                    action="store_true", default=None,
                    help="leave the lab up after a failure and print how to reach it "
                         "(ini: ovnlb_keep_on_failure)")
    parser.addini("ovnlb_keep_on_failure", "leave the lab up after a failure",
                  type="bool", default=False)
    group.addoption("--ovn-fmn-prepare-host", dest="ovn_fmn_prepare_host",
                    action="store_true", default=None,
                    help="fake-multinode with --ovn-fmn-dir: where the host lacks them, start "
                         "an OVS of the run's own and create the bridges br-ovn/br-ovn-ext "
                         "for the cluster, and remove them after (ini: ovn_fmn_prepare_host)")
    parser.addini("ovn_fmn_prepare_host", "prepare the host for a spin-up",
                  type="bool", default=False)


def _samples(n: int | None) -> str | None:
    if n is None:
        return None
    plans = PLANNED_SAMPLES.values()
    if n <= min(plans):
        return ("every distribution check already plans more ("
                + ", ".join(f"{p} for {k} servers" for k, p in PLANNED_SAMPLES.items())
                + ", the fewest with their power): the setting raises a check's samples, "
                "never lowers them")
    if two_way_false_alarm(n) > ALPHA:  # a check over 2 servers takes n
        near = [m for m in range(n - 1, n + 1000) if m > min(plans)
                and two_way_false_alarm(m) <= ALPHA]
        below = [m for m in near if m < n]
        return (f"with 2 servers the exact false-alarm rate at {n} is "
                f"{two_way_false_alarm(n):.4g}, over alpha={ALPHA:g} (docs/statistics.md): "
                f"take {max(below) if below else min(near)} "
                f"or {min(m for m in near if m > n)}")
    return None


def _positive(x: float) -> str | None:
    return None if 0 < x < float("inf") else "must be a number of seconds above 0"


# What each numeric setting must satisfy: a message when it does not.
def _known(lookup):
    """A check that `lookup(name)` knows the name (its error otherwise)."""
    def check(name: str) -> str | None:
        try:
            lookup(name)
        except LabError as exc:
            return str(exc)
        return None
    return check


CHECKS = {"ovnlb_samples": _samples, "ovnlb_ready_timeout": _positive,
          "ovn_topology": _known(topology.get), "ovn_backend": _known(backends.get)}


def count(value: str) -> int | None:
    """A whole number, or None where the setting is left empty."""
    return int(value) if value else None


KINDS = {int: "a whole number", count: "a whole number", float: "a number"}


def read(config: pytest.Config) -> Settings:
    """Every setting, read and checked once."""
    return Settings(
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
        evidence_dir=setting(config, "ovnlb_evidence_dir"),
        report=setting(config, "ovnlb_report") or None,
        exempt=setting(config, "ovnlb_exempt") or None,
        skip_exit_code=setting(config, "ovnlb_skip_exit_code", count),
        upgrade_from=setting(config, "ovn_upgrade_from") or None,
        upgrade_procedure=setting(config, "ovn_upgrade_procedure") or None,
    )


def setting(config: pytest.Config, key: str, kind=str):
    """The value of a setting, from its option or else its ini key,
    converted to `kind` and checked; a bad value is a pytest.UsageError
    naming where it came from."""
    value = config.getoption(key)
    if value is not None and not isinstance(value, str):
        return value  # a flag (--ovnlb-keep-on-failure)
    if value is not None:
        flag = next(f for f, k, *_ in OPTIONS if k == key)
        where = f"{flag}={value} (command line)"
    else:
        try:
            value = config.getini(key)
        except pytest.UsageError as exc:  # a bool pytest could not read
            raise pytest.UsageError(f"{key} ({config.inipath or 'ini'}): {exc}") from None
        if not isinstance(value, str):
            return value  # typed by pytest (bool)
        overridden = any(o.split("=", 1)[0].strip() == key
                         for o in config.getoption("override_ini", None) or ())
        origin = "-o" if overridden else (config.inipath or "ini")
        where = f"{key} = {value} ({origin})"
    try:
        converted = kind(value.strip()) if kind is not str else value
    except ValueError:
        raise pytest.UsageError(f"{where}: not {KINDS.get(kind, kind.__name__)}") from None
    problem = CHECKS.get(key, lambda _: None)(converted)
    if problem:
        raise pytest.UsageError(f"{where}: {problem}")
    return converted
