"""The matrix page over many run reports: features as rows, installations
(OVN / OVS × datapath / backend) as columns, each cell the feature's result
there, linked to its details; under the table, per installation, every
feature's tests with reasons, failures, evidence and, per distribution
measurement, a small chart of observed counts against expected shares.

One self-contained HTML file (inline CSS and SVG; no script, no font, nothing
fetched) and a Markdown table.  `ovnlb-report` is the command line."""

from __future__ import annotations

import argparse
import html
import os
import re
import sys
from pathlib import Path

from pytest_ovnlb import version
from pytest_ovnlb.reporting import features, report

RESULTS = ("success", "partial", "failure", "unsupported", "untested")
COLOURS = {"success": "#2e7d32", "partial": "#b7791f", "failure": "#c62828",
           "unsupported": "#616161", "untested": "#9e9e9e", "passed": "#2e7d32",
           "failed": "#c62828", "skipped": "#b7791f", "exempted": "#6a1b9a"}

CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
table.matrix { border-collapse: collapse; }
table.matrix th, table.matrix td { border: 1px solid #ccc; padding: 4px 8px; text-align: left; }
table.matrix th.column { vertical-align: bottom; font-weight: 600; }
td.cell a { display: block; color: #fff; text-decoration: none; border-radius: 3px;
            padding: 1px 6px; text-align: center; }
tr.profile th { background: #eee; }
.r-success { background: #2e7d32; } .r-partial { background: #b7791f; }
.r-failure { background: #c62828; } .r-unsupported { background: #616161; }
.r-untested { background: #9e9e9e; }
section.column { margin-top: 2em; border-top: 2px solid #444; }
div.feature { margin: 1em 0 1em 1em; }
div.feature:target { outline: 3px solid #1565c0; }
li.test { margin: .3em 0; }
.o-passed { color: #2e7d32; } .o-failed { color: #c62828; font-weight: 600; }
.o-skipped { color: #b7791f; } .o-exempted { color: #6a1b9a; }
pre { white-space: pre-wrap; background: #f6f6f6; padding: .4em; margin: .2em 0; }
svg.chart { display: block; margin: .3em 0; }
small { color: #555; }
td.cell small { display: block; max-width: 16em; }
#changes li.regressed { color: #c62828; } li.change-regressions { font-weight: 600; }
"""


def column_label(data: dict) -> str:
    impl = data["implementation"]
    parts = [f"OVN {impl['ovn'] or '?'}", f"OVS {impl['ovs'] or '?'}",
             impl["datapath"] or "?", impl["backend"]]
    if impl.get("root"):
        parts.append(f"root {Path(impl['root']).name}")
    return " / ".join(parts)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()


class Column:
    def __init__(self, index: int, data: dict, label: str, source: Path | None = None):
        self.index, self.data, self.label, self.source = index, data, label, source
        self.anchor = f"c{index}-{_slug(label)}"
        self.tests = {t["id"]: t for t in data["tests"]}

    def feature(self, profile: str, name: str) -> dict | None:
        for p in self.data["profiles"]:
            if p["name"] == profile:
                return next((f for f in p["features"] if f["name"] == name), None)
        return None

    def cell_anchor(self, profile: str, name: str) -> str:
        return f"{self.anchor}-{profile}-{name}"


def _where(data: dict) -> dict[str, str]:
    """What tells two installations of one version apart, most telling first."""
    impl = data["implementation"]
    northd = impl.get("programs", {}).get("ovn-northd")
    return {"programs": str(Path(northd).parent) if northd else "",
            "packages": ", ".join(f"{k} {v}" for k, v in sorted(impl["packages"].items())),
            "host": data.get("host") or ""}


def columns_of(reports: list[dict], sources: list[Path] | None = None) -> list[Column]:
    """One column per report; reports of one version get what tells them
    apart (where the programs are, the packages, the host), else the date."""
    labels = [column_label(d) for d in reports]
    cols = []
    for i, (data, label) in enumerate(zip(reports, labels)):
        same = [d for d, other in zip(reports, labels) if other == label]
        if len(same) > 1:
            mine = _where(data)
            telling = next((k for k in mine if len({_where(d)[k] for d in same}) == len(same)),
                           None)
            label = f"{label} ({telling} {mine[telling]})" if telling else \
                f"{label} ({data['date']})"
        cols.append(Column(i, data, label, sources[i] if sources else None))
    return cols


def rows_of(cols: list[Column]) -> list[tuple[str, str]]:
    """(profile, feature) rows: the known features, then any a report adds."""
    rows = [(p, f) for p in ("core", "extended") for f in features.names(p)]
    for col in cols:
        for p in col.data["profiles"]:
            for f in p["features"]:
                if (p["name"], f["name"]) not in rows:
                    rows.append((p["name"], f["name"]))
    if any(c.data["unclassifiedTests"] for c in cols):
        rows.append(("other", "unclassified"))
    return rows


def _result_of(col: Column, profile: str, name: str) -> str:
    if profile == "other":
        tests = [col.tests[i] for i in col.data["unclassifiedTests"]]
        if not tests:
            return "untested"
        outcomes = {t["outcome"] for t in tests}
        return ("failure" if "failed" in outcomes else
                "partial" if outcomes & {"skipped", "exempted"} else "success")
    f = col.feature(profile, name)
    return f["result"] if f else "untested"


def _tests_of(col: Column, profile: str, name: str) -> list[dict]:
    if profile == "other":
        ids = col.data["unclassifiedTests"]
    else:
        f = col.feature(profile, name)
        ids = f["tests"] if f else []
    return [col.tests[i] for i in ids if i in col.tests]


def _e(text) -> str:
    return html.escape(str(text), quote=True)


def _why(col: Column, profile: str, name: str) -> str:
    """Why a cell is partial or a failure: counts, and each distinct reason a
    test was skipped or exempted ("" for the other results)."""
    tests = _tests_of(col, profile, name)
    failed = sum(t["outcome"] == "failed" for t in tests)
    held = [t for t in tests if t["outcome"] in ("skipped", "exempted")]
    if not failed and not held:
        return ""
    parts = [f"{failed} failed"] if failed else []
    if held:
        reasons = list(dict.fromkeys(t["reason"] or "no reason given" for t in held))
        parts.append(f"{len(held)} skipped or exempted: " + "; ".join(reasons))
    return ", ".join(parts)


def _link(path: str | Path, out: Path | None) -> str:
    """A path as the page links to it: relative to the page's folder (the
    artifacts move together), absolute where it has no folder."""
    if out is None:
        return Path(path).as_uri() if Path(path).is_absolute() else str(path)
    return os.path.relpath(Path(path).resolve(), out.resolve())


def _samples(by_k: dict) -> str:
    """"500/5700/5300 for 2/3/5 backends" from the report's suite.samples."""
    ks = sorted(by_k, key=int)
    return f"{'/'.join(str(by_k[k]) for k in ks)} for {'/'.join(ks)} backends"


def chart(m: dict) -> str:
    """Observed counts (bars) against expected counts (marks) per outcome."""
    shares, counts, n = m["shares"], m["counts"], m["n"]
    names = list(shares) + [k for k in counts if k not in shares]
    top = max([counts.get(k, 0) for k in names] + [shares.get(k, 0) * n for k in names] + [1])
    bar, gap, left, height = 58, 14, 8, 120
    width = max(left + len(names) * (bar + gap) + 8, 360)
    # the split's own verdict (older reports: the check's); None: not judged
    ok = m.get("splitPassed", m["passed"])
    parts = [f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{width}" '
             f'height="{height + 44}" role="img" aria-label="observed against expected">']
    for i, name in enumerate(names):
        x = left + i * (bar + gap)
        got = counts.get(name, 0)
        exp = shares.get(name, 0.0) * n
        h = got / top * height
        colour = "#c62828" if name not in shares or shares[name] == 0 else "#1565c0"
        parts.append(f'<rect class="observed" x="{x}" y="{height - h + 4:.1f}" width="{bar}" '
                     f'height="{h:.1f}" fill="{colour}"><title>{_e(name)}: {got} observed, '
                     f'{exp:.1f} expected</title></rect>')
        ey = height - exp / top * height + 4
        parts.append(f'<line class="expected" x1="{x - 3}" x2="{x + bar + 3}" y1="{ey:.1f}" '
                     f'y2="{ey:.1f}" stroke="#000" stroke-width="2" stroke-dasharray="4 2"/>')
        parts.append(f'<text x="{x + bar / 2}" y="{height + 18}" font-size="10" '
                     f'text-anchor="middle">{_e(name)}</text>')
        parts.append(f'<text x="{x + bar / 2}" y="{height + 30}" font-size="10" '
                     f'text-anchor="middle">{got}</text>')
    chi2 = "∞" if m["chi2"] is None else f"{m['chi2']:.2f}"
    verdict = {True: "consistent", False: "NOT consistent", None: "not judged"}[ok]
    parts.append(f'<text x="{left}" y="{height + 42}" font-size="11" '
                 f'fill="{"#2e7d32" if ok else "#c62828"}">χ²={chi2}, df={m["df"]}, '
                 f'p={m["p"]:.3g}, α={m["alpha"]:g}: {verdict}</text>')
    parts.append("</svg>")
    return "".join(parts)


CHANGES = ("regressions", "fixed", "new", "gone")


def changes(baseline: dict, current: dict) -> dict[str, list[str]]:
    """Test ids by how they changed since `baseline`: regressions (failed
    now, not before), fixed (failed before, passed now), new (not in the
    baseline), gone (not run now)."""
    before = {t["id"]: t["outcome"] for t in baseline["tests"]}
    now = {t["id"]: t["outcome"] for t in current["tests"]}
    return {"regressions": sorted(i for i, o in now.items()
                                  if o == "failed" and before.get(i, "failed") != "failed"),
            "fixed": sorted(i for i, o in now.items()
                            if o == "passed" and before.get(i) == "failed"),
            "new": sorted(i for i in now if i not in before),
            "gone": sorted(i for i in before if i not in now)}


def baseline_of(col: Column, cols: list[Column], baselines: list[dict]) -> dict | None:
    """The baseline run of a column's installation (its label without the
    run's own details), or the only one when both sides have one."""
    if len(baselines) == 1 and len(cols) == 1:
        return baselines[0]
    mine = column_label(col.data)
    return next((b for b in baselines if column_label(b) == mine), None)


def _changes_html(cols: list[Column], baselines: list[dict]) -> list[str]:
    out = ['<section id="changes"><h2>Against the baseline</h2><ul>']
    for col in cols:
        base = baseline_of(col, cols, baselines)
        if base is None:
            out.append(f"<li>{_e(col.label)}: no baseline run of this installation</li>")
            continue
        diff = changes(base, col.data)
        counts = ", ".join(f"{len(diff[k])} {k}" for k in CHANGES)
        out.append(f'<li class="{"regressed" if diff["regressions"] else "steady"}">'
                   f'{_e(col.label)}: {counts} <small>(baseline run {_e(base["date"])})'
                   "</small><ul>")
        for kind in CHANGES:
            for test_id in diff[kind]:
                t = col.tests.get(test_id)
                note = f": <small>{_e((t or {}).get('message') or '')[:300]}</small>" \
                    if kind == "regressions" and t else ""
                out.append(f'<li class="change-{kind}">{kind[:-1] if kind != "new" else kind}'
                           f" <code>{_e(test_id)}</code>{note}</li>")
        out.append("</ul></li>")
    out.append("</ul></section>")
    return out


def _test_html(t: dict, out_dir: Path | None = None) -> str:
    out = [f'<li class="test"><span class="o-{t["outcome"]}">{t["outcome"]}</span> '
           f'<code>{_e(t["id"])}</code> <small>{t["duration"]:.2f} s</small>']
    if t["reason"]:
        out.append(f"<br/><small>reason: {_e(t['reason'])}</small>")
    if t["message"]:
        out.append(f"<pre>{_e(t['message'])}</pre>")
    if t["evidence"]:
        out.append(f'<br/><small>evidence: <a class="evidence" '
                   f'href="{_e(_link(t["evidence"], out_dir))}">{_e(t["evidence"])}</a></small>')
    for m in t["measurements"]:
        context = ", ".join(f"{k} {v}" for k, v in m["context"].items())
        if m["kind"] == "distribution":
            lost = sum(m.get("lost", {}).values())
            out.append(f'<div class="measurement distribution"><small>{m["n"]} new '
                       f'connections{f" ({lost} lost)" if lost else ""}'
                       f'{", " + _e(context) if context else ""}; bars observed, '
                       f'dashes expected</small>{chart(m)}</div>')
        else:
            seen = "; ".join(f"{b}: {', '.join(a)}" for b, a in m["seen"].items())
            out.append(f'<div class="measurement sources"><small>sources seen '
                       f'{_e(seen)}{" (" + _e(context) + ")" if context else ""}</small></div>')
    out.append("</li>")
    return "".join(out)


def upgrade_of(data: dict) -> dict | None:
    """An upgrade run's walk (its test's `upgrade` measurement), or None."""
    return next((m for t in data.get("tests", []) for m in t.get("measurements", [])
                 if m.get("kind") == "upgrade"), None)


def upgrade_rows(reports: list[dict]) -> list[dict]:
    """A row per upgrade run: the path, the walk's verdict with each step's
    figures, and the suite's result on the upgraded labs."""
    rows = []
    for data in reports:
        walk = upgrade_of(data)
        if walk is None:
            continue
        s = data["statistics"]
        steps = [f"{st['step']}: {'ok' if st['passed'] else 'FAILED'}, stall "
                 f"{st['held']['longest_stall']:.2f} s (bound {st['bound']['stall']:g}), new "
                 + (f"{100 * st['new']['fraction']:.1f} %" if st['new']['fraction'] is not None
                    else "none") + f" served, gap {st['new']['longest_gap']:.2f} s"
                 for st in walk["steps_judged"]]
        rows.append({
            "path": f"{walk['from']} → {walk['to']}", "procedure": walk["procedure"],
            "ovs": f"{walk['from_ovs']} → {walk['to_ovs']}",
            "walk": "passed" if walk["passed"] else "failed", "suite": data["result"],
            "counts": f"{s['Passed']} passed, {s['Failed']} failed, {s['Skipped']} skipped",
            "steps": steps,
            "failures": [f"{st['step']}: {f}" for st in walk["steps_judged"]
                         for f in st["failures"]]})
    return rows


def _upgrades_html(rows: list[dict]) -> list[str]:
    out = ['<h2 id="upgrades">Upgrades</h2>',
           "<p><small>Traffic held through OVN's upgrade procedure, judged at every step "
           "(docs/upgrades.md), then the suite on the upgraded labs. A downgrade follows no "
           "documented procedure: it is reported, not judged against one.</small></p>",
           '<table class="matrix"><thead><tr><th>OVN</th><th>OVS</th><th>procedure</th>'
           "<th>traffic through the steps</th><th>suite after</th></tr></thead><tbody>"]
    for r in rows:
        steps = "<br/>".join(_e(x) for x in r["steps"])
        failures = "".join(f"<br/><small>{_e(f)}</small>" for f in r["failures"][:5])
        out.append(f'<tr><th scope="row">{_e(r["path"])}</th><td>{_e(r["ovs"])}</td>'
                   f'<td>{_e(r["procedure"])}</td><td class="cell"><span class="r-'
                   f'{"success" if r["walk"] == "passed" else "failure"}">{r["walk"]}</span>'
                   f"<small>{steps}</small>{failures}</td>"
                   f'<td class="cell"><span class="r-{_e(r["suite"])}">{_e(r["suite"])}</span>'
                   f'<small>{_e(r["counts"])}</small></td></tr>')
    out.append("</tbody></table>")
    return out


def _upgrades_markdown(rows: list[dict]) -> list[str]:
    lines = ["", "**Upgrades** (traffic held through OVN's procedure, then the suite)", "",
             "| OVN | OVS | procedure | traffic through the steps | suite after |",
             "|---|---|---|---|---|"]
    lines += [f"| {r['path']} | {r['ovs']} | {r['procedure']} | "
              + ("passed" if r["walk"] == "passed" else "**failed**") + ": "
              + "; ".join(r["steps"]) + f" | {r['suite']} ({r['counts']}) |" for r in rows]
    return lines


def render_html(reports: list[dict], title: str = "OVN load balancer conformance",
                out_dir: Path | None = None, sources: list[Path] | None = None,
                baselines: list[dict] = ()) -> str:
    """The page; `out_dir`: where it is written (links are relative to it),
    `sources`: each report's file, `baselines`: earlier runs to compare with.
    Upgrade runs are rows of their own section, not columns."""
    upgrades = upgrade_rows(reports)
    steady = [i for i, r in enumerate(reports) if upgrade_of(r) is None]
    sources = [sources[i] for i in steady] if sources else None
    cols = columns_of([reports[i] for i in steady], sources)
    rows = rows_of(cols)
    out = ['<!DOCTYPE html>', '<html lang="en"><head><meta charset="utf-8"/>',
           f"<title>{_e(title)}</title><style>{CSS}</style></head><body>",
           f"<h1>{_e(title)}</h1>"]
    if baselines:  # what changed comes first
        out += _changes_html(cols, baselines)
    out.append('<table class="matrix"><thead><tr><th>feature</th>')
    out += [f'<th class="column" scope="col"><a href="#{col.anchor}">{_e(col.label)}</a>'
            f'<br/><small>{_e(col.data["date"])}'
            + (f' on {_e(col.data["host"])}' if col.data.get("host") else "")
            + "</small></th>" for col in cols]
    out.append('</tr><tr class="overall"><th>whole run</th>')
    for col in cols:
        s = col.data["statistics"]
        out.append(f'<td class="cell"><a class="r-{col.data["result"]}" href="#{col.anchor}">'
                   f'{col.data["result"]}</a><small>{s["Passed"]} passed, {s["Failed"]} failed, '
                   f'{s["Skipped"]} skipped, {s["Exempted"]} exempted</small></td>')
    out.append("</tr></thead><tbody>")
    current = None
    for profile, name in rows:
        if profile != current:
            current = profile
            out.append(f'<tr class="profile"><th colspan="{len(cols) + 1}">{profile}</th></tr>')
        out.append(f'<tr class="feature" id="row-{profile}-{name}"><th scope="row">{_e(name)}</th>')
        for col in cols:
            result = _result_of(col, profile, name)
            why = _why(col, profile, name) if result in ("partial", "failure") else ""
            out.append(f'<td class="cell" data-result="{result}"><a class="r-{result}" '
                       f'href="#{col.cell_anchor(profile, name)}" title="{_e(why)}">{result}</a>'
                       + (f"<small>{_e(why)}</small>" if why else "") + "</td>")
        out.append("</tr>")
    out.append("</tbody></table>")
    out.append("<p><small>success: every test passed; partial: some skipped or exempted; "
               "failure: a test failed; unsupported: the version under test predates the "
               "behaviour; untested: no test ran.</small></p>")
    if upgrades:
        out += _upgrades_html(upgrades)

    for col in cols:
        d = col.data
        impl = d["implementation"]
        packages = ", ".join(f"{k} {v}" for k, v in sorted(impl["packages"].items())) or "none known"
        files = ""
        if col.source is not None:
            links = [col.source] + [p for p in (col.source.with_name("junit.xml"),) if p.exists()]
            files = "; files: " + ", ".join(f'<a href="{_e(_link(p, out_dir))}">{_e(p.name)}</a>'
                                             for p in links)
        out.append(f'<section class="column" id="{col.anchor}"><h2>{_e(col.label)}</h2>'
                   f"<p><small>run {_e(d['date'])}"
                   + (f" on {_e(d['host'])}" if d.get("host") else "")
                   + (", interrupted" if d.get("interrupted") else "")
                   + f"{files}, {d['durationSeconds']:.1f} s; suite "
                   f"{_e(d['suite']['name'])} {_e(d['suite']['version'])}, "
                   f"samples {_e(_samples(d['suite']['samples']))}; topology {_e(impl['topology'])}; "
                   f"packages: {_e(packages)}</small></p>")
        for profile, name in rows:
            result = _result_of(col, profile, name)
            f = col.feature(profile, name) if profile != "other" else None
            what = (f["description"] if f else
                    features.describe(profile, name) if profile != "other" and
                    name in features.names(profile) else "tests no feature claims")
            why = _why(col, profile, name) if result in ("partial", "failure") else ""
            out.append(f'<div class="feature" id="{col.cell_anchor(profile, name)}">'
                       f'<h3>{profile}: {_e(name)} — <span class="o-{result}">{result}</span>'
                       f"</h3><p><small>{_e(what)}</small></p>"
                       + (f'<p class="why"><small>{_e(why)}</small></p>' if why else "")
                       + "<ul>")
            out += [_test_html(t, out_dir) for t in _tests_of(col, profile, name)]
            out.append("</ul></div>")
        out.append("</section>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def render_markdown(reports: list[dict], page: str = "matrix.html",
                    baselines: list[dict] = ()) -> str:
    upgrades = upgrade_rows(reports)
    cols = columns_of([r for r in reports if upgrade_of(r) is None])
    lines = []
    for col in cols if baselines else ():  # what changed comes first
        base = baseline_of(col, cols, baselines)
        if base is not None:
            diff = changes(base, col.data)
            lines.append(f"**{col.label}** against the baseline of {base['date']}: "
                         + ", ".join(f"{len(diff[k])} {k}" for k in CHANGES)
                         + "".join(f"\n- regression: `{i}`" for i in diff["regressions"])
                         + "\n")
    lines += ["| feature | " + " | ".join(c.label for c in cols) + " |",
             "|---|" + "---|" * len(cols),
             "| **whole run** | " + " | ".join(
                 f"[{c.data['result']}]({page}#{c.anchor})" for c in cols) + " |"]
    for profile, name in rows_of(cols):
        cells = []
        for col in cols:
            result = _result_of(col, profile, name)
            text = f"**{result}**" if result == "failure" else result
            why = _why(col, profile, name) if result in ("partial", "failure") else ""
            why = f" ({why.split(':')[0]})" if why else ""
            cells.append(f"[{text}]({page}#{col.cell_anchor(profile, name)}){why}")
        lines.append(f"| {profile}: {name} | " + " | ".join(cells) + " |")
    if upgrades:
        lines += _upgrades_markdown(upgrades)
    return "\n".join(lines) + "\n"


def write(reports: list[dict], out: Path, title: str | None = None,
          sources: list[Path] | None = None, baselines: list[dict] = ()) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    page, table = out / "matrix.html", out / "matrix.md"
    page.write_text(render_html(reports, title or "OVN load balancer conformance", out,
                                sources, baselines))
    table.write_text(render_markdown(reports, page.name, baselines))
    return page, table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="ovnlb-report",
        description="Build the matrix page (matrix.html) and table (matrix.md) from "
                    "conformance reports written with --ovnlb-report.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    parser.add_argument("reports", nargs="+", type=Path, help="report JSON files")
    parser.add_argument("--out", type=Path, default=Path("."), help="output directory")
    parser.add_argument("--title", default=None, help="page title")
    parser.add_argument("--baseline", type=Path, action="append", default=[],
                        help="an earlier run's report of one of the installations (repeat for "
                             "more): regressions, fixes, new and gone tests are shown first")
    args = parser.parse_args(argv)
    try:
        reports = [report.load(p) for p in args.reports]
        baselines = [report.load(p) for p in args.baseline]
    except ValueError as exc:
        print(f"ovnlb-report: {exc}", file=sys.stderr)
        return 2
    page, table = write(reports, args.out, args.title, args.reports, baselines)
    print(f"{page}\n{table}")
    cols = columns_of(reports)
    for col in cols:
        base = baseline_of(col, cols, baselines) if baselines else None
        if base is not None and (worse := changes(base, col.data)["regressions"]):
            print(f"ovnlb-report: {col.label}: {len(worse)} regression"
                  f"{'s' * (len(worse) > 1)} against the baseline: {', '.join(worse)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
