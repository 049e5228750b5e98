"""The matrix page and table from run reports (ovnlb-report): structure
from two synthetic reports, the command line, and the page as headless
Chromium renders it."""

import os
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from pytest_ovnlb.reporting import features, matrix, report
from pytest_ovnlb.reporting.report import TestEntry
from pytest_ovnlb.verdicts import stats

SUITE = {"name": "pytest-ovnlb", "version": "0.1.0",
         "samples": {"2": 500, "3": 5700, "5": 5300}}


def measurement(counts, shares):
    v = stats.chi_square_test(counts, shares)
    return {"kind": "distribution", "label": "", "counts": counts, "shares": shares, "n": v.n,
            "chi2": v.chi2, "df": v.df, "p": v.p, "alpha": v.alpha, "passed": v.passed,
            "planned": None, "context": {"client": "vm3"}}


def synthetic(ovn, ovs, broken=False):
    """A run of OVN `ovn`; `broken`: its 3-backend split went all to one."""
    shares = {"vm1:8000": 0.375, "vm2:8000": 0.3125, "vm1:8001": 0.3125}
    good = measurement({"vm1:8000": 380, "vm2:8000": 310, "vm1:8001": 310}, shares)
    bad = measurement({"vm1:8000": 0, "vm2:8000": 1000, "vm1:8001": 0}, shares)
    tests = [
        TestEntry("conformance/test_distribution.py::test_client_switch_spreads_new_"
                   "connections[switch-3]", outcome="failed" if broken else "passed",
                   message="split wrong" if broken else None,
                   evidence="/ev/switch-3" if broken else None,
                   meta={"file": "test_distribution.py",
                         "function": "test_client_switch_spreads_new_connections",
                         "placement": "switch", "params": {"placement": "switch", "k": "3"},
                         "features": ["distribution", "switch_lb"]},
                   measurements=[bad if broken else good]),
        TestEntry("conformance/test_stickiness.py::test_keepalive_requests_all_reach_one_"
                   "backend[router]", meta={"file": "test_stickiness.py", "function":
                                            "test_keepalive_requests_all_reach_one_server",
                                            "placement": "router", "params": {},
                                            "features": ["stickiness", "gateway_router_lb"]}),
        TestEntry("conformance/test_options.py::test_affinity_timeout_keeps_a_client_on_its_"
                   "backend[switch]", outcome="skipped", reason="OVN predates 22.12.0",
                   meta={"file": "test_options.py",
                         "function": "test_affinity_timeout_keeps_a_client_on_its_server",
                         "placement": "switch", "params": {},
                         "features": ["affinity_timeout", "switch_lb"]}),
    ]
    impl = {"ovn": ovn, "ovs": ovs, "datapath": "netdev", "backend": "netns", "topology": "lab",
            "root": None, "packages": {"ovn-central": f"{ovn}-1"}}
    data = report.build(tests, impl, SUITE, "2026-01-01T00:00:00Z", 12.0, [])
    report.validate(data)
    return data


REPORTS = [synthetic("23.03.1", "3.1.0"), synthetic("22.09.0", "3.5.0", broken=True)]
ROWS = len(features.names("core")) + len(features.names("extended"))


class Page(HTMLParser):
    """Ids, links, header cells, feature rows, cells and charts of a page."""

    def __init__(self, text):
        super().__init__()
        self.ids, self.links, self.columns, self.rows = set(), [], [], []
        self.cells, self.charts, self.fetches, self.scripts = [], 0, [], 0
        self._in_column = False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if "id" in a:
            self.ids.add(a["id"])
        if tag == "a" and "href" in a:
            self.links.append(a["href"])
        if tag == "th" and a.get("class") == "column":
            self._in_column = True
            self.columns.append("")
        if tag == "tr" and a.get("class") == "feature":
            self.rows.append(a["id"])
        if tag == "td" and "data-result" in a:
            self.cells.append(a["data-result"])
        if tag == "svg" and "chart" in a.get("class", ""):
            self.charts += 1
        if tag == "script":
            self.scripts += 1
        for key in ("src", "href"):
            if a.get(key, "").startswith(("http:", "https:", "//")):
                self.fetches.append(a[key])
        if tag == "link":
            self.fetches.append(str(a))

    def handle_endtag(self, tag):
        if tag in ("th", "a"):  # a column's name is its link's text
            self._in_column = False

    def handle_data(self, data):
        if self._in_column:
            self.columns[-1] += data


