#!/usr/bin/env bash
# Idempotent set-up on a Debian/Ubuntu machine, as root: OVN/OVS packages
# (their services are not started: the lab runs its own daemons), what the
# project's own tests use, and a virtualenv with pytest-ovnlb installed.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES="ovn-central ovn-host openvswitch-switch iproute2 ethtool"
# What the project's own tests use besides: a firewall to count packets
# (tests/test_hermetic.py), gdb for crashed daemons' backtraces, stress-ng
# for a load beside runs sharing a cluster (tests/test_fakemultinode.py).
PACKAGES="$PACKAGES iptables gdb stress-ng"
missing=$(for p in $PACKAGES; do dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null \
          | grep -q "install ok installed" || echo "$p"; done)
if ! python3 -m venv --help >/dev/null 2>&1; then missing="$missing python3-venv"; fi
if [ -n "$missing" ]; then
    [ "$(id -u)" -eq 0 ] || { echo "setup: installing $missing needs root" >&2; exit 1; }
    # Keep the packaged services from starting; ours run inside the lab.
    added_policy=
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        added_policy=1
    fi
    trap '[ -n "$added_policy" ] && rm -f /usr/sbin/policy-rc.d' EXIT
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
stamp=.venv/.installed
if [ ! -e "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    .venv/bin/pip install -q --disable-pip-version-check -e '.[test]'
    touch "$stamp"
fi
