#!/usr/bin/env bash
# Runs side by side on one cluster, ROUNDS times in a row (default 10): the
# stand-in cluster (clustered central) is started, then each round is
# tests/test_fakemultinode.py's side-by-side test (two runs at once, one
# with two xdist workers, the suite's distribution checks among them, beside
# stress-ng keeping every CPU half busy).  Stops at the first failing round.
# Appends a line of figures to ci/side-by-side.txt; everything it started is
# stopped on any exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-10}
PYTEST=".venv/bin/python -m pytest -p no:cacheprovider"
export GW_COUNT=1 CHASSIS_COUNT=2 OVN_DP_TYPE=netdev OVN_DB_CLUSTER=yes

trap 'bash ci/fmn-standin.sh stop >/dev/null 2>&1 || true' EXIT
bash ci/fmn-standin.sh build
bash ci/fmn-standin.sh start
export CONTAINERS_CONF=/run/ovnlb-fmn-host/containers.conf
passed=0 times=()
for ((i = 1; i <= ROUNDS; i++)); do
    t=$(date +%s)
    if ! OVNLB_FMN_REQUIRED=raft $PYTEST tests/test_fakemultinode.py -q -k side_by_side; then
        echo "side-by-side: round $i failed" >&2
        break
    fi
    times+=("$(( $(date +%s) - t ))")
    passed=$i
done
line="$(date -u +%F)  $passed of $ROUNDS rounds in a row passed (each: ${times[*]} s), two runs side by side plus stress-ng on a clustered stand-in, $(nproc) cores"
echo "side-by-side: $line"
echo "$line" >> ci/side-by-side.txt
[ "$passed" -eq "$ROUNDS" ]
