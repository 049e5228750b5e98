"""The conformance statements: for each conformance test, the promise it
checks, the features it proves and where it runs, as docs/conformance.md
shows them.

    python -m pytest_ovnlb.reporting.statements > docs/conformance.md

The suite is collected as `ovnlb-lab coverage` collects it (no lab, no
root).  What a test declares is read in one place, `declared()`: its
promise is its docstring's first paragraph (else its module's docstring
says it), its features are what the report counts for it
(`features.of`)."""

from __future__ import annotations

import inspect
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from pytest_ovnlb.reporting import coverage, features, report

COMMAND = "python -m pytest_ovnlb.reporting.statements > docs/conformance.md"
# the order placements and families are listed in
PLACEMENTS = tuple(features.PLACEMENT_FEATURES)
FAMILIES = {"ipv4": "IPv4", "ipv6": "IPv6"}


@dataclass(frozen=True)
class Run:
    """One collected run of a conformance test, as the test declares it."""

    test: str  # FILE::FUNCTION
    line: int  # where the function is, for the order of the page
    promise: str  # "" when the module's is the test's
    about: tuple[str, ...]  # the module's docstring, by paragraph
    features: tuple[str, ...]
    needs: tuple[str, ...]  # behaviours without which it is skipped
    placement: str | None
    family: str | None


def paragraphs(doc: str | None) -> tuple[str, ...]:
    """A docstring's paragraphs, each on one line."""
    found = (" ".join(p.split()) for p in inspect.cleandoc(doc or "").split("\n\n"))
    return tuple(p for p in found if p)


def declared(item: pytest.Item) -> Run:
    """What one run of a test declares.  Only this function reads a test's
    declarations."""
    params = item.callspec.params if hasattr(item, "callspec") else {}
    return Run(test=report.stable_id(item.nodeid).split("[")[0], line=item.location[1],
               promise=next(iter(paragraphs(item.function.__doc__)), ""),
               about=paragraphs(item.module.__doc__),
               features=tuple(f for f in features.of(item)
                              if f not in features.PLACEMENT_FEATURES.values()),
               needs=tuple(features.needs(item)),
               placement=params.get("placement"), family=params.get("family"))


def collect(suite: str | None = None) -> list[Run]:
    """Every run of the suite, by file and by place in it (a run under
    xdist collects them in another order)."""
    runs = coverage.collected(declared, suite)
    return [runs[i] for i in sorted(runs, key=lambda i: (i.split("::")[0], runs[i].line, i))]


def _wrap(text: str, indent: str = "") -> str:
    return textwrap.fill(text, 79, subsequent_indent=indent, break_long_words=False,
                         break_on_hyphens=False)


def _vocabulary(names) -> list[str]:
    found = features.classify(names)
    return found["core"] + found["extended"]


def _ordered(values, order) -> list:
    return [v for v in order if v in values]


def _names(runs: list[Run], of: Callable[[Run], tuple[str, ...]]) -> list[str]:
    """The names `of` gives the runs, each with the runs it holds for where
    that is not all of them: their placements, or how many."""
    named = []
    for name in _vocabulary({n for r in runs for n in of(r)}):
        holding = [r for r in runs if name in of(r)]
        where = _ordered({r.placement for r in holding}, PLACEMENTS)
        if len(holding) == len(runs):
            named.append(f"`{name}`")
        elif len(holding) == sum(r.placement in where for r in runs):
            named.append(f"`{name}` ({', '.join(where)})")
        else:
            named.append(f"`{name}` ({len(holding)} of {len(runs)} runs)")
    return named


def _test(runs: list[Run]) -> list[str]:
    """One test's statement."""
    placements = _ordered({r.placement for r in runs}, PLACEMENTS)
    families = [FAMILIES[f] for f in _ordered({r.family for r in runs}, FAMILIES)]
    where = ", ".join(placements) or "no placement"
    if families:
        where += " × " + ", ".join(families)
    name = runs[0].test.split("::")[1]
    needs = _names(runs, lambda r: r.needs)
    return [_wrap(f"**`{name}`**: {runs[0].promise or 'as the file says, above.'}"), "",
            _wrap(f"- proves: {', '.join(_names(runs, lambda r: r.features)) or 'no feature'}",
                  "  "),
            *([_wrap(f"- needs: {', '.join(needs)}", "  ")] if needs else []),
            _wrap(f"- runs: {where} ({len(runs)} run{'s' if len(runs) > 1 else ''})", "  "), ""]


def _feature(name: str) -> str:
    if name in features.CORE:
        return f"| `{name}` | core | | {features.CORE[name]} |"
    b = features.BEHAVIOURS[name]
    project = "OVS" if name in features.OVS_BEHAVIOURS else "OVN"
    since = f"{project} {b.since}" + "".join(f", {v}" for v in b.backports)
    return f"| `{name}` | extended | {since} | {b.what} |"


def markdown(suite: str | None = None) -> str:
    """docs/conformance.md."""
    runs = collect(suite)
    tests: dict[str, list[Run]] = {}
    for r in runs:
        tests.setdefault(r.test, []).append(r)
    lines = ["# What the conformance suite checks", "",
             "Generated from the suite's own tests; do not edit by hand. To regenerate:", "",
             "```sh", f".venv/bin/{COMMAND}", "```", "",
             _wrap(f"{len(tests)} tests, {len(runs)} runs. Each test states its promise (its "
                   "docstring), the features it proves (the report's profiles count them, "
                   "see [reports](reports.md)) and where it runs: the placements of the load "
                   "balancer (router: the gateway router; switch: the client's switch; dgp: "
                   "a distributed router's gateway port) and the address families. Every "
                   "run also proves its placement's feature (`gateway_router_lb`, "
                   "`switch_lb`, `dgp_lb`). A test is skipped where the version under test "
                   "lacks a behaviour it needs. A feature that only some runs prove names "
                   "their placements, or how many runs prove it. The IPv6 runs expect what the "
                   "IPv4 runs do, with the IPv6 addresses of the [reference lab](lab.md)."), ""]
    files: dict[str, list[str]] = {}
    for test in tests:
        files.setdefault(test.split("::")[0], []).append(test)
    for file, names in files.items():
        lines += [f"## {file}", ""]
        for paragraph in tests[names[0]][0].about:
            lines += [_wrap(paragraph), ""]
        for name in names:
            lines += _test(tests[name])
    proved = _vocabulary({f for r in runs for f in r.features}
                         | set(features.PLACEMENT_FEATURES.values()))
    lines += ["## Features", "",
              _wrap("Core features are what the suite exists to prove; extended ones are "
                    "behaviours of the version table (`BEHAVIOURS`), expected from the "
                    "release named (and the backports listed) on."), "",
              "| feature | profile | since | what |", "|---|---|---|---|",
              *map(_feature, proved)]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.stdout.write(markdown())
