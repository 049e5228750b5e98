"""Deployment backends by `--ovn-backend` name."""

from __future__ import annotations

from pytest_ovnlb.backends.base import Backend
from pytest_ovnlb.backends.fakemultinode import FakeMultinodeBackend
from pytest_ovnlb.backends.netns import NetnsBackend
from pytest_ovnlb.errors import LabError

BACKENDS: dict[str, type[Backend]] = {b.name: b for b in (NetnsBackend, FakeMultinodeBackend)}


def get(name: str) -> type[Backend]:
    try:
        return BACKENDS[name]
    except KeyError:
        raise LabError(f"unknown backend {name!r} (available: {', '.join(BACKENDS)})") from None
