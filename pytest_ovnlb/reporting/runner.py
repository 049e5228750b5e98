"""`ovnlb-conformance`: the conformance suite from an installed package,
without a clone, against the OVN on PATH, under an install prefix, or in a
root filesystem; JUnit, the run report and any evidence go to one folder.

    ovnlb-conformance [--prefix DIR | --ovn-root DIR] [--artifacts DIR]
                      [--exempt FILE] [-- PYTEST ARGS]

Exits 77 with one line when the suite cannot run here (not root, no OVN/OVS
programs), as autopkgtest expects of a skippable test; otherwise with
pytest's exit status."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest_ovnlb

SKIP = 77
SHARE = Path("share") / "pytest-ovnlb" / "conformance"


def conformance_dir() -> Path | None:
    """The suite's files: beside the package in a clone (or an editable
    install), else where the package installed them (<prefix>/share)."""
    here = Path(pytest_ovnlb.__file__).resolve().parent
    candidates = [here.parent / "conformance"]
    for prefix in (sysconfig.get_path("data"), sys.prefix, "/usr", "/usr/local"):
        candidates.append(Path(prefix) / SHARE)
    return next((c for c in candidates if (c / "conftest.py").is_file()), None)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    own = argv[:argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(prog="ovnlb-conformance", description=__doc__.split("\n")[0])
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--prefix", type=Path,
                       help="install prefix of the OVN under test (its bin and sbin go first on PATH)")
    where.add_argument("--ovn-root", type=Path, help="root filesystem holding the OVN under test")
    parser.add_argument("--artifacts", type=Path, default=Path("ovnlb-artifacts"),
                        help="folder for junit.xml, report.json and evidence "
                             "(default ./ovnlb-artifacts)")
    parser.add_argument("--exempt", type=Path, help="exemption file (see --ovnlb-exempt)")
    args = parser.parse_args(own)

    env = dict(os.environ)
    if args.prefix is not None:
        if not args.prefix.is_dir():
            print(f"ovnlb-conformance: prefix {args.prefix} is not a directory", file=sys.stderr)
            return 2
        dirs = [str(args.prefix.resolve() / d) for d in ("sbin", "bin")]
        env["PATH"] = os.pathsep.join(dirs + [env.get("PATH", "")])
    suite = conformance_dir()
    if suite is None:
        print("ovnlb-conformance: the conformance suite's files are not installed "
              f"(looked beside the package and under <prefix>/{SHARE})", file=sys.stderr)
        return 2
    if args.exempt is not None and not args.exempt.is_file():
        print(f"ovnlb-conformance: exemption file {args.exempt} not found", file=sys.stderr)
        return 2

    artifacts = args.artifacts.resolve()
    artifacts.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", str(suite),
           f"--rootdir={suite}",  # node ids "test_x.py::test_y", clone or not
           f"--junitxml={artifacts / 'junit.xml'}", f"--ovnlb-report={artifacts / 'report.json'}",
           f"--ovnlb-skip-exit-code={SKIP}",
           *([f"--ovn-root={args.ovn_root.resolve()}"] if args.ovn_root else []),
           *([f"--ovnlb-exempt={args.exempt.resolve()}"] if args.exempt else []),
           *extra]
    env.setdefault("PYTHONDONTWRITEBYTECODE", "1")  # the suite may sit in a read-only /usr
    # evidence of failures lands in the folder pytest starts from: the artifacts
    return subprocess.run(cmd, cwd=artifacts, env=env, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
