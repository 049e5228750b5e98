"""Deployment backends by `--ovn-backend` name: the built-in ones and
those of the entry-point group `pytest_ovnlb.backends` (a Backend subclass
each) or a pytest plugin's (pytest_ovnlb_backends)."""

from __future__ import annotations

from pytest_ovnlb.backends.base import Backend
from pytest_ovnlb.backends.fakemultinode import FakeMultinodeBackend
from pytest_ovnlb.backends.netns import NetnsBackend
from pytest_ovnlb.errors import LabError
from pytest_ovnlb.registry import Registry


def _checked(kind) -> type[Backend]:
    if not (isinstance(kind, type) and issubclass(kind, Backend)):
        raise LabError(f"backend {getattr(kind, 'name', kind)!r} is not a Backend subclass")
    return kind


REGISTRY = Registry("backend", "pytest_ovnlb.backends",
                    (NetnsBackend, FakeMultinodeBackend), _checked)


def get(name: str) -> type[Backend]:
    return REGISTRY.get(name)
