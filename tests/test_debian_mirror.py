"""ci/debian-mirror.sh: roots and stand-in images build from the archive
this machine's apt uses (deb822 or one-line sources), $MIRROR overriding."""

import os
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "ci" / "debian-mirror.sh"

DEB822 = """\
Types: deb-src
URIs: http://src.invalid/debian
Suites: bookworm
Components: main

Types: deb
URIs: http://off.invalid/debian
Suites: bookworm
Components: main
Enabled: no

Types: deb
# a comment inside a stanza
URIs: http://sec.invalid/debian-security
Suites: bookworm-security
Components: main

Types: deb
URIs: http://main.invalid/debian/ http://second.invalid/debian
Suites: bookworm bookworm-updates
Components: main
"""


def run(apt: Path, *args, **env):
    clean = {k: v for k, v in os.environ.items() if k not in ("MIRROR", "SECURITY_MIRROR")}
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True,
                          env={**clean, "APT_SOURCES_DIR": str(apt),
                               "OS_RELEASE": str(apt / "os-release"), **env}, check=False)


@pytest.fixture
def apt(tmp_path):
    """An apt configuration of a Debian host (its os-release beside it)."""
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "os-release").write_text('PRETTY_NAME="Debian GNU/Linux 12"\nID=debian\n')
    return tmp_path


UBUNTU = """\
Types: deb
URIs: http://archive.ubuntu.invalid/ubuntu/
Suites: noble noble-updates noble-backports
Components: main universe

Types: deb
URIs: http://security.ubuntu.invalid/ubuntu/
Suites: noble-security
Components: main universe
"""


def test_another_distribution_takes_debootstraps_debian_default(apt, tmp_path):
    """On an Ubuntu host (a hosted CI runner) apt's archive is Ubuntu's:
    Debian roots come from debootstrap's default Debian archive instead."""
    (apt / "os-release").write_text('NAME="Ubuntu"\nID=ubuntu\nID_LIKE=debian\n')
    (apt / "sources.list.d" / "ubuntu.sources").write_text(UBUNTU)
    program = tmp_path / "debootstrap"
    program.write_text('#!/bin/sh\nDEF_MIRROR="http://debian-default.invalid/debian"\n')
    assert run(apt, DEBOOTSTRAP=str(program)).stdout == "http://debian-default.invalid/debian\n"
    assert run(apt, "security", DEBOOTSTRAP=str(program)).stdout == \
        "http://debian-default.invalid/debian-security\n"
    assert run(apt, DEBOOTSTRAP=str(program), MIRROR="http://mine.invalid/d").stdout == \
        "http://mine.invalid/d\n"
    result = run(apt, DEBOOTSTRAP=str(tmp_path / "none"))
    assert result.returncode == 1 and result.stderr == (
        "debian-mirror: this is not Debian (ubuntu) and debootstrap names no default Debian "
        "archive; set MIRROR\n")


def test_deb822_sources(apt):
    (apt / "sources.list.d" / "debian.sources").write_text(DEB822)
    assert run(apt).stdout == "http://main.invalid/debian\n"
    assert run(apt, "security").stdout == "http://sec.invalid/debian-security\n"


def test_one_line_sources(apt):
    (apt / "sources.list").write_text(
        "# deb http://commented.invalid/debian bookworm main\n"
        "deb-src http://src.invalid/debian bookworm main\n"
        "deb http://sec.invalid/s bookworm-security main\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://proxy.invalid:3142/debian bookworm main\n")
    assert run(apt).stdout == "http://proxy.invalid:3142/debian\n"
    assert run(apt, "security").stdout == "http://sec.invalid/s\n"


def test_mirror_overrides(apt):
    (apt / "sources.list.d" / "debian.sources").write_text(DEB822)
    assert run(apt, MIRROR="http://mine.invalid/d").stdout == "http://mine.invalid/d\n"
    assert run(apt, "security", SECURITY_MIRROR="http://s.invalid").stdout == "http://s.invalid\n"


def test_no_archive_is_one_line(apt):
    result = run(apt)
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == (f"debian-mirror: no main Debian archive in {apt}'s apt sources; "
                             "set MIRROR\n")
    (apt / "sources.list").write_text("deb http://main.invalid/debian bookworm main\n")
    result = run(apt, "security")
    assert result.returncode == 1 and result.stderr.endswith("set SECURITY_MIRROR\n")
    assert run(apt, "nonsense").returncode == 2


def test_this_machine_has_one():
    result = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, check=False)
    assert result.returncode == 0 and result.stdout.startswith(("http", "file:", "ftp")), result
