#!/usr/bin/env bash
# Soak: N consecutive full conformance runs on the embedded lab, alternating
# serial and -n 2; after each, nothing of a lab may be left (namespaces,
# run directories, daemons).  Counts failures, never retries; one line per run,
# a failing run's whole output in soak-failures/run-N.txt (evidence folders
# in ovnlb-evidence/).
#   ci/soak.sh [N] [extra pytest args]      (default N=100)
set -uo pipefail
cd "$(dirname "$0")/.."
n=${1:-100}; shift || true
fails=0
for i in $(seq 1 "$n"); do
    mode=$([ $((i % 2)) -eq 1 ] && echo serial || echo "-n 2")
    args=(); [ "$mode" = serial ] || args=(-n 2)
    start=$(date +%s.%N)
    out=$(.venv/bin/python -m pytest -p no:cacheprovider -q conformance --ovn-topology=lab \
          "${args[@]}" "$@" 2>&1); rc=$?
    took=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
    left="$(ip netns list | grep -c '^ovnlb-') ns, $(ls /run/ovnlb 2>/dev/null | wc -l) dirs, $(pgrep -c -f 'ovnlb|/run/ovnlb/' ) procs"
    summary=$(tail -1 <<<"$out")
    if [ $rc -ne 0 ]; then
        fails=$((fails + 1))
        mkdir -p soak-failures && printf '%s\n' "$out" > "soak-failures/run-$i.txt"
        grep -E '^(FAILED|ERROR)' <<<"$out"
    fi
    echo "run $i/$n ($mode): rc=$rc ${took}s; $summary; left: $left"
done
echo "soak: $n runs, $fails failed"
[ $fails -eq 0 ]
