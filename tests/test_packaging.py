"""For packagers: the suite from an installed package (ovnlb-conformance),
the example autopkgtest (ci/debian/tests) as root and as another user, and
the exit status 77 where the suite cannot run."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import venv
from pathlib import Path
from xml.etree import ElementTree

import pytest

from pytest_ovnlb.engine import install, procs, records
from pytest_ovnlb.reporting import report

ROOT = Path(__file__).resolve().parent.parent
AUTOPKGTEST = ROOT / "ci" / "debian" / "tests"
BIN = Path(sys.executable).parent
KEEPALIVE = "test_stickiness.py::test_keepalive_requests_all_reach_one_server"


def autopkgtest(tests_dir: Path, artifacts: Path, *user, args="-m ipv4 -k stickiness"):
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}",
           "AUTOPKGTEST_ARTIFACTS": str(artifacts), "OVNLB_CONFORMANCE_ARGS": args}
    return subprocess.run([*user, "sh", str(tests_dir / "ovnlb-conformance")], env=env,
                          capture_output=True, text=True, timeout=600, check=False)


def test_control_names_the_script():
    control = (AUTOPKGTEST / "control").read_text()
    fields = dict(line.split(": ", 1) for line in control.splitlines()
                  if line and not line.startswith("#"))
    assert fields["Tests"] == "ovnlb-conformance"
    assert {"needs-root", "skippable"} <= set(fields["Restrictions"].replace(",", " ").split())
    assert os.access(AUTOPKGTEST / fields["Tests"], os.X_OK)


@pytest.mark.lab
def test_autopkgtest_as_root_is_green_and_fills_the_artifacts(tmp_path):
    tests_dir = tmp_path / "debian" / "tests"
    shutil.copytree(AUTOPKGTEST, tests_dir)
    (tests_dir / "ovnlb-exempt").write_text(f"{KEEPALIVE}[switch-ipv4]  flaky on our builders\n")
    artifacts = tmp_path / "artifacts"
    result = autopkgtest(tests_dir, artifacts)
    assert result.returncode == 0, result.stdout + result.stderr
    data = report.load(artifacts / "report.json")
    outcomes = {t["id"]: t["outcome"] for t in data["tests"]}
    assert outcomes[f"{KEEPALIVE}[switch-ipv4]"] == "exempted"
    # two tests at three placements
    assert outcomes[f"{KEEPALIVE}[router-ipv4]"] == "passed" and len(outcomes) == 6
    assert data["exemptions"][0]["matched"] == 1
    junit = (artifacts / "junit.xml").read_text()
    assert 'name="ovnlb.ovn"' in junit and "flaky on our builders" in junit


def test_autopkgtest_as_another_user_is_skipped(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("runs the script as nobody with setpriv, which needs root")
    artifacts = tmp_path / "artifacts"
    result = autopkgtest(AUTOPKGTEST, artifacts, "setpriv", "--reuid=nobody",
                         "--regid=nogroup", "--clear-groups")
    assert result.returncode == 77, result.stdout + result.stderr
    assert result.stdout == ""
    assert result.stderr == ("ovnlb-conformance: skipped, needs root "
                             "(network namespaces, OVS daemons)\n")


def test_runner_skips_with_77_without_ovn(tmp_path):
    result = subprocess.run([str(BIN / "ovnlb-conformance"), "--artifacts", str(tmp_path / "a"),
                             "--ovn-root", str(tmp_path / "none")],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 77, result.stdout + result.stderr
    assert result.stderr == (f"ovnlb: skipped, cannot run here: OVN root {tmp_path}/none "
                             "is not a directory\n")


def test_runner_bad_input_is_one_line(tmp_path):
    for args, message in [
        (["--prefix", str(tmp_path / "none")], f"prefix {tmp_path}/none is not a directory"),
        (["--exempt", str(tmp_path / "none")], f"exemption file {tmp_path}/none not found"),
    ]:
        result = subprocess.run([str(BIN / "ovnlb-conformance"), *args], capture_output=True,
                                text=True, timeout=60, check=False, cwd=tmp_path)
        assert result.returncode == 2 and result.stderr == f"ovnlb-conformance: {message}\n"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    return _built(tmp_path_factory, "wheel", "*.whl", [
        "pip", "wheel", "-q", "--no-deps", "--disable-pip-version-check", str(ROOT), "-w"])


def _built(tmp_path_factory, kind: str, pattern: str, argv: list[str]) -> Path:
    """The package built as `kind` by `python -m ARGV OUT`; a skip, saying
    why, where it cannot be (its build needs setuptools from the index)."""
    out = tmp_path_factory.mktemp(kind)
    built = subprocess.run([sys.executable, "-m", *argv, str(out)], capture_output=True,
                           text=True, timeout=600, check=False)
    found = list(out.glob(f"pytest_ovnlb-{pattern}"))
    if built.returncode != 0 or not found:
        said = (built.stderr.strip() or built.stdout.strip()).splitlines()[-1:]
        pytest.skip(f"cannot build a {kind} here (its build needs setuptools from the "
                    f"package index): {said}")
    return found[0]


@pytest.mark.lab
def test_installed_package_runs_the_suite_without_a_clone(wheel, tmp_path):
    """Installed into a fresh environment (its dependencies borrowed from
    this one), from a folder with no clone in sight."""
    env_dir = tmp_path / "env"
    clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    venv.create(env_dir, with_pip=True)  # ensurepip: offline
    python = env_dir / "bin" / "python"
    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                          capture_output=True, text=True, check=True).stdout.strip()
    ours = subprocess.run([sys.executable, "-c", "import pytest, sys; "
                           "print(pytest.__file__.rsplit('/pytest/', 1)[0])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                    "--disable-pip-version-check", str(wheel)],
                   check=True, capture_output=True, timeout=300, env=clean)
    # after installing, or pip would take this environment's copy for it
    Path(site, "deps.pth").write_text(ours + "\n")  # plain path: no editable finder from there
    where = subprocess.run([str(python), "-c", "import pytest_ovnlb; print(pytest_ovnlb.__file__)"],
                           capture_output=True, text=True, check=True, cwd=tmp_path,
                           env=clean).stdout
    assert where.startswith(str(env_dir)), where
    assert (env_dir / "share/pytest-ovnlb/conformance/test_distribution.py").is_file()
    work = tmp_path / "elsewhere"
    work.mkdir()
    result = subprocess.run([str(env_dir / "bin" / "ovnlb-conformance"), "--artifacts", "out",
                             "--", "-m", "ipv4", "-k", "keepalive"], capture_output=True,
                            text=True, cwd=work, timeout=600, check=False, env=clean)
    assert result.returncode == 0, result.stdout + result.stderr
    data = json.loads((work / "out/report.json").read_text())
    report.validate(data)
    assert sorted(t["id"] for t in data["tests"]) == [f"{KEEPALIVE}[dgp-ipv4]",
                                                     f"{KEEPALIVE}[router-ipv4]",
                                                     f"{KEEPALIVE}[switch-ipv4]"]
    assert all(t["nodeid"] == t["id"] for t in data["tests"])
    # no clone beside the installed package: the suite came from <prefix>/share
    assert not (Path(where).parent.parent / "conformance").exists()


def _prefix_of_wrappers(prefix: Path, log: Path, programs) -> None:
    """A build installed under `prefix`: each of `programs` a wrapper that
    notes its start in `log`, then runs this machine's."""
    (prefix / "bin").mkdir(parents=True)
    for program in programs:
        wrapper = prefix / "bin" / program
        wrapper.write_text(f'#!/bin/sh\necho "{program} $*" >> {log}\n'
                           f'exec {shutil.which(program)} "$@"\n')
        wrapper.chmod(0o755)


