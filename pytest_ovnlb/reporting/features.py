"""Which conformance tests prove which feature.

Two profiles, as Gateway API conformance reports have them:

- core: the four behaviours the suite exists to prove (how new connections
  are spread, that a connection stays on its backend, the source address a
  backend sees, where a load balancer must be placed);
- extended: every behaviour of the version table
  (pytest_ovnlb/verdicts/versions.py BEHAVIOURS); supported or not follows
  the OVN (or, for OVS behaviours, the OVS) version under test.

A test is named by its stable id, `FILE::FUNCTION[PARAMS]`, the file without
directories, so ids are the same from a clone and from an installed package.
"""

from __future__ import annotations

from dataclasses import dataclass

from pytest_ovnlb.verdicts.versions import BEHAVIOURS, Version

CORE = {
    "distribution": ("new connections spread over the backends as OVS's dp_hash select "
                     "group shares them (a dead backend keeps its share as refusals)"),
    "stickiness": "an established connection stays on its backend",
    "source_ip": "the source address a backend sees (proxy mode: SNAT or the client's own)",
    "placement": "where a load balancer must sit to serve a client",
}

# core feature by test file
CORE_FILES = {
    "test_distribution.py": "distribution",
    "test_no_health_check.py": "distribution",
    "test_stickiness.py": "stickiness",
    "test_source_ip.py": "source_ip",
    "test_placement.py": "placement",
}

# Behaviours of OVS, not OVN: judged by the OVS version.
OVS_BEHAVIOURS = {"ovs_dp_hash_4_slots_per_bucket"}


@dataclass(frozen=True)
class TestInfo:
    """What the mapping needs to know of a test."""

    file: str  # basename
    function: str
    placement: str | None = None
    params: tuple[tuple[str, str], ...] = ()

    def param(self, name: str) -> str | None:
        return dict(self.params).get(name)


def _extended(info: TestInfo) -> list[str]:
    found = []
    if info.placement == "switch":
        found.append("switch_lb")
    if info.placement == "router":
        found.append("gateway_router_lb")
    by_function = {
        "test_health_check_takes_dead_backend_out_and_back": "health_check",
        "test_selection_fields_ip_src_pins_a_client": "selection_fields",
        "test_reject_answers_a_vip_without_backends": "reject_no_backends",
        "test_affinity_timeout_keeps_a_client_on_its_backend": "affinity_timeout",
    }
    if info.function in by_function:
        found.append(by_function[info.function])
    if info.function == "test_backend_reaching_the_vip" and info.placement == "switch":
        found.append("switch_self_hairpin")
    # 5 buckets is where the two slot rules differ (4,3,3,3,3 of 16 vs 7,7,6,6,6 of 32)
    if info.file == "test_distribution.py" and info.param("k") == "5":
        found.append("ovs_dp_hash_4_slots_per_bucket")
    return found


def classify(info: TestInfo) -> dict[str, list[str]]:
    """{"core": [...], "extended": [...]} features a test proves."""
    core = [CORE_FILES[info.file]] if info.file in CORE_FILES else []
    return {"core": core, "extended": _extended(info)}


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
