"""`ovnlb-conformance`: the OVN load balancer conformance suite from an
installed package, without a clone, against the OVN on PATH, an OVN
installed under a prefix, or one in a root filesystem.  JUnit
(junit.xml), the run report (report.json) and the evidence of failures
(ovnlb-evidence/) go to one folder.

    ovnlb-conformance [--prefix DIR | --ovn-root DIR] [--artifacts DIR]
                      [--exempt FILE] [-- PYTEST ARGS]

Everything after `--` goes to pytest as it is, e.g. `-- -n 2` (two
workers) or `-- -k dual_stack`.  The OVN under test is exactly the one
named: a prefix whose bin/ and sbin/ do not hold every OVN program is
refused, and the output names the path of every program used.

Exit status: pytest's (0: every test passed or was skipped or exempted;
1: a test failed); 2 for bad input; 77, with one line, when the suite
cannot run here (not root, no OVN/OVS programs), as autopkgtest expects of
a skippable test; 128+N when stopped by signal N (SIGINT, SIGTERM), after
the lab is removed and the artifacts so far are written."""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import signal
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest_ovnlb
from pytest_ovnlb.engine import install
from pytest_ovnlb.errors import LabError

SKIP = 77
SHARE = Path("share") / "pytest-ovnlb" / "conformance"
PR_SET_PDEATHSIG = 1


def conformance_dir() -> Path | None:
    """The suite's files: beside the package in a clone (or an editable
    install), else where the package installed them (<prefix>/share of a
    virtualenv, the system, or the user's `pip install --user`)."""
    here = Path(pytest_ovnlb.__file__).resolve().parent
    candidates = [here.parent / "conformance"]
    prefixes = [sysconfig.get_path("data"), sysconfig.get_path("data", f"{os.name}_user"),
                sys.prefix, "/usr", "/usr/local"]
    candidates += [Path(prefix) / SHARE for prefix in prefixes]
    return next((c for c in candidates if (c / "conftest.py").is_file()), None)


def check_prefix(prefix: Path, path: str) -> str | None:
    """Why the OVN found on `path` is not the one under `prefix`, if so: every
    OVN program must come from it (OVS's may come from elsewhere: OVN's
    `make install` does not install them; the output names where)."""
    dirs = [prefix / "sbin", prefix / "bin"]
    ours = [p for p in install.PROGRAMS if p.startswith("ovn-")]
    inside = {p for p in ours if any(os.access(d / p, os.X_OK) for d in dirs)}
    if not inside:
        return (f"prefix {prefix} holds no OVN programs (looked for {', '.join(ours)} in "
                f"{dirs[0]} and {dirs[1]})")
    if len(inside) < len(ours):
        missing = [p for p in ours if p not in inside]
        try:
            found = install.find(path=path).programs
            where = ", ".join(f"{p} from {found[p]}" for p in missing)
        except LabError:
            where = ", ".join(missing)
        return (f"prefix {prefix} lacks {', '.join(missing)}: the run would test {where} "
                "instead; install the whole build under the prefix")
    return None


