#!/usr/bin/env bash
# `make check`, phase by phase, each timed:
#   setup        packages and the virtualenv (ci/setup.sh)
#   own tests    the project's own tests (tests/), two xdist workers taking
#                a file each (the host-state tests, which take turns, all
#                on one of them instead of both waiting for each other)
#   conformance  the suite on the embedded lab, two xdist workers
#   upgrade      an upgrade run of the suite from this machine's OVN to
#                another Debian release's, and the upgrade self-tests
#                (ci/check-upgrade.sh)
#   fmn          the suite and the backend's tests on the stand-in cluster
#                (ci/check-fmn.sh: image build, attach, spin-up)
# Extra arguments go to both pytest runs.  Prints one line of times at the
# end; with OVNLB_TIMES_DIR=DIR it also appends it to DIR/check-times.txt
# (and check-fmn.sh its own line to DIR/fmn-times.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTEST=".venv/bin/python -m pytest -p no:cacheprovider"

now() { date +%s.%N; }
took() { awk -v a="$1" -v b="$(now)" 'BEGIN{printf "%.0f", b-a}'; }
times=""
phase() {  # phase NAME CMD...: run, then note its time (in $seconds too)
    local name=$1 t
    shift
    t=$(now)
    "$@"
    seconds=$(took "$t")
    times="$times, $name $seconds s"
}

start=$(now)
phase setup bash ci/setup.sh
phase "own tests" $PYTEST tests -n 2 --dist loadfile --durations=15 "$@"
phase conformance $PYTEST conformance --ovn-topology=lab -n 2 "$@"
export OVNLB_NETNS_SECONDS=$seconds
phase upgrade bash ci/check-upgrade.sh "$@"
phase fmn bash ci/check-fmn.sh
line="$(date -u +%F)  total $(took "$start") s${times} (OVN $(ovn-northd --version | awk 'NR==1{print $NF}'), $(nproc) cores)"
echo "check: $line"
if [ -n "${OVNLB_TIMES_DIR:-}" ]; then
    echo "$line" >> "$OVNLB_TIMES_DIR/check-times.txt"
fi
