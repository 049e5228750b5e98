"""Which load balancer knobs of the OVN under test the conformance suite
exercises.

The knobs are read from the installation itself, its ovn-nb(5) man page and
Northbound schema: every column of Load_Balancer, Load_Balancer_Group and
Load_Balancer_Health_Check and every key documented for their map columns
(`options:...`); of Logical_Switch and Logical_Router the columns holding
load balancers, and each column or key whose description mentions load
balanc* or a VIP.

TABLE says, per knob, which features' conformance tests exercise it, or why
none does.  The tests are found by collecting the conformance suite and
reading their `ovnlb_feature` markers.  A knob the installed OVN documents
and TABLE lacks is an error (`ovnlb-lab coverage` exits non-zero, the
self-test fails), so a new OVN release shows its new knobs."""

from __future__ import annotations

import contextlib
import functools
import gzip
import io
import json
import os
import re
import shutil
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

from pytest_ovnlb.reporting import features, report
from pytest_ovnlb.reporting.runner import conformance_dir
from pytest_ovnlb.model.versions import BEHAVIOURS

T = TypeVar("T")

BOOKKEEPING = "bookkeeping column, no datapath behaviour"
MISSING = "missing from the coverage table (pytest_ovnlb/reporting/coverage.py)"

# knob: the features whose conformance tests exercise it (a tuple), or why no
# test does (a string).  Knobs of every OVN release we know (23.03, 25.03,
# 26.03); a knob of a new release must be added, tested or with its reason.
TABLE = {
    "Load_Balancer:name": BOOKKEEPING,
    "Load_Balancer:vips": ("distribution", "stickiness", "source_ip", "placement", "ipv6_vips",
                           "vip_without_port"),
    # tcp (the default), udp and sctp
    "Load_Balancer:protocol": ("distribution", "sctp_lb"),
    "Load_Balancer:health_check": ("health_check", "udp_health_check"),
    "Load_Balancer:ip_port_mappings": ("health_check", "udp_health_check"),
    "Load_Balancer:selection_fields": ("selection_fields",),
    "Load_Balancer:external_ids": BOOKKEEPING,
    "Load_Balancer:options:reject": ("reject_no_backends",),
    "Load_Balancer:options:hairpin_snat_ip": ("hairpin_snat_ip",),
    "Load_Balancer:options:skip_snat": ("lb_skip_snat",),
    "Load_Balancer:options:add_route": ("add_route_gateway_router",),
    "Load_Balancer:options:neighbor_responder": ("neighbor_responder", "neighbor_responder_none"),
    "Load_Balancer:options:template": ("lb_template",),
    "Load_Balancer:options:address-family": ("lb_template",),
    "Load_Balancer:options:affinity_timeout": ("affinity_timeout",),
    "Load_Balancer:options:ct_flush": ("ct_flush", "ct_flush_router_lb"),
    "Load_Balancer:options:use_stateless_nat": (
        "needs a router with several distributed gateway ports; no lab topology has one"),
    "Load_Balancer:options:distributed": (
        "balances north-south traffic that the physical fabric routes to every chassis "
        "holding backends (a bridge mapping on each, ECMP routes to them); the lab's data "
        "network enters OVN through one chassis, and east-west traffic is not balanced "
        "by it (seen on 26.03.1: a client behind the router times out)"),
    "Load_Balancer_Group:name": BOOKKEEPING,
    "Load_Balancer_Group:load_balancer": ("lb_group",),
    "Load_Balancer_Health_Check:vip": ("health_check", "udp_health_check"),
    "Load_Balancer_Health_Check:options:interval": ("health_check", "udp_health_check"),
    "Load_Balancer_Health_Check:options:timeout": ("health_check", "udp_health_check"),
    "Load_Balancer_Health_Check:options:success_count": ("health_check", "udp_health_check"),
    "Load_Balancer_Health_Check:options:failure_count": ("health_check", "udp_health_check"),
    "Load_Balancer_Health_Check:external_ids": BOOKKEEPING,
    "Logical_Switch:load_balancer": ("switch_lb",),
    "Logical_Switch:load_balancer_group": ("lb_group",),
    "Logical_Switch:other_config:enable-stateless-acl-with-lb": ("stateless_acl_with_lb",),
    "Logical_Router:load_balancer": ("gateway_router_lb", "dgp_lb"),
    "Logical_Router:load_balancer_group": ("lb_group",),
    "Logical_Router:options:lb_force_snat_ip": ("lb_force_snat_ip", "lb_force_snat_router_ip"),
    "Logical_Router:options:dynamic_neigh_routers": (
        "its one load-balancer effect is to drop the static MAC bindings northd makes on "
        "neighbour routers for add_route VIPs; none are made in the lab (the add_route test "
        "sees tenant1 learn the VIP's MAC by ARP on 25.03 and 26.03), so no traffic can "
        "tell it set from unset"),
    "Logical_Router:options:dynamic-routing-redistribute": (
        "hands VIPs to a routing protocol daemon through ovn-controller's route exchange "
        "(kernel VRF tables); no lab runs a routing daemon"),
}

