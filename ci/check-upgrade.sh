#!/usr/bin/env bash
# The upgrade phase of `make check`: an upgrade run of the whole suite from
# this machine's OVN to Debian trixie's (sid's, where this machine has
# trixie's), made into .roots/ by ci/make-root.sh (about a minute), then the
# upgrade self-tests (tests/test_upgrade.py, and the upgrade test's breakage)
# on the same root.
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
$PYTEST conformance -n 2 --ovn-upgrade-from=/ --ovn-root="$root" "$@"
OVNLB_UPGRADE_ROOT=$root $PYTEST tests/test_upgrade.py \
    "tests/test_plugin.py::test_suite_fails_when_ovn_misbehaves[ovs_under_pinned_controllers]" "$@"
