"""Which conformance tests prove which feature.

Two profiles, as Gateway API conformance reports have them:

- core: the four behaviours the suite exists to prove (how new connections
  are spread, that a connection stays on its backend, the source address a
  backend sees, where a load balancer must be placed);
- extended: every behaviour of the version table
  (pytest_ovnlb/verdicts/versions.py BEHAVIOURS); supported or not follows
  the OVN (or, for OVS behaviours, the OVS) version under test.

A test names the features it proves with markers,
`@pytest.mark.ovnlb_feature(name="stickiness")`, one per feature; a run at
one placement also proves that placement's feature (switch_lb,
gateway_router_lb, dgp_lb), and `placement="switch"` limits a marker to the runs at
that placement.  `-m "ovnlb_feature(name='health_check')"` selects a
feature's tests.

A test is named by its stable id, `FILE::FUNCTION[PARAMS]`, the file without
directories, so ids are the same from a clone and from an installed package.
"""

from __future__ import annotations

import pytest

from pytest_ovnlb.verdicts.versions import BEHAVIOURS, Version

CORE = {
    "distribution": ("new connections spread over the backends as OVS's dp_hash select "
                     "group shares them (a dead backend keeps its share as refusals)"),
    "stickiness": "an established connection stays on its backend",
    "source_ip": "the source address a backend sees (proxy mode: SNAT or the client's own)",
    "placement": "where a load balancer must sit to serve a client",
}

# Behaviours of OVS, not OVN: judged by the OVS version.
OVS_BEHAVIOURS = {"ovs_dp_hash_4_slots_per_bucket", "ovs_ct_tp_of_later_fragments"}

MARKER = "ovnlb_feature"
# the feature every run at a placement proves
PLACEMENT_FEATURES = {"switch": "switch_lb", "router": "gateway_router_lb", "dgp": "dgp_lb"}


def known(name: str) -> bool:
    return name in CORE or name in BEHAVIOURS


def mark(item: pytest.Item) -> None:
    """Settle a collected test's feature markers: its placement's feature
    added, markers for another placement dropped.  An unknown name is a
    usage error, so that a typo cannot leave a test proving nothing."""
    callspec = getattr(item, "callspec", None)
    placement = callspec.params.get("placement") if callspec else None
    for m in item.iter_markers(MARKER):
        name, only = m.kwargs.get("name"), m.kwargs.get("placement")
        if m.args or set(m.kwargs) - {"name", "placement"} or not known(name):
            given = ", ".join([*map(repr, m.args), *(f"{k}={v!r}" for k, v in m.kwargs.items())])
            raise pytest.UsageError(
                f"{item.nodeid}: {MARKER}({given}) names no feature; it takes name=FEATURE "
                f"(and placement=...), FEATURE one of {', '.join([*CORE, *BEHAVIOURS])}")
        if only is not None and (only not in PLACEMENT_FEATURES or m not in item.own_markers):
            raise pytest.UsageError(f"{item.nodeid}: {MARKER} placement={only!r}: only on "
                                    f"a test function, one of {', '.join(PLACEMENT_FEATURES)}")
    # a marker for another placement applies to none of this run's
    item.own_markers[:] = [m for m in item.own_markers if m.name != MARKER
                           or m.kwargs.get("placement") in (None, placement)]
    if placement in PLACEMENT_FEATURES:
        item.add_marker(getattr(pytest.mark, MARKER)(name=PLACEMENT_FEATURES[placement]))


def of(item: pytest.Item) -> list[str]:
    """The features a collected (and marked) test proves, in vocabulary order."""
    found = classify(m.kwargs["name"] for m in item.iter_markers(MARKER))
    return found["core"] + found["extended"]


def classify(names) -> dict[str, list[str]]:
    """{"core": [...], "extended": [...]}: feature names (a test's markers)
    by profile, each in vocabulary order."""
    names = set(names)
    return {"core": [n for n in CORE if n in names],
            "extended": [n for n in BEHAVIOURS if n in names]}


def supported(name: str, ovn: Version | None, ovs: Version | None) -> bool | None:
    """Whether the installation under test is expected to show behaviour
    `name` (None when its version is unknown)."""
    version = ovs if name in OVS_BEHAVIOURS else ovn
    if version is None:
        return None
    return BEHAVIOURS[name].holds_for(version)


def describe(profile: str, name: str) -> str:
    return CORE[name] if profile == "core" else BEHAVIOURS[name].what


def names(profile: str) -> list[str]:
    return list(CORE) if profile == "core" else list(BEHAVIOURS)