def test_page_structure_from_two_reports():
    page = Page(matrix.render_html(REPORTS))
    assert page.columns == ["OVN 23.03.1 / OVS 3.1.0 / netdev / netns",
                            "OVN 22.09.0 / OVS 3.5.0 / netdev / netns"]
    assert len(page.rows) == ROWS and "row-core-distribution" in page.rows
    assert len(page.cells) == 2 * ROWS
    cells = {row: page.cells[2 * i:2 * i + 2] for i, row in enumerate(page.rows)}
    assert cells["row-core-distribution"] == ["success", "failure"]
    assert cells["row-core-stickiness"] == ["success", "success"]
    assert cells["row-extended-switch_lb"] == ["partial", "failure"]  # affinity skipped
    assert cells["row-core-placement"] == ["untested", "untested"]
    assert cells["row-extended-affinity_timeout"] == ["partial", "unsupported"]
    assert cells["row-extended-ovs_dp_hash_4_slots_per_bucket"] == ["unsupported", "untested"]
    # every link is an anchor of the page itself, or a file beside the page
    anchors = [link for link in page.links if link.startswith("#")]
    assert anchors and {link[1:] for link in anchors} <= page.ids
    assert {link for link in page.links if not link.startswith("#")} == {"file:///ev/switch-3"}
    # each distribution test shows under its core feature and its placement's
    assert page.charts == 4 and page.scripts == 0 and page.fetches == []
    text = matrix.render_html(REPORTS)
    assert "split wrong" in text and "/ev/switch-3" in text and "OVN predates 22.12.0" in text
    assert "NOT consistent" in text and "χ²=" in text


def test_markdown_table():
    lines = matrix.render_markdown(REPORTS, "m.html").splitlines()
    assert lines[0] == ("| feature | OVN 23.03.1 / OVS 3.1.0 / netdev / netns | "
                        "OVN 22.09.0 / OVS 3.5.0 / netdev / netns |")
    assert len(lines) == 3 + ROWS
    dist = next(line for line in lines if line.startswith("| core: distribution |"))
    assert "[success](m.html#c0-" in dist and "[**failure**](m.html#c1-" in dist
    ids = Page(matrix.render_html(REPORTS)).ids
    for line in lines[2:]:
        for part in line.split("(m.html#")[1:]:
            assert part.split(")")[0] in ids


def test_repeated_runs_of_one_installation_get_their_own_columns():
    later = dict(REPORTS[0], date="2026-01-02T00:00:00Z")
    page = Page(matrix.render_html([REPORTS[0], later]))
    assert page.columns == ["OVN 23.03.1 / OVS 3.1.0 / netdev / netns (2026-01-01T00:00:00Z)",
                            "OVN 23.03.1 / OVS 3.1.0 / netdev / netns (2026-01-02T00:00:00Z)"]
    assert {link[1:] for link in page.links} <= page.ids


def test_command_line(tmp_path):
    import json
    paths = []
    for i, data in enumerate(REPORTS):
        paths.append(tmp_path / f"r{i}.json")
        paths[-1].write_text(json.dumps(data))
    exe = Path(sys.executable).parent / "ovnlb-report"
    result = subprocess.run([str(exe), *map(str, paths), "--out", str(tmp_path / "out")],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out/matrix.html").stat().st_size > 1000
    assert (tmp_path / "out/matrix.md").read_text().startswith("| feature |")
    (tmp_path / "bad.json").write_text('{"apiVersion": "x"}')
    result = subprocess.run([str(exe), str(paths[0]), str(tmp_path / "bad.json")],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"ovnlb-report: {tmp_path}/bad.json: not a conformance report")


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def chromium():
    exe = shutil.which("chromium")
    if exe is None and os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"],
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
                       capture_output=True, check=False, timeout=900)
        exe = shutil.which("chromium")
    if exe is None:
        pytest.skip("Chromium is not installed and `apt-get install -y chromium` could not "
                    "install it (not root, or no package archive reachable)")
    return exe


