"""Which process of a pytest-xdist run this is, as xdist itself tells."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import xdist


def worker_id(config: pytest.Config) -> str | None:
    """This xdist worker's id ("gw0", "gw1", ...); None in the controller
    and in a run without xdist."""
    # xdist's helpers read the `.config` of a session or request; hooks that
    # have only the config (pytest_configure) hand it over this way.
    holder = SimpleNamespace(config=config)
    return xdist.get_xdist_worker_id(holder) if xdist.is_xdist_worker(holder) else None
