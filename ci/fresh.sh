#!/usr/bin/env bash
# Runs a command (default: `make check`) seeing this machine as a fresh one
# would, whatever earlier work left on it:
#   - container images: podman gets a private, empty storage for the length
#     of the command (CONTAINERS_STORAGE_CONF), so every image the check
#     needs is built by the check itself; removed at the end;
#   - Python packages: no pip cache (PIP_NO_CACHE_DIR); the virtualenv is the
#     caller's to make fresh (a clean clone has none; `make check-fresh`
#     runs in one);
#   - OVN roots, caches and services: `make check` uses none of them (the
#     matrix roots under .roots/ are made by `make matrix`, not by the check).
# Apt packages stay as they are: the check installs what it lacks itself.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || set -- make check

# Short paths: podman's runroot holds sockets (108 bytes at most).
store=$(mktemp -d /run/ovnlb-fresh.XXXXXX)
cleanup() {
    # Only what lives in the private storage (`podman system reset` would
    # also remove the host's own networks).
    if [ "${CONTAINERS_STORAGE_CONF:-}" = "$store/storage.conf" ] && command -v podman >/dev/null; then
        podman rm -af -t 0 >/dev/null 2>&1 || true
        podman rmi -af >/dev/null 2>&1 || true
    fi
    findmnt -rn -o TARGET | grep "^$store/" | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
    rm -rf "$store"
}
trap cleanup EXIT
# overlay where the kernel has it (podman's own first choice), else vfs
driver=vfs
grep -qw overlay /proc/filesystems && driver=overlay
cat > "$store/storage.conf" <<EOF
[storage]
driver = "$driver"
graphroot = "$store/root"
runroot = "$store/run"
EOF
export CONTAINERS_STORAGE_CONF=$store/storage.conf PIP_NO_CACHE_DIR=1
echo "fresh: private container storage $store; running: $*" >&2
"$@"
