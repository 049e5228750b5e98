#!/usr/bin/env python3
"""Measure new TCP connections per second through the traffic agents.

Creates two network namespaces joined by a veth pair, serves HTTP in one,
opens N fresh connections from the other, prints connections/s and removes
the namespaces again. Needs root.
"""

import argparse
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pytest_ovnlb.traffic.client import Agent  # noqa: E402


def sh(*cmd):
    subprocess.run(cmd, check=True, capture_output=True)


def make_pair(names):
    """Namespaces names[0] (192.0.2.1) and names[1] (192.0.2.2) on a veth."""
    for ns in names:
        sh("ip", "netns", "add", ns)
    sh("ip", "link", "add", "eth0", "netns", names[0], "type", "veth",
       "peer", "name", "eth0", "netns", names[1])
    for i, ns in enumerate(names, 1):
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        sh("ip", "-n", ns, "addr", "add", f"192.0.2.{i}/24", "dev", "eth0")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--count", type=int, default=3000)
    parser.add_argument("-c", "--concurrency", type=int, nargs="+",
                        default=[16, 32])
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()

    names = [f"ovnlbt-bench-{os.getpid()}-{side}" for side in "ab"]
    agents = []
    try:
        make_pair(names)
        for ns in names:
            agents.append(Agent.start(ns, ["ip", "netns", "exec", ns]))
        client, server = agents
        server.serve(args.port)
        client.fresh("192.0.2.2", args.port, 200)  # warm up
        for conc in args.concurrency:
            resp = client.call("fresh", host="192.0.2.2", port=args.port,
                               count=args.count, concurrency=conc)
            errors = sum(1 for r in resp["results"] if r["error"])
            rate = args.count / resp["elapsed"]
            print(f"concurrency {conc:3d}: {rate:7.0f} connections/s "
                  f"({args.count} in {resp['elapsed']:.2f}s, {errors} errors)")
    finally:
        for agent in agents:
            agent.close()
        for ns in names:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


if __name__ == "__main__":
    main()
