#!/usr/bin/env bash
# The upgrade phase of `make check`: an upgrade run of the whole suite from
# this machine's OVN to Debian trixie's (sid's, where this machine has
# trixie's), made into .roots/ by ci/make-root.sh (about a minute), then the
# upgrade self-tests (tests/test_upgrade_lab.py, and the upgrade test's breakage)
# on the same root.  With OVNLB_TIMES_DIR=DIR, the upgrade run's time is
# appended to DIR/upgrade-times.txt (the speed figure of docs/upgrades.md).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTEST=".venv/bin/python -m pytest -p no:cacheprovider"
here=$(ovn-northd --version | awk 'NR==1{print $NF}')
mkdir -p .roots
for suite in trixie sid; do
    root=$PWD/.roots/$suite
    bash ci/make-root.sh "$suite" "$root" >/dev/null
    there=$(chroot "$root" ovn-northd --version | awk 'NR==1{print $NF}')
    [ "$there" != "$here" ] && break
done
echo "upgrade: OVN $here -> $there ($root)"
start=$(date +%s.%N)
$PYTEST conformance -n 2 --ovn-upgrade-from=/ --ovn-root="$root" "$@"
# the upgrade run's wall time (the walk and the suite after it, -n 2)
line="$(date -u +%F)  upgrade run OVN $here -> $there, -n 2: $(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.0f", b-a}') s ($(nproc) cores)"
echo "upgrade: $line"
if [ -n "${OVNLB_TIMES_DIR:-}" ]; then
    echo "$line" >> "$OVNLB_TIMES_DIR/upgrade-times.txt"
fi
OVNLB_UPGRADE_ROOT=$root $PYTEST tests/test_upgrade_lab.py \
    "tests/test_plugin.py::test_suite_fails_when_ovn_misbehaves[ovs_under_pinned_controllers]" "$@"
