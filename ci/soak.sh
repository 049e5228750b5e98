#!/usr/bin/env bash
# Soak: N consecutive full conformance runs on the embedded lab, alternating
# serial and -n 2; after each, nothing of its labs may be left (namespaces,
# run directories, daemons), and a run that left something fails (rc 9).
# Counts failures, never retries; one line per run, a failing run's whole
# output in soak-failures/run-N.txt (evidence folders in ovnlb-evidence/).
#   ci/soak.sh [N] [extra pytest args]      (default N=100)
# SOAK_ROOTS="- .roots/trixie .roots/sid" takes the OVN builds in turn (run i
# uses the ((i-1) mod count)-th; "-" is the installed OVN), so with an odd
# count each build gets serial and -n 2 runs alike.
set -uo pipefail
cd "$(dirname "$0")/.."
n=${1:-100}; shift || true
read -ra roots <<<"${SOAK_ROOTS:--}"
for root in "${roots[@]}"; do
    [ "$root" = - ] || [ -d "$root" ] || { echo "soak: no OVN root $root" >&2; exit 2; }
done
fails=0
declare -A runs=() failed=()

# What a finished run left: namespaces, run directories and daemons of labs
# named pytestPID whose process is gone (other labs may run beside the soak).
leftovers() {
    local dead=() name pid
    for name in $( (ip netns list | sed -n 's/^ovnlb-\(pytest[0-9]*\)-.*/\1/p';
                    ls /run/ovnlb 2>/dev/null) | grep '^pytest[0-9]*$' | sort -u); do
        pid=${name#pytest}
        kill -0 "$pid" 2>/dev/null || dead+=("$name")
    done
    local ns=0 dirs=0 procs=0
    for name in "${dead[@]}"; do
        ns=$((ns + $(ip netns list | grep -c "^ovnlb-$name-")))
        [ -e "/run/ovnlb/$name" ] && dirs=$((dirs + 1))
        procs=$((procs + $(pgrep -c -f "/run/ovnlb/$name/")))
    done
    echo "$ns ns, $dirs dirs, $procs procs"
}
for i in $(seq 1 "$n"); do
    mode=$([ $((i % 2)) -eq 1 ] && echo serial || echo "-n 2")
    args=(); [ "$mode" = serial ] || args=(-n 2)
    root=${roots[$(( (i - 1) % ${#roots[@]} ))]}
    [ "$root" = - ] || args+=("--ovn-root=$root")
    runs[$root]=$(( ${runs[$root]:-0} + 1 ))
    start=$(date +%s.%N)
    out=$(.venv/bin/python -m pytest -p no:cacheprovider -q conformance --ovn-topology=lab \
          "${args[@]}" "$@" 2>&1); rc=$?
    took=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
    left=$(leftovers)
    summary=$(tail -1 <<<"$out")
    if [ "$left" != "0 ns, 0 dirs, 0 procs" ] && [ $rc -eq 0 ]; then rc=9; fi
    if [ $rc -ne 0 ]; then
        fails=$((fails + 1)); failed[$root]=$(( ${failed[$root]:-0} + 1 ))
        mkdir -p soak-failures && printf '%s\n' "$out" > "soak-failures/run-$i.txt"
        grep -E '^(FAILED|ERROR)|^INTERNALERROR> [A-Z][a-z]+Error' <<<"$out"
    fi
    echo "run $i/$n ($mode, OVN ${root/#-/installed}): rc=$rc ${took}s; $summary; left: $left"
done
for root in "${roots[@]}"; do
    echo "soak: OVN ${root/#-/installed}: ${runs[$root]:-0} runs, ${failed[$root]:-0} failed"
done
echo "soak: $n runs, $fails failed"
[ $fails -eq 0 ]
