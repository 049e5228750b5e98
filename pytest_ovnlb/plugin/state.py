"""What one pytest process knows of its run, kept on the config's stash,
and which process of a pytest-xdist run this is."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from types import SimpleNamespace

import pytest
import xdist

from pytest_ovnlb.plugin.options import Settings


@dataclass
class Run:
    settings: Settings
    worker: str | None  # "gw0", "gw1", ...; None in the controller and without xdist
    folder: str  # the evidence folder's name: the controller's, in its workers too
    exemptions: list = field(default_factory=list)
    added: list = field(default_factory=list)  # (registry, name) added by other plugins
    # SIGTERM (a CI job cancelled, `timeout`) ends the run as Ctrl-C does
    sigterm: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    failed: bool = False  # a test using the lab failed
    first_failure: dict[str, str] = field(default_factory=dict)  # lab name -> node id
    cluster: object = None  # the record of a cluster this run started
    dog: object = None  # crashes.Watchdog of this process's lab, once it is built
    current: object = None  # the item running now (its teardown tears the lab down last)
    versions_sent: bool = False  # the lab's versions went with a report
    upgrade: object = None  # an upgrade run's path (upgrade.Path), once planned


RUN = pytest.StashKey[Run]()


def of(config: pytest.Config) -> Run:
    return config.stash[RUN]


def worker_id(config: pytest.Config) -> str | None:
    """This xdist worker's id; None in the controller and in a run without
    xdist.  Read once, when the run is configured: use `of(config).worker`."""
    # xdist's helpers read the `.config` of a session or request; at
    # pytest_configure there is only the config.
    holder = SimpleNamespace(config=config)
    return xdist.get_xdist_worker_id(holder) if xdist.is_xdist_worker(holder) else None