LB_TABLES = ("Load_Balancer", "Load_Balancer_Group", "Load_Balancer_Health_Check")
HOLDERS = ("Logical_Switch", "Logical_Router")
MENTIONS = re.compile(r"load[ _-]?balanc|\bvips?\b", re.IGNORECASE)
MAN = ("share/man/man5/ovn-nb.5.gz", "share/man/man5/ovn-nb.5")
SCHEMA = "share/ovn/ovn-nb.ovsschema"
ESCAPES = {r"\[char46]": ".", r"\-": "-", r"\(cq": "'", r"\(dq": '"', r"\(bu": "*", r"\e": "\\"}


def plain(text: str) -> str:
    """nroff text without font changes and escapes."""
    text = re.sub(r"\\f[BIRP]", "", text)
    for escape, char in ESCAPES.items():
        text = text.replace(escape, char)
    return text


def parse_man(text: str) -> dict[tuple[str, str], str]:
    """{(table, name): description} of every item ovn-nb(5) details, an
    `.IP "\\fBname\\fR: type"` line ("options : key" for a map key, here
    "options:key"), its description running to the next item, group
    (`.ST`) or table (`.SH`)."""
    items, table, current = {}, None, None
    for line in text.splitlines():
        head = re.match(r'\.SH "(\w+) TABLE"', line)
        item = re.match(r'\.IP "\\fB(.+?)\\fR: ', line)
        if head:
            table, current = head.group(1), None
        elif item and table:
            current = (table, re.sub(r"\s*:\s*", ":", plain(item.group(1))))
            items[current] = ""
        elif line.startswith((".SH", ".ST", ".bp")):
            current = None
        elif current and not line.startswith("."):
            items[current] += " " + plain(line)
    return items


def lb_knobs(man: dict[tuple[str, str], str], schema: dict) -> dict[str, str]:
    """{"Table:column" or "Table:column:key": description} of the load
    balancer knobs, in the man page's order."""
    found = {}
    for table in LB_TABLES + HOLDERS:
        documented = {name: text for (t, name), text in man.items() if t == table}
        # a map column whose keys are documented is there as its keys
        keyed = {name.split(":")[0] for name in documented if ":" in name}
        columns = [c for c in schema["tables"].get(table, {}).get("columns", {})
                   if c not in documented and c not in keyed]
        for name, text in [*documented.items(), *((c, "") for c in columns)]:
            if table in LB_TABLES or "load_balancer" in name or MENTIONS.search(text):
                found[f"{table}:{name}"] = text
    return found


@dataclass(frozen=True)
class Docs:
    """What the OVN under test documents."""

    man: str  # the ovn-nb(5) file read
    schema: str
    ovn: str | None  # the release the man page names
    knobs: dict[str, str]  # knob: description


