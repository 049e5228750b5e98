"""Which conformance tests prove which feature.

Two profiles, as Gateway API conformance reports have them:

- core: the behaviours the suite exists to prove (how new connections
  are spread, that a connection stays on its server, the source address a
  server sees, where a load balancer must be placed, and that traffic
  survives an upgrade: proved in upgrade runs only);
- extended: every behaviour of the version table
  (pytest_ovnlb/model/versions.py BEHAVIOURS); supported or not follows
  the OVN (or, for OVS behaviours, the OVS) version under test.

Each test declares, once, what it proves and what it needs, with one
marker: `@pytest.mark.ovnlb(proves=("stickiness",), needs=("ct_flush",))`.
`needs` are version-table behaviours without which the test cannot run: it
is skipped, with the table's reason, where the version under test lacks one
(and a behaviour it needs it also proves).  `proves` are the features its
verdict speaks for; a behaviour proved but not needed is one whose expected
outcome follows the version table either way, which the test asks through
`ovn_case.holds(name)`, and only for declared names.  `placement=` and
`family=` ("ipv4", "ipv6") limit a marker to those runs.  A run at one
placement also proves that placement's feature (switch_lb,
gateway_router_lb, dgp_lb).  Every proved feature becomes a marker
`ovnlb_feature(name=...)` of the run, so `-m "ovnlb_feature(name='health_check')"`
selects a feature's tests.

A test is named by its stable id, `FILE::FUNCTION[PARAMS]`, the file without
directories, so ids are the same from a clone and from an installed package.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from pytest_ovnlb.model.placements import PLACEMENTS
from pytest_ovnlb.model.versions import BEHAVIOURS, Version

CORE = {
    "distribution": ("new connections spread over the servers as OVS's dp_hash select "
                     "group shares them (a dead server keeps its share as refusals)"),
    "stickiness": "an established connection stays on its server",
    "source_ip": "the source address a server sees (proxy mode: SNAT or the client's own)",
    "placement": "where a load balancer must sit to serve a client",
    "upgrade": ("load-balanced traffic held through OVN's documented upgrade procedure: "
                "no established connection broken, stalled or moved, new ones served"),
}

# Behaviours of OVS, not OVN: judged by the OVS version.
OVS_BEHAVIOURS = {"ovs_dp_hash_4_slots_per_bucket", "ovs_ct_tp_of_later_fragments"}

DECLARATION = "ovnlb"
MARKER = "ovnlb_feature"  # derived from the declaration, for -m selection
DECLARED = pytest.StashKey["Declared"]()
# the feature every run at a placement proves
PLACEMENT_FEATURES = {p.name: p.feature for p in PLACEMENTS.values()}


@dataclass(frozen=True)
class Declared:
    proves: tuple[str, ...]  # features, needs included
    needs: tuple[str, ...]  # behaviours


def known(name: str) -> bool:
    return name in CORE or name in BEHAVIOURS


def _names(item: pytest.Item, m, key: str) -> tuple[str, ...]:
    value = m.kwargs.get(key, ())
    names = (value,) if isinstance(value, str) else tuple(value)
    wrong = [n for n in names if not known(n) or (key == "needs" and n not in BEHAVIOURS)]
    if wrong:
        allowed = [*BEHAVIOURS] if key == "needs" else [*CORE, *BEHAVIOURS]
        raise pytest.UsageError(f"{item.nodeid}: {DECLARATION}({key}=...) names "
                                f"{', '.join(map(repr, wrong))}: not one of {', '.join(allowed)}")
    return names


def mark(item: pytest.Item) -> None:
    """Settle a collected run's declaration: its markers for this placement
    and family, the placement's feature, a selection marker per proved
    feature.  A wrong name or argument is a usage error, so that a typo
    cannot leave a test proving or needing nothing."""
    callspec = getattr(item, "callspec", None)
    params = callspec.params if callspec else {}
    if any(True for _ in item.iter_markers(MARKER)):
        raise pytest.UsageError(f"{item.nodeid}: {MARKER} is set from the test's declaration; "
                                f"declare features with @pytest.mark.{DECLARATION}(proves=...)")
    proves: list[str] = []
    needs: list[str] = []
    for m in item.iter_markers(DECLARATION):
        extra = set(m.kwargs) - {"proves", "needs", "placement", "family"}
        if m.args or extra:
            raise pytest.UsageError(f"{item.nodeid}: {DECLARATION}() takes proves=, needs=, "
                                    f"placement=, family=; not {m.args or sorted(extra)}")
        only = {"placement": m.kwargs.get("placement"), "family": m.kwargs.get("family")}
        if only["placement"] not in (None, *PLACEMENTS) or only["family"] not in (
                None, "ipv4", "ipv6"):
            raise pytest.UsageError(f"{item.nodeid}: {DECLARATION}({only}): no such "
                                    "placement or family")
        if any(v is not None and params.get(k) not in (None, v) for k, v in only.items()):
            continue  # for another placement or family than this run's
        needed = _names(item, m, "needs")
        needs += needed
        proves += _names(item, m, "proves") + needed
    if params.get("placement") in PLACEMENT_FEATURES:
        proves.append(PLACEMENT_FEATURES[params["placement"]])
    item.stash[DECLARED] = Declared(tuple(dict.fromkeys(proves)), tuple(dict.fromkeys(needs)))
    for name in item.stash[DECLARED].proves:
        item.add_marker(getattr(pytest.mark, MARKER)(name=name))


def of(item: pytest.Item) -> list[str]:
    """The features a collected (and marked) test proves, in vocabulary order."""
    declared = item.stash.get(DECLARED, None)
    found = classify(declared.proves if declared else ())
    return found["core"] + found["extended"]


def needs(item: pytest.Item) -> tuple[str, ...]:
    declared = item.stash.get(DECLARED, None)
    return declared.needs if declared else ()


def missing(item: pytest.Item, ovn: Version, ovs: Version) -> str | None:
    """Why the run cannot go on with these versions (a behaviour it needs
    that they lack), or None."""
    for name in needs(item):
        if not supported(name, ovn, ovs):
            project, version = ("OVS", ovs) if name in OVS_BEHAVIOURS else ("OVN", ovn)
            b = BEHAVIOURS[name]
            return f"{project} {version} predates {b.since}: {b.what}"
    return None


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