def _child() -> None:
    """In pytest's process before it starts: SIGINT when this process dies,
    and SIGINT's default (a background job inherits it ignored, and Python
    only turns a SIGINT it does not ignore into KeyboardInterrupt)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGINT, 0, 0, 0)


def run(cmd: list[str], cwd: Path, env: dict) -> tuple[int, int | None]:
    """Run pytest in a process group of its own; SIGINT or SIGTERM here is
    passed on to the whole group as SIGINT (what Ctrl-C in a terminal does:
    every xdist worker removes its lab, the JUnit file and the report are
    written), and the run is waited for.  If this process is killed, pytest
    gets SIGINT all the same.  Returns pytest's status and the signal that
    stopped the run, if one did."""
    got: list[int] = []
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, start_new_session=True,
                            preexec_fn=_child)

    def forward(signum, frame):
        got.append(signum)
        try:
            os.killpg(proc.pid, signal.SIGINT)
        except ProcessLookupError:
            pass

    saved = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        while True:
            try:
                return proc.wait(), (got[0] if got else None)
            except InterruptedError:  # pragma: no cover (PEP 475 retries)
                continue
    finally:
        for s, handler in saved.items():
            signal.signal(s, handler)


def summary(artifacts: Path) -> list[str]:
    """What to paste into a bug report: versions and where the programs
    came from, the result per feature, the artifacts."""
    try:
        data = json.loads((artifacts / "report.json").read_text())
    except (OSError, ValueError):
        return [f"artifacts: {artifacts} (no report written)"]
    impl = data["implementation"]
    lines = [f"OVN {impl['ovn']}, OVS {impl['ovs']}, {impl['datapath']} datapath, "
             f"backend {impl['backend']}" + (f", root {impl['root']}" if impl["root"] else "")]
    lines += [f"  {name}: {path}" for name, path in sorted(impl.get("programs", {}).items())]
    stats = data["statistics"]
    lines.append(f"result: {data['result']} ({', '.join(f'{v} {k.lower()}' for k, v in stats.items())})"
                 + (", interrupted: only the tests that ran" if data.get("interrupted") else ""))
    for profile in data["profiles"]:
        for feature in profile["features"]:
            counts = ", ".join(f"{v} {k.lower()}" for k, v in feature["statistics"].items() if v)
            lines.append(f"  {profile['name']:8} {feature['name']:32} {feature['result']}"
                         + (f" ({counts})" if counts else ""))
    lines.append(f"artifacts: {artifacts}/junit.xml, {artifacts}/report.json"
                 + (f", {artifacts}/ovnlb-evidence/" if (artifacts / "ovnlb-evidence").exists()
                    else ""))
    return lines


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    own = argv[:argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser(prog="ovnlb-conformance", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"%(prog)s {pytest_ovnlb.version()}")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--prefix", type=Path,
                       help="install prefix of the OVN under test (its sbin and bin go "
                            "first on PATH; every OVN program must be there)")
    where.add_argument("--ovn-root", type=Path, help="root filesystem holding the OVN under test")
    parser.add_argument("--artifacts", type=Path, default=Path("ovnlb-artifacts"),
                        help="folder for junit.xml, report.json and ovnlb-evidence/ "
                             "(default ./ovnlb-artifacts)")
    parser.add_argument("--exempt", type=Path, help="exemption file: one test id and a reason "
                        "a line (see docs/reports.md)")
    args = parser.parse_args(own)

    def fail(message: str) -> int:
        print(f"ovnlb-conformance: {message}", file=sys.stderr)
        return 2

    env = dict(os.environ)
    if args.prefix is not None:
        if not args.prefix.is_dir():
            return fail(f"prefix {args.prefix} is not a directory")
        prefix = args.prefix.resolve()
        env["PATH"] = os.pathsep.join([str(prefix / "sbin"), str(prefix / "bin"),
                                       env.get("PATH", "")])
        problem = check_prefix(prefix, env["PATH"])
        if problem:
            return fail(problem)
    suite = conformance_dir()
    if suite is None:
        return fail("the conformance suite's files are not installed "
                    f"(looked beside the package and under <prefix>/{SHARE})")
    if args.exempt is not None and not args.exempt.is_file():
        return fail(f"exemption file {args.exempt} not found")

    artifacts = args.artifacts.resolve()
    artifacts.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rfEs", str(suite),
           f"--rootdir={suite}",  # node ids "test_x.py::test_y", clone or not
           f"--junitxml={artifacts / 'junit.xml'}", f"--ovnlb-report={artifacts / 'report.json'}",
           f"--ovnlb-skip-exit-code={SKIP}",
           *([f"--ovn-root={args.ovn_root.resolve()}"] if args.ovn_root else []),
           *([f"--ovnlb-exempt={args.exempt.resolve()}"] if args.exempt else []),
           *extra]
    env.setdefault("PYTHONDONTWRITEBYTECODE", "1")  # the suite may sit in a read-only /usr
    # evidence of failures lands in the folder pytest starts from: the artifacts
    status, stopped = run(cmd, artifacts, env)
    if status == SKIP:
        return status
    print("\n".join(["", "ovnlb-conformance:", *summary(artifacts)]), flush=True)
    if stopped is not None:
        name = signal.Signals(stopped).name
        print(f"ovnlb-conformance: interrupted by {name}; the lab is removed and the results "
              f"so far are in {artifacts}", file=sys.stderr, flush=True)
        return 128 + stopped
    return status


if __name__ == "__main__":
    sys.exit(main())