def sources(root: str | None = None) -> tuple[Path, Path]:
    """ovn-nb(5) and the NB schema of the OVN under test: in `root`, else
    beside the ovn-nbctl on PATH (<prefix>/share), else under /usr, /usr/local.
    ValueError naming where it looked when one is missing."""
    bases = [Path("/usr"), Path("/usr/local")]
    if root:
        bases = [Path(os.path.abspath(root) + str(b)) for b in bases]
    elif shutil.which("ovn-nbctl"):
        bases.insert(0, Path(shutil.which("ovn-nbctl")).resolve().parent.parent)
    found = []
    for names in (MAN, (SCHEMA,)):
        path = next((b / n for n in names for b in bases if (b / n).is_file()), None)
        if path is None:
            raise ValueError(f"no {Path(names[0]).name} under {', '.join(map(str, bases))} "
                             "(package ovn-common)")
        found.append(path)
    return found[0], found[1]


def read(root: str | None = None) -> Docs:
    """The load balancer knobs the OVN under test (in `root`, else on PATH)
    documents; ValueError in one line when its docs cannot be read."""
    man_path, schema_path = sources(root)
    try:
        raw = man_path.read_bytes()
        text = (gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw).decode("utf-8", "replace")
        schema = json.loads(schema_path.read_text())
    except (OSError, ValueError, EOFError) as exc:
        raise ValueError(f"cannot read {man_path} or {schema_path}: {exc}") from None
    title = re.search(r'^\.TH .*"[^"\d]*(\d+\.\d+\.\d+)" "[^"]*"\s*$', text, re.MULTILINE)
    return Docs(str(man_path), str(schema_path), title.group(1) if title else None,
                lb_knobs(parse_man(text), schema))


@functools.cache
def collect(suite: str | None = None) -> dict[str, tuple[str, ...]]:
    """{stable test id: features its markers name} of the conformance suite."""
    return collected(lambda item: tuple(features.of(item)), suite)


def collected(take: Callable[[pytest.Item], T], suite: str | None = None) -> dict[str, T]:
    """{stable test id: take(test)} for each test of the conformance suite,
    collected in this process: collection only, so no lab is built and no
    root is needed.  RuntimeError with pytest's output when it fails."""
    suite = suite or str(conformance_dir() or "")
    if not suite:
        raise RuntimeError("the conformance suite's files are not installed")
    found: dict[str, T] = {}

    class Grab:
        def pytest_collection_finish(self, session: pytest.Session) -> None:
            found.update((report.stable_id(i.nodeid), take(i)) for i in session.items)

    modules, path, addopts = set(sys.modules), list(sys.path), os.environ.pop("PYTEST_ADDOPTS", None)
    out = io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            code = pytest.main(["--collect-only", "-q", "-p", "no:cacheprovider",
                                f"--rootdir={suite}", suite], plugins=[Grab()])
    finally:
        # the suite's modules and path entry leave with the collection
        for name in set(sys.modules) - modules:
            if str(getattr(sys.modules[name], "__file__", "")).startswith(suite):
                del sys.modules[name]
        sys.path[:] = path
        if addopts is not None:
            os.environ["PYTEST_ADDOPTS"] = addopts
    if code != 0:
        raise RuntimeError(f"collecting {suite} failed ({code!r}):\n{out.getvalue()[-2000:]}")
    return found


def by_feature(tests: dict[str, Iterable[str]]) -> dict[str, list[str]]:
    """{feature: test ids} from {test id: features}."""
    found: dict[str, list[str]] = {}
    for test, names in tests.items():
        for name in names:
            found.setdefault(name, []).append(test)
    return found


