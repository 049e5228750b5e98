"""ci/nightly: runs per OVN source into one artifacts folder, then the
matrix page; a source that cannot run is listed as skipped; bad input is
one line.  And the example workflow calls it and uploads that folder."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_ovnlb.reporting import report

ROOT = Path(__file__).resolve().parent.parent
NIGHTLY = ROOT / "ci" / "nightly"


def nightly(*args, cwd):
    return subprocess.run([sys.executable, str(NIGHTLY), *args], capture_output=True,
                          text=True, timeout=900, check=False, cwd=cwd)


@pytest.mark.lab
def test_nightly_runs_each_source_and_builds_the_page(tmp_path):
    empty = tmp_path / "empty-root"
    empty.mkdir()
    result = nightly("--out", "out", "--baseline", "base", "host", f"root:{empty}", "--",
                     "-m", "ipv4", "-k", "keepalive", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    out = tmp_path / "out"
    assert "== [1/2] host (OVN on PATH)" in result.stdout  # progress as it runs
    assert "== [2/2]" in result.stdout and "3 passed" in result.stdout  # router, switch, dgp
    data = report.load(out / "1-host" / "report.json")
    assert data["statistics"]["Passed"] == 3
    assert (out / "1-host" / "junit.xml").is_file() and (out / "1-host" / "log.txt").is_file()
    assert not (out / "2-root-empty-root" / "report.json").exists()
    assert "cannot run here" in (out / "2-root-empty-root" / "log.txt").read_text()
    summary = (out / "summary.txt").read_text().splitlines()
    assert summary[0].startswith("host (OVN on PATH): OVN ") and ": success (3 passed" in summary[0]
    assert summary[1].startswith(f"root {empty}: skipped, cannot run here")
    page = (out / "matrix.html").read_text()
    assert page.count('<tr class="feature"') > 4 and "<script" not in page
    assert 'id="changes"' not in page  # no baseline yet
    assert (out / "matrix.md").read_text().startswith("| feature | OVN ")
    # the run is kept as the next one's baseline, which the next page compares with
    assert report.load(tmp_path / "base" / "1-host.json")["date"] == data["date"]
    again = nightly("--out", "out2", "--baseline", "base", "host", "--", "-m", "ipv4",
                    "-k", "keepalive", cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    page = (tmp_path / "out2" / "matrix.html").read_text()
    assert "0 regressions, 0 fixed, 0 new, 0 gone" in page
    assert f"(baseline run {data['date']})" in page
    assert report.load(tmp_path / "base" / "1-host.json")["date"] != data["date"]


@pytest.mark.parametrize("args, message", [
    ([], "usage: ci/nightly"),
    (["somewhere"], "unknown source 'somewhere'"),
    (["root:/nonexistent/x"], "root:/nonexistent/x: /nonexistent/x is not a directory"),
    (["upgrade:host:/nonexistent/x"], "upgrade:host:/nonexistent/x: /nonexistent/x is not a "
                                      "directory"),
    (["upgrade:host"], "unknown source 'upgrade:host'"),
])
def test_bad_input_is_one_line(tmp_path, args, message):
    result = nightly(*args, cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and message in result.stderr


def test_workflow_calls_nightly_and_uploads_its_folder():
    text = (ROOT / "ci" / "github-nightly.yml").read_text()
    assert re.search(r"^on:\n  schedule:\n    - cron: \"[0-9* ]+\"$", text, re.M)
    run = re.search(r"run: sudo \.venv/bin/python ci/nightly --out (\S+) (.*)", text)
    assert run, "the workflow does not call ci/nightly"
    assert "host" in run.group(2).split()
    assert re.search(rf"uses: actions/upload-artifact@v\d+\n\s+if: always\(\)\n\s+with:\n"
                     rf"\s+name: \S+\n\s+path: {re.escape(run.group(1))}/?$", text, re.M)
    # every root the suite runs against is made by an earlier step
    made = re.search(r"for s in ([a-z ]+); do sudo bash ci/make-root\.sh \"\$s\" "
                     r"\"\$PWD/\.roots/\$s\"", text)
    assert made and re.findall(r"root:(\S+)", run.group(2)) == [
        f".roots/{s}" for s in made.group(1).split()]
