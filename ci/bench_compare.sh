#!/usr/bin/env bash
# Wall time of the conformance suite (netns lab, -n 2) at REF and at HEAD,
# taken in turns in one run so that both see the same machine:
#   ci/bench_compare.sh REF [ROUNDS]   (default 3 rounds of each)
# Prints each time and the medians' ratio (HEAD / REF), and appends a line
# to ci/bench-compare.txt.  REF runs from a temporary worktree, removed after.
set -euo pipefail
cd "$(dirname "$0")/.."
REF=${1:?usage: ci/bench_compare.sh REF [ROUNDS]}
ROUNDS=${2:-3}
wt=$(mktemp -d /tmp/ovnlb-bench.XXXXXX)
trap 'git worktree remove --force "$wt" >/dev/null 2>&1 || rm -rf "$wt"' EXIT
git worktree add -q --detach "$wt" "$REF"
ln -s "$PWD/.venv" "$wt/.venv"

# the plugin module DIR's pyproject.toml names (the installed entry point is HEAD's)
plugin_of() { sed -n 's/^ovnlb = "\(.*\)"/\1/p' "$1/pyproject.toml"; }
suite() {  # suite DIR: seconds of one run of the suite from DIR's code
    local t
    t=$(date +%s.%N)
    (cd "$1" && PYTHONPATH="$1" PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 .venv/bin/python -m pytest \
        -p "$(plugin_of "$1")" -p xdist.plugin -p no:cacheprovider conformance \
        --ovn-topology=lab -n 2 -q >/dev/null) || { echo "bench_compare: the suite failed in $1" >&2; exit 1; }
    awk -v a="$t" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}'
}
ref=() head=()
for ((i = 0; i < ROUNDS; i++)); do
    ref+=("$(suite "$wt")")
    head+=("$(suite "$PWD")")
    echo "round $((i + 1)): $REF ${ref[-1]} s, HEAD ${head[-1]} s"
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END{print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
mr=$(median "${ref[@]}") mh=$(median "${head[@]}")
line="$(date -u +%F)  suite -n 2 on the netns lab, medians of $ROUNDS: $(git rev-parse --short "$REF") ${mr} s, HEAD $(git rev-parse --short HEAD) ${mh} s, ratio $(awk -v a="$mr" -v b="$mh" 'BEGIN{printf "%.3f", b/a}') ($(nproc) cores)"
echo "$line"
echo "$line" >> ci/bench-compare.txt
