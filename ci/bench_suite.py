#!/usr/bin/env python3
"""Benchmark the product as a user runs it, on this machine:

1. new TCP connections per second through a switch load balancer (and a
   gateway router one) in the reference lab, from vm3 to two backends;
2. wall-clock time of the whole conformance suite (`pytest conformance`).

Targets: >= 1500 connections/s through the switch LB, suite <= 120 s.
Exits non-zero when a target is missed.  Needs root.
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pytest_ovnlb.lab import Lab  # noqa: E402
from pytest_ovnlb.traffic.harness import Hub, LoadBalancers  # noqa: E402

CONN_TARGET = 1500.0
SUITE_TARGET = 120.0


def connection_rates(count: int, rounds: int, concurrency: int) -> dict[str, list[float]]:
    lab = Lab.up(f"bench{os.getpid()}", "lab", owner=os.getpid())
    hub = Hub(lab)
    rates = {}
    try:
        for placement in ("switch", "router"):
            lbs = LoadBalancers(lab, hub, placement)
            lb = lbs(hub.servers(2))
            hub.connect("vm3", lb.vip, lb.port, 200)  # start the agents' servers
            rates[placement] = []
            for _ in range(rounds):
                lab.flush_conntrack()
                started = time.monotonic()
                results = hub.connect("vm3", lb.vip, lb.port, count, concurrency=concurrency)
                elapsed = time.monotonic() - started
                failed = sum(not r.ok for r in results)
                if failed:
                    raise SystemExit(f"{placement}: {failed} of {count} connections failed")
                rates[placement].append(count / elapsed)
            lbs.remove_all()
    finally:
        hub.close()
        lab.down()
    return rates


def suite_seconds(extra: list[str]) -> float:
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                    "conformance", "--ovn-topology=lab", *extra], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=5000, help="connections per round")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--skip-suite", action="store_true")
    args = parser.parse_args()

    ok = True
    for placement, values in connection_rates(args.count, args.rounds, args.concurrency).items():
        median = statistics.median(values)
        print(f"new TCP connections/s through a {placement} LB (vm3 -> 2 backends, "
              f"{args.count} per round, concurrency {args.concurrency}): "
              f"median {median:.0f}, min {min(values):.0f}, max {max(values):.0f}")
        if placement == "switch" and median < CONN_TARGET:
            print(f"  below the target of {CONN_TARGET:.0f}/s")
            ok = False
    if not args.skip_suite:
        for label, extra in (("serial", []), ("-n 2", ["-n", "2"])):
            seconds = suite_seconds(extra)
            print(f"conformance suite ({label}): {seconds:.1f} s (target <= {SUITE_TARGET:.0f} s)")
            ok = ok and seconds <= SUITE_TARGET
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
