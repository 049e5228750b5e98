"""Tests marked `lab` build real labs: they are skipped, with the reason,
where that is impossible (not root, no OVN/OVS)."""

import pytest

from pytest_ovnlb.errors import LabError
from pytest_ovnlb.lab import preflight


def pytest_configure(config):
    config.addinivalue_line("markers", "lab: builds real labs (root, OVN/OVS)")
    config.addinivalue_line("markers", "fmn: needs a running ovn-fake-multinode cluster")
    config.addinivalue_line("markers", "hermetic: changes host-wide network settings "
                            "for a while (tests/test_hermetic.py)")


def pytest_collection_modifyitems(config, items):
    try:
        preflight()
        return
    except LabError as exc:
        skip = pytest.mark.skip(reason=f"cannot build labs here: {exc}")
    for item in items:
        if item.get_closest_marker("lab"):
            item.add_marker(skip)