def since(knob: str) -> str | None:
    """The first OVN release with the knob, where known: that of the
    version-table behaviour its tests prove."""
    entry = TABLE.get(knob)
    found = [BEHAVIOURS[f].since for f in entry if f in BEHAVIOURS
             and f not in features.OVS_BEHAVIOURS] if isinstance(entry, tuple) else []
    return str(min(found)) if found else None


def rows(docs: Docs, tests: dict[str, list[str]]) -> list[dict]:
    """One row per knob `docs` documents: where it lives, since when, the
    features and `tests` ({feature: ids}) that exercise it, or why none does."""
    out = []
    for knob in docs.knobs:
        entry = TABLE.get(knob, MISSING)
        names = list(entry) if isinstance(entry, tuple) else []
        ids = sorted({i for n in names for i in tests.get(n, ())})
        table, _, column = knob.partition(":")
        out.append({"knob": knob, "table": table, "column": column, "since": since(knob),
                    "features": names, "tests": ids,
                    "reason": None if names else entry})
    return out


def missing(docs: Docs) -> list[str]:
    return [k for k in docs.knobs if k not in TABLE]


def problems() -> list[str]:
    """What is wrong with TABLE itself: unknown features, no feature and no reason."""
    found = []
    for knob, entry in TABLE.items():
        if isinstance(entry, tuple):
            found += [f"{knob}: no feature {f!r}" for f in entry if not features.known(f)]
        if not (entry.strip() if isinstance(entry, str) else entry):
            found.append(f"{knob}: neither a feature nor a reason")
    return found


def document(docs: Docs, tests: dict) -> dict:
    """The knobs `docs` documents as rows, with `tests` ({feature: ids})."""
    return {"ovn": docs.ovn, "manPage": docs.man, "schema": docs.schema,
            "knobs": rows(docs, tests), "missing": missing(docs)}


def section(backend: str, root: str | None, tests: list[report.TestEntry]) -> dict:
    """The run report's "coverage": the knobs of the OVN under test with
    the run's tests that exercise them."""
    empty = {"ovn": None, "manPage": None, "schema": None, "knobs": [], "missing": []}
    if backend != "netns":
        return {**empty, "note": "the OVN under test runs elsewhere; its ovn-nb(5) is not read"}
    try:
        docs = read(root)
    except ValueError as exc:
        return {**empty, "note": str(exc)}
    ran = {report.stable_id(t.nodeid): t.meta.get("features") or () for t in tests}
    return {**document(docs, by_feature(ran)), "note": None}


def text(data: dict) -> str:
    """A `document` for a terminal."""
    knobs = data["knobs"]
    tested = sum(bool(r["features"]) for r in knobs)
    lines = [(f"ovn-nb(5) of OVN {data['ovn'] or '?'} ({data['manPage']}): {len(knobs)} load "
              f"balancer knobs, {tested} exercised by conformance tests"), ""]
    where = max((len(r["table"]) for r in knobs), default=5)
    width = max((len(r["column"]) for r in knobs), default=4)
    lines.append(f"{'where':<{where}}  {'knob':<{width}}  {'since':<8}  tests or reason")
    for r in knobs:
        what = (f"{', '.join(r['features'])} ({len(r['tests'])} tests)" if r["features"]
                else r["reason"])
        lines.append(f"{r['table']:<{where}}  {r['column']:<{width}}  {r['since'] or '':<8}  {what}")
    return "\n".join(lines)


def main(root: str | None, as_json: bool) -> int:
    """`ovnlb-lab coverage`: 0, or 1 when the OVN documents a knob TABLE lacks."""
    try:
        data = document(read(root), by_feature(collect()))
    except (ValueError, RuntimeError) as exc:
        print(f"ovnlb-lab coverage: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(data, indent=1) if as_json else text(data))
    if data["missing"]:
        print(f"ovnlb-lab coverage: {len(data['missing'])} knob(s) of OVN {data['ovn']} "
              f"documented but {MISSING}: {', '.join(data['missing'])}", file=sys.stderr)
        return 1
    return 0