def test_page_in_headless_chromium(chromium, tmp_path):
    page, _ = matrix.write(REPORTS, tmp_path)
    url = page.resolve().as_uri()
    shot = tmp_path / "shot.png"
    run = subprocess.run([chromium, *CHROMIUM_FLAGS, f"--screenshot={shot}",
                          "--window-size=1200,900", url],
                         capture_output=True, text=True, timeout=120, check=False,
                         cwd=tmp_path, env={**os.environ, "HOME": str(tmp_path)})
    assert run.returncode == 0, run.stderr[-2000:]
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20000
    dom = subprocess.run([chromium, *CHROMIUM_FLAGS, "--dump-dom", url],
                         capture_output=True, text=True, timeout=120, check=False,
                         cwd=tmp_path, env={**os.environ, "HOME": str(tmp_path)})
    assert dom.returncode == 0, dom.stderr[-2000:]
    rendered = Page(dom.stdout)
    assert len(rendered.columns) == 2 and len(rendered.rows) == ROWS
    assert len(rendered.cells) == 2 * ROWS and rendered.charts == 4
    assert rendered.cells.count("failure") == 2  # core distribution, extended switch_lb


def test_cells_say_why_they_are_partial():
    page = matrix.render_html(REPORTS)
    # the 23.03 affinity test was skipped: its reason stands in the cell
    assert 'title="1 skipped or exempted: OVN predates 22.12.0">partial</a>' in page
    assert "<small>1 skipped or exempted: OVN predates 22.12.0</small>" in page
    md = matrix.render_markdown(REPORTS)
    assert "partial](matrix.html#c0-" in md and ") (1 skipped or exempted)" in md


def test_installations_of_one_version_are_told_apart():
    a = dict(REPORTS[0], implementation=dict(REPORTS[0]["implementation"],
                                             programs={"ovn-northd": "/usr/bin/ovn-northd"}))
    b = dict(REPORTS[0], implementation=dict(REPORTS[0]["implementation"],
                                             programs={"ovn-northd": "/opt/ovn/bin/ovn-northd"}))
    page = Page(matrix.render_html([a, b]))
    assert page.columns == ["OVN 23.03.1 / OVS 3.1.0 / netdev / netns (programs /usr/bin)",
                            "OVN 23.03.1 / OVS 3.1.0 / netdev / netns (programs /opt/ovn/bin)"]
    # each column's header says when and where its run ran
    on_other_host = dict(a, host="builder-7")
    text = matrix.render_html([on_other_host])
    assert f"<br/><small>{a['date']} on builder-7</small></th>" in text


def test_links_to_evidence_and_reports_are_relative(tmp_path):
    out, run = tmp_path / "site", tmp_path / "site" / "1-host"
    run.mkdir(parents=True)
    data = dict(REPORTS[1], tests=[dict(t, evidence=str(run / "ovnlb-evidence" / "t0")
                                        if t["evidence"] else None)
                                   for t in REPORTS[1]["tests"]])
    (run / "report.json").write_text("{}")
    (run / "junit.xml").write_text("<testsuites/>")
    page = Page(matrix.render_html([data], out_dir=out, sources=[run / "report.json"]))
    files = {link for link in page.links if not link.startswith("#")}
    assert files == {"1-host/ovnlb-evidence/t0", "1-host/report.json", "1-host/junit.xml"}


