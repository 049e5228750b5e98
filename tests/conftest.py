"""Tests marked `lab` build real labs: they are skipped, with the reason,
where that is impossible (not root, no OVN/OVS)."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_ovnlb.errors import LabError
from pytest_ovnlb.lab import preflight

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "pytest_ovnlb.cli"]
# README's walk-through: the shell block after this mark
WALKTHROUGH = re.compile(r"<!-- walk-through:.*?-->\n```sh\n(.*?)```", re.S)


def pytest_configure(config):
    config.addinivalue_line("markers", "lab: builds real labs (root, OVN/OVS)")
    config.addinivalue_line("markers", "fmn: needs a running ovn-fake-multinode cluster")
    config.addinivalue_line("markers", "hermetic: changes host-wide network settings "
                            "for a while (tests/test_hermetic.py)")


def pytest_collection_modifyitems(config, items):
    try:
        preflight()
        return
    except LabError as exc:
        skip = pytest.mark.skip(reason=f"cannot build labs here: {exc}")
    for item in items:
        if item.get_closest_marker("lab"):
            item.add_marker(skip)


@pytest.fixture
def walkthrough(tmp_path):
    """Runs README's walk-through with bash (-e, pipefail) as lab `name` on
    `backend` (each `ovnlb-lab COMMAND` gets `--name`, `up` gets `--backend`
    too) and checks what it shows: it succeeds, a server behind the VIP
    answers each client and logs the client's address (the data-network
    host's own, vm3's as the router's SNAT address).  Returns the names and
    addresses `status` printed.  The output goes to a file: its servers
    outlive it when it fails midway.  Each lab is downed after the test,
    whatever happened."""
    script = WALKTHROUGH.search((ROOT / "README.md").read_text()).group(1)
    ran = []

    def run(name: str, backend: str = "netns") -> dict[str, str]:
        def named(match):
            more = f" --backend {backend}" if match[1] == "up" else ""
            return f"{shlex.join(CLI)} {match[1]} --name {name}{more}"

        ran.append(name)
        log = tmp_path / f"walkthrough-{name}.log"
        with open(log, "w") as out:
            done = subprocess.run(
                ["bash", "-euo", "pipefail", "-c",
                 re.sub(r"\.venv/bin/ovnlb-lab (\w+)", named, script)],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT,
                timeout=300)
        out = log.read_text()
        assert done.returncode == 0, out
        assert out.count("<h1>Directory listing") == 2, out
        found = dict(re.findall(r"\b([A-Z][A-Z0-9_]*)=(\S+)", out))
        for client in (found["UBUNTU1"], found["SNAT_IP"]):
            assert re.search(rf"^{re.escape(client)} - .* \"GET / ", out, re.M), out
        return found

    yield run
    for name in ran:
        subprocess.run(CLI + ["down", "--name", name], capture_output=True, timeout=120)
