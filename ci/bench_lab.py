#!/usr/bin/env python3
"""Time `ovnlb-lab up` and `ovnlb-lab down` of the embedded lab.

Runs up then down N times (default 5) under a lab name of its own, measures
the wall clock of each CLI process, prints median/min/max and exits non-zero
when the median up exceeds --max-up (3 s) or the median down --max-down (1 s).
Needs root and the OVN/OVS programs.
"""

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def cli_command() -> list[str]:
    beside = Path(sys.executable).parent / "ovnlb-lab"
    if beside.exists():
        return [str(beside)]
    found = shutil.which("ovnlb-lab")
    return [found] if found else [sys.executable, "-m", "pytest_ovnlb.cli"]


def timed(cmd: list[str], env: dict) -> tuple[float, subprocess.CompletedProcess]:
    started = time.monotonic()
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
    return time.monotonic() - started, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topology", default="lab", help="topology to build (default lab)")
    parser.add_argument("-n", "--runs", type=int, default=5, help="up/down cycles (default 5)")
    parser.add_argument("--max-up", type=float, default=3.0,
                        help="fail when the median up takes longer (s, default 3)")
    parser.add_argument("--max-down", type=float, default=1.0,
                        help="fail when the median down takes longer (s, default 1)")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench_lab: needs root", file=sys.stderr)
        return 2

    cli = cli_command()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    name = f"bench{os.getpid()}"
    ups, downs, reported = [], [], []
    try:
        for i in range(args.runs):
            seconds, result = timed(cli + ["up", "--name", name, "--topology", args.topology],
                                    env)
            if result.returncode != 0:
                print(f"bench_lab: up #{i + 1} failed: {result.stderr.strip()}", file=sys.stderr)
                return 2
            ups.append(seconds)
            match = re.search(r"is up in ([\d.]+) s", result.stdout)
            if match:
                reported.append(float(match.group(1)))
            seconds, result = timed(cli + ["down", "--name", name], env)
            if result.returncode != 0:
                print(f"bench_lab: down #{i + 1} failed: {result.stderr.strip()}",
                      file=sys.stderr)
                return 2
            downs.append(seconds)
    finally:  # a failed or interrupted run leaves no lab behind
        if subprocess.run(cli + ["status", "--name", name], capture_output=True,
                          env=env).returncode == 0:
            subprocess.run(cli + ["down", "--name", name], capture_output=True, env=env)

    rows = [(f"up ({args.topology})", ups, args.max_up), ("down", downs, args.max_down)]
    if reported:
        rows.insert(1, ("  up as reported by the CLI", reported, None))
    print(f"{args.runs} runs, wall clock of `ovnlb-lab` (s)")
    print(f"{'':28} {'median':>7} {'min':>7} {'max':>7}  limit")
    failed = False
    for label, values, limit in rows:
        median = statistics.median(values)
        verdict = ""
        if limit is not None:
            verdict = f"{limit:g} " + ("ok" if median <= limit else "EXCEEDED")
            failed |= median > limit
        print(f"{label:28} {median:7.2f} {min(values):7.2f} {max(values):7.2f}  {verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("bench_lab: interrupted", file=sys.stderr)
        sys.exit(130)