def test_regressions_against_a_baseline_come_first(tmp_path):
    """Yesterday's run of the same installation passed the distribution
    test that fails today: a regression, shown before the table, with the
    fixed, new and gone tests; the command line says so too."""
    import json
    good, bad = synthetic("23.03.1", "3.1.0"), synthetic("23.03.1", "3.1.0", broken=True)
    good["date"] = "2026-01-01T00:00:00Z"
    bad["date"] = "2026-01-02T00:00:00Z"
    gone = good["tests"][1]["id"]
    bad["tests"] = [t for t in bad["tests"] if t["id"] != gone] + [
        dict(bad["tests"][0], id="test_new.py::test_new", nodeid="test_new.py::test_new",
             outcome="passed", message=None)]
    diff = matrix.changes(good, bad)
    dist = good["tests"][0]["id"]
    assert diff == {"regressions": [dist], "fixed": [], "new": ["test_new.py::test_new"],
                    "gone": [gone]}
    assert matrix.changes(bad, good)["fixed"] == [dist]
    page = matrix.render_html([bad], baselines=[good])
    assert page.index('id="changes"') < page.index('class="matrix"')
    assert f'class="change-regressions">regression <code>{dist}</code>' in page
    assert "1 regressions, 0 fixed, 1 new, 1 gone" in page
    md = matrix.render_markdown([bad], baselines=[good])
    assert md.startswith("**OVN 23.03.1 / OVS 3.1.0 / netdev / netns** against the baseline "
                         f"of 2026-01-01T00:00:00Z: 1 regressions, 0 fixed, 1 new, 1 gone\n"
                         f"- regression: `{dist}`")
    paths = {}
    for name, data in (("today", bad), ("yesterday", good)):
        paths[name] = tmp_path / f"{name}.json"
        paths[name].write_text(json.dumps(data))
    exe = Path(sys.executable).parent / "ovnlb-report"
    result = subprocess.run([str(exe), str(paths["today"]), "--baseline", str(paths["yesterday"]),
                             "--out", str(tmp_path / "out")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert f"1 regression against the baseline: {dist}" in result.stdout
    assert 'id="changes"' in (tmp_path / "out/matrix.html").read_text()


def upgraded(source, target, procedure, walk_passed=True):
    """An upgrade run's report: the suite on the upgraded labs, and the walk."""
    data = synthetic(target, "3.5.0")
    step = {"step": "controllers", "what": "", "passed": walk_passed,
            "failures": [] if walk_passed else ["router ipv4: long-lived connection "
                                                "router4-tcp stalled 3.1 s (bound 1 s)"],
            "seconds": 4.0, "held": {"flows": 12, "broken": 0, "moved": 0, "requests": 240,
                                     "answered": 240, "longest_stall": 0.3 if walk_passed else 3.1},
            "new": {"started": 280, "served": 280, "fraction": 1.0, "longest_gap": 0.2},
            "bound": {"stall": 1.0, "gap": 1.5, "new_may_fail": False, "why": ""}}
    walk = {"kind": "upgrade", "from": source, "to": target, "from_ovs": "3.1.0",
            "to_ovs": "3.5.0", "from_root": None, "to_root": "/srv/new",
            "procedure": procedure, "steps": ["controllers"], "seconds": 20.0,
            "passed": walk_passed, "steps_judged": [step]}
    data["tests"].append({**data["tests"][1], "id": "test_upgrade.py::test_upgrade_keeps_"
                          "load_balanced_traffic", "measurements": [walk]})
    report.validate(data)
    return data


def test_upgrade_runs_are_rows_of_their_own_section():
    reports = [synthetic("23.03.1", "3.1.0"), upgraded("23.03.1", "25.03.0", "fail-safe"),
               upgraded("25.03.0", "26.03.1", "rolling", walk_passed=False)]
    page = matrix.render_html(reports)
    assert page.count('class="column"') == 2  # one column header + its section: steady only
    assert 'id="upgrades"' in page
    assert "23.03.1 → 25.03.0" in page and "fail-safe" in page
    assert "stalled 3.1 s" in page  # a failed walk says why
    table = matrix.render_markdown(reports)
    assert "| 25.03.0 → 26.03.1 | 3.1.0 → 3.5.0 | rolling | **failed**: controllers: FAILED" \
        in table
    assert "**Upgrades**" not in matrix.render_markdown(reports[:1])
