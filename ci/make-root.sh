#!/usr/bin/env bash
# Make a root filesystem holding another Debian release's OVN/OVS, for
# `--ovn-root DIR` and ci/matrix.py.  Needs root and debootstrap.
#   ci/make-root.sh SUITE DIR      e.g. ci/make-root.sh trixie /srv/ovn-trixie
# The archive is the one in this machine's apt sources on Debian, Debian's
# default on another distribution (ci/debian-mirror.sh), or $MIRROR.
# bookworm: OVN 23.03 / OVS 3.1; trixie: OVN 25.03 / OVS 3.5; sid: OVN 26.03 / OVS 4.0
set -euo pipefail
suite=${1:?usage: $0 SUITE DIR}; dir=${2:?usage: $0 SUITE DIR}
if [ -x "$dir/usr/bin/ovn-northd" ]; then echo "$dir already holds OVN"; exit 0; fi
# debootstrap, and Debian's archive keys (not there by default on Ubuntu)
missing=
command -v debootstrap >/dev/null || missing=debootstrap
[ -e /usr/share/keyrings/debian-archive-keyring.gpg ] || missing="$missing debian-archive-keyring"
if [ -n "$missing" ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing
fi
# the archive this machine's apt uses on Debian, debootstrap's default
# elsewhere ($MIRROR overrides)
mirror=$(bash "$(dirname "$0")/debian-mirror.sh")
debootstrap --variant=minbase --include=ovn-central,ovn-host,openvswitch-switch \
    "$suite" "$dir" "$mirror"
chroot "$dir" ovn-northd --version | head -1