@pytest.mark.lab
def test_runner_tests_the_ovn_under_a_prefix(tmp_path):
    """--prefix puts the build's programs first: the lab runs the prefix's
    OVN programs (OVS's come from this machine), and the output names the
    path of every program used."""
    prefix, log = tmp_path / "prefix", tmp_path / "starts.log"
    ovn = [p for p in install.PROGRAMS if p.startswith("ovn-")]
    _prefix_of_wrappers(prefix, log, ovn)
    result = subprocess.run([str(BIN / "ovnlb-conformance"), "--prefix", str(prefix),
                             "--artifacts", str(tmp_path / "out"), "--", "-m", "ipv4",
                             "-k", "keepalive"],
                            capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    starts = log.read_text().splitlines()
    assert "ovn-northd --version" in starts, starts
    assert any(s.startswith("ovn-controller ") and "--pidfile" in s for s in starts), starts
    data = report.load(tmp_path / "out/report.json")
    assert data["statistics"]["Passed"] == 3
    assert data["implementation"]["programs"]["ovn-northd"] == str(prefix / "bin/ovn-northd")
    assert f"ovn-controller {prefix}/bin/ovn-controller" in result.stdout  # the header
    assert f"  ovn-northd: {prefix}/bin/ovn-northd" in result.stdout  # the closing summary
    assert re.search(r"^result: success \(3 passed", result.stdout, re.M), result.stdout


@pytest.mark.parametrize("holds", [[], ["ovn-northd", "ovn-nbctl"]])
def test_runner_refuses_a_prefix_without_the_whole_ovn(tmp_path, holds):
    """A prefix that holds no OVN, or only part of one, would silently test
    the OVN on PATH: one line, exit 2, nothing run."""
    prefix, log = tmp_path / "prefix", tmp_path / "starts.log"
    _prefix_of_wrappers(prefix, log, holds)
    if not holds:
        (prefix / "sbin").mkdir()
    result = subprocess.run([str(BIN / "ovnlb-conformance"), "--prefix", str(prefix),
                             "--artifacts", str(tmp_path / "out")],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2 and result.stdout == "", result
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    if holds:
        assert f"prefix {prefix} lacks ovn-controller, ovn-sbctl: the run would test " \
               f"ovn-controller from {shutil.which('ovn-controller')}" in lines[0]
    else:
        assert f"prefix {prefix} holds no OVN programs" in lines[0]
    # nothing ran but version probes
    assert all(line.endswith(" --version") for line in
               (log.read_text().splitlines() if log.exists() else [])), log.read_text()
    assert not (tmp_path / "out").exists()


def test_runner_help_is_complete():
    out = subprocess.run([str(BIN / "ovnlb-conformance"), "--help"], capture_output=True,
                         text=True, check=True).stdout
    for words in ("-- PYTEST ARGS", "77", "128+N", "--prefix", "--ovn-root", "--artifacts",
                  "--exempt", "--version"):
        assert words in out, words
    version = subprocess.run([str(BIN / "ovnlb-conformance"), "--version"], capture_output=True,
                             text=True, check=True).stdout
    assert re.fullmatch(r"ovnlb-conformance \d+\.\d+\.\d+\n", version), version


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _labs_of(pid: int) -> list[str]:
    """Labs owned by a process under `pid`."""
    mine = _descendants(pid)
    return [r.name for r in records.all_records() if r.owner_pid in mine and r.state == "ready"]


def _gone(names: list[str], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = {r.name for r in records.all_records()} & set(names)
        spaces = [n for n in os.listdir(procs.NETNS_DIR) if any(f"-{x}-" in n for x in names)]
        if not left and not spaces:
            return True
        time.sleep(0.1)
    return False


@pytest.mark.lab
@pytest.mark.parametrize("how", ["SIGINT to its group", "SIGTERM", "SIGTERM to its group",
                                 "SIGKILL"])
def test_stopped_runner_leaves_no_lab_and_keeps_its_artifacts(tmp_path, how):
    """A cancelled job: Ctrl-C or `timeout -s INT` (SIGINT to the process
    group), a CI runner's SIGTERM to the job, or `timeout` (SIGTERM to the
    group), while both xdist workers run tests.  The labs are removed, the
    JUnit file and the report written, the output says the run was
    interrupted and where the results are.  SIGKILL of the runner: pytest
    gets SIGINT (it dies with its parent), so its labs go all the same."""
    out = tmp_path / "out"
    proc = subprocess.Popen([str(BIN / "ovnlb-conformance"), "--artifacts", str(out), "--",
                             "-m", "ipv4", "-n", "2"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while len(labs := _labs_of(proc.pid)) < 2:
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        time.sleep(1)  # tests under way
        signum = getattr(signal, how.split()[0])
        if how.endswith("group"):
            os.killpg(proc.pid, signum)
        else:
            os.kill(proc.pid, signum)
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert _gone(labs, 60), f"labs {labs} left behind after {how}"
    if how == "SIGKILL":
        return
    assert proc.returncode == 128 + signum, stdout + stderr
    assert f"ovnlb-conformance: interrupted by {how.split()[0]}; the lab is removed and the " \
           f"results so far are in {out}" in stderr
    data = report.load(out / "report.json")
    assert data["interrupted"] is True and data["tests"], data
    assert ElementTree.parse(out / "junit.xml").getroot().iter("testcase")
    assert "interrupted: only the tests that ran" in stdout


@pytest.fixture(scope="module")
def sdist(tmp_path_factory):
    return _built(tmp_path_factory, "sdist", "*.tar.gz", ["build", "--sdist", str(ROOT), "-o"])


def test_sdist_is_complete_and_its_own_tests_run_from_it(sdist, tmp_path):
    """What a distribution packages from: the license, the current license
    metadata, the docs, and everything the project's own tests need."""
    shutil.unpack_archive(sdist, tmp_path)
    top = next(tmp_path.iterdir())
    for path in ("LICENSE", "conftest.py", "tests/conftest.py", "conformance/conftest.py",
                 "ci/debian/tests/control", "ci/debian/tests/ovnlb-conformance",
                 "ci/fmn-standin.sh", "ci/fmn/ovn_cluster.sh", "README.md", ".ci/run"):
        assert (top / path).is_file(), path
    docs = sorted(p.name for p in (ROOT / "docs").glob("*.md"))
    assert docs and sorted(p.name for p in (top / "docs").glob("*.md")) == docs
    assert "Apache License" in (top / "LICENSE").read_text()
    meta = (top / "PKG-INFO").read_text()
    assert "License-Expression: Apache-2.0" in meta and "License-File: LICENSE" in meta, meta
    # every marker its tests use is registered there (--strict-markers)
    collected = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                                "--strict-markers", "--collect-only", "-q", "tests"],
                               cwd=top, capture_output=True, text=True, timeout=300)
    assert collected.returncode == 0, collected.stdout[-3000:] + collected.stderr
    ran = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                          "tests/test_topology.py", "tests/test_versions.py",
                          "tests/test_coverage.py", "tests/test_docs.py"],
                         cwd=top, capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stdout[-3000:]


def test_user_install_finds_the_suite(wheel, tmp_path):
    """`pip install --user`: the suite's files land under the user's base
    (~/.local/share), where ovnlb-conformance finds them."""
    base = tmp_path / "userbase"
    env = {**{k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")},
           "PYTHONUSERBASE": str(base), "PIP_USER": "1"}
    python = sys._base_executable  # the interpreter under the virtualenv
    subprocess.run([python, "-m", "pip", "install", "-q", "--user", "--no-deps", "--no-index",
                    "--disable-pip-version-check", str(wheel)],
                   check=True, capture_output=True, timeout=300, env=env)
    assert (base / "share/pytest-ovnlb/conformance/test_distribution.py").is_file()
    found = subprocess.run([python, "-c", "import pytest_ovnlb.reporting.runner as r; "
                            "print(r.__file__); print(r.conformance_dir())"],
                           capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    module, suite = found.stdout.split()
    assert module.startswith(str(base)), found  # the user's copy, not this clone
    assert suite == str(base / "share/pytest-ovnlb/conformance"), found
