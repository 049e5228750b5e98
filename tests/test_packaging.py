"""For packagers: the suite from an installed package (ovnlb-conformance),
the example autopkgtest (ci/debian/tests) as root and as another user, and
the exit status 77 where the suite cannot run."""

import json
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from pytest_ovnlb.reporting import report

ROOT = Path(__file__).resolve().parent.parent
AUTOPKGTEST = ROOT / "ci" / "debian" / "tests"
BIN = Path(sys.executable).parent
KEEPALIVE = "test_stickiness.py::test_keepalive_requests_all_reach_one_backend"


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
    out = tmp_path_factory.mktemp("wheel")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                            "--disable-pip-version-check", str(ROOT), "-w", str(out)],
                           capture_output=True, text=True, timeout=600, check=False)
    found = list(out.glob("pytest_ovnlb-*.whl"))
    if built.returncode != 0 or not found:
        pytest.skip("cannot build a wheel here (pip needs setuptools from the package "
                    f"index): {built.stderr.strip().splitlines()[-1:]}")
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


@pytest.mark.lab
def test_runner_tests_the_ovn_under_a_prefix(tmp_path):
    """--prefix puts the build's programs first: the lab's ovn-northd is the
    prefix's (a wrapper that notes each start, then runs this machine's)."""
    real = shutil.which("ovn-northd")
    prefix = tmp_path / "prefix"
    (prefix / "bin").mkdir(parents=True)
    log = tmp_path / "starts.log"
    wrapper = prefix / "bin" / "ovn-northd"
    wrapper.write_text(f'#!/bin/sh\necho "$*" >> {log}\nexec {real} "$@"\n')
    wrapper.chmod(0o755)
    result = subprocess.run([str(BIN / "ovnlb-conformance"), "--prefix", str(prefix),
                             "--artifacts", str(tmp_path / "out"), "--", "-m", "ipv4",
                             "-k", "keepalive"],
                            capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    starts = log.read_text().splitlines()
    assert "--version" in starts and any("--pidfile" in s or "--ovnnb-db" in s for s in starts), starts
    assert report.load(tmp_path / "out/report.json")["statistics"]["Passed"] == 3
