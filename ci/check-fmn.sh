#!/usr/bin/env bash
# The fake-multinode backend against real containers (the project's
# stand-in cluster, ci/fmn-standin.sh), in both modes:
#   attach    the stand-in is started first, with a clustered (raft)
#             central; the conformance suite (-n 2) and the backend's
#             self-tests (a leadership change mid-run among them) run against
#             it; it is stopped after;
#   spin-up   from a host with no OVS running: pytest prepares the host
#             (--ovn-fmn-prepare-host), starts the cluster itself from ci/fmn
#             (its ovn_cluster.sh), and stops it and undoes the host's
#             preparation at the end; nothing of it may be left.
# Prints its times; OVNLB_TIMES_DIR=DIR also appends them to DIR/fmn-times.txt.
# Everything started here is stopped on any exit.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTEST=".venv/bin/python -m pytest -p no:cacheprovider"
export GW_COUNT=1 CHASSIS_COUNT=2 OVN_DP_TYPE=netdev

trap 'bash ci/fmn-standin.sh stop >/dev/null 2>&1 || true' EXIT
now() { date +%s.%N; }
took() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.1f", b-a}'; }

t=$(now); bash ci/fmn-standin.sh build; build=$(took "$t")

t=$(now); OVN_DB_CLUSTER=yes bash ci/fmn-standin.sh start; start=$(took "$t")
export CONTAINERS_CONF=/run/ovnlb-fmn-host/containers.conf
t=$(now); $PYTEST conformance --ovn-backend=fake-multinode -n 2; attach=$(took "$t")
OVNLB_FMN_REQUIRED=raft $PYTEST tests/test_fakemultinode.py
t=$(now); OVN_DB_CLUSTER=yes bash ci/fmn-standin.sh stop; stop=$(took "$t")
unset CONTAINERS_CONF  # stop removed it

# Spin-up from a host with no OVS running: the run prepares the host
# itself (--ovn-fmn-prepare-host) and puts it back.  Only podman's settings
# for this host come from the stand-in.
conf=$(mktemp /tmp/ovnlb-containers.XXXXXX.conf)
trap 'rm -f "$conf"; bash ci/fmn-standin.sh stop >/dev/null 2>&1 || true' EXIT
bash ci/fmn-standin.sh conf "$conf"
export CONTAINERS_CONF=$conf
ovs_running() { ovs-vsctl --timeout=2 show >/dev/null 2>&1; }
bridges() { ovs-vsctl --timeout=2 list-br 2>/dev/null | grep -E '^br-ovn(-ext)?$' || true; }
if ovs_running; then
    echo "check-fmn: this host runs an OVS of its own: the spin-up uses it" >&2
    had_ovs=1
fi
bridges_before=$(bridges)
veths() { ip -o link show type veth | awk -F'[ :@]+' '{print $2}' | grep -E '^[0-9a-f]{13}_l$' | sort; }
before=$(veths || true)
t=$(now)
$PYTEST conformance --ovn-backend=fake-multinode --ovn-fmn-dir=ci/fmn --ovn-fmn-prepare-host -n 2
spinup=$(took "$t")
left=$(podman ps -a --format '{{.Names}}')
if grep -q '^ovn-' <<<"$left"; then
    echo "check-fmn: the cluster pytest started is still there: $left" >&2; exit 1
fi
new=$(comm -13 <(echo "$before") <(veths || true))
if [ -n "$new" ]; then
    echo "check-fmn: the cluster pytest started left host veths:" $new >&2; exit 1
fi
if [ -z "${had_ovs:-}" ] && ovs_running; then
    echo "check-fmn: the OVS the run started for the cluster still runs" >&2; exit 1
fi
if [ "$(bridges)" != "$bridges_before" ]; then
    echo "check-fmn: the run left bridges: $(bridges | xargs)" >&2; exit 1
fi
unset CONTAINERS_CONF

# the netns figure beside them: ci/check.sh has just measured it
netns=${OVNLB_NETNS_SECONDS:-}
if [ -z "$netns" ]; then
    t=$(now); $PYTEST conformance --ovn-topology=lab -n 2 -q >/dev/null; netns=$(took "$t")
fi
printf '%s  image build (skipped if built) %ss, stand-in start %ss, stop %ss; suite -n 2: attach %ss, spin-up (start+suite+stop) %ss, netns %ss\n' \
    "$(date -u +%F)" "$build" "$start" "$stop" "$attach" "$spinup" "$netns" |
    if [ -n "${OVNLB_TIMES_DIR:-}" ]; then tee -a "$OVNLB_TIMES_DIR/fmn-times.txt"; else cat; fi
