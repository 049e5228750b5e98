"""Command-line options and ini keys of pytest-ovnlb, and where they are kept."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from pytest_ovnlb.backends.base import Request
from pytest_ovnlb.verdicts.stats import DEFAULT_SAMPLES


@dataclass(frozen=True)
class Settings:
    topology: str
    backend: str
    keep_on_failure: bool
    samples: int
    ready_timeout: float
    ovn_root: str | None
    fmn_dir: str | None
    fmn_runtime: str | None

    @property
    def request(self) -> Request:
        return Request(ovn_root=self.ovn_root, fmn_dir=self.fmn_dir, runtime=self.fmn_runtime)


SETTINGS = pytest.StashKey[Settings]()
FAILED = pytest.StashKey[bool]()
CLUSTER = pytest.StashKey[object]()  # the record of a cluster this run started

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
    ("--ovnlb-samples", "ovnlb_samples",
     "new connections per distribution check", str(DEFAULT_SAMPLES), int),
    ("--ovnlb-ready-timeout", "ovnlb_ready_timeout",
     "seconds to wait for the lab's chassis", "30", float),
]


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("ovnlb", "OVN load balancer conformance")
    for flag, ini, help, default, kind in OPTIONS:
        group.addoption(flag, dest=ini, default=None, type=kind,
                        help=f"{help} (ini: {ini}, default {default})")
        parser.addini(ini, help, default=default)
    group.addoption("--ovnlb-keep-on-failure", dest="ovnlb_keep_on_failure",
                    action="store_true", default=None,
                    help="leave the lab up after a failure and print how to reach it "
                         "(ini: ovnlb_keep_on_failure)")
    parser.addini("ovnlb_keep_on_failure", "leave the lab up after a failure",
                  type="bool", default=False)


def setting(config: pytest.Config, key: str, kind=str):
    value = config.getoption(key)
    return value if value is not None else kind(config.getini(key))
