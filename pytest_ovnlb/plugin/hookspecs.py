"""Hooks other plugins implement to offer topologies and deployment backends
(in a conftest.py or an installed pytest plugin).  A Python entry point
does the same outside pytest too (`ovnlb-lab`): groups
`pytest_ovnlb.topologies` and `pytest_ovnlb.backends` (pytest_ovnlb/registry.py)."""

from __future__ import annotations

import pytest


@pytest.hookspec
def pytest_ovnlb_topologies() -> list:
    """Topologies (pytest_ovnlb.engine.topology.Topology) to offer besides
    the built-in ones, each chosen by its name with --ovn-topology."""


@pytest.hookspec
def pytest_ovnlb_backends() -> list:
    """Deployment backends (subclasses of pytest_ovnlb.backends.base.Backend)
    to offer besides the built-in ones, each chosen by its `name` with
    --ovn-backend."""
