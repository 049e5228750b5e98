#!/bin/bash
# A stand-in for an ovn-fake-multinode deployment, built from Debian's OVN
# packages and run with rootful podman on the userspace (netdev) datapath.
# It follows ovn-fake-multinode's conventions (container and image names,
# networks, SSL files, environment variables), so that code attaching to it
# also attaches to the real thing.
#
#   ci/fmn-standin.sh build   base image from debootstrap, then the node image
#   ci/fmn-standin.sh start   host OVS and bridges, then ci/fmn/ovn_cluster.sh start
#   ci/fmn-standin.sh stop    ci/fmn/ovn_cluster.sh stop, then undo start's host set-up
#
# start honours ovn_cluster.sh's variables (GW_COUNT, CHASSIS_COUNT,
# ENABLE_SSL, CREATE_FAKE_VMS, OVN_START_IC_DBS, RUNC_CMD, ...); defaults
# here: GW_COUNT=1 CHASSIS_COUNT=2 OVN_DP_TYPE=netdev.
#
# Host OVS: ovn_cluster.sh talks to the host's OVS with plain ovs-vsctl, so
# the host daemons use the default run directory (/run/openvswitch); their
# database and logs live in $STATE and go away at stop. An OVS already
# answering there is used as it is and left running.
set -euo pipefail

[ "$(id -u)" -eq 0 ] || { echo "fmn-standin: must be root" >&2; exit 1; }
HERE=$(cd "$(dirname "$0")" && pwd)

SUITE=bookworm
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
BASE_IMAGE=localhost/fmn-standin-base:$SUITE
STANDIN_IMAGE=localhost/fmn-standin:latest
# The name ovn-fake-multinode gives its node image; the stand-in's image
# carries it too, so "is the image built" reads the same.
FMN_IMAGE=ovn/ovn-multi-node:latest
STATE=/run/ovnlb-fmn-host
OVS_RUN=/run/openvswitch
OVS_CTL=/usr/share/openvswitch/scripts/ovs-ctl
HOST_PACKAGES="podman runc iptables debootstrap openvswitch-switch ethtool iproute2 util-linux"

log() { echo "fmn-standin: $*" >&2; }

install_host_packages() {
    local missing p added_policy=
    missing=$(for p in $HOST_PACKAGES; do dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null \
              | grep -q "install ok installed" || echo "$p"; done)
    [ -n "$missing" ] || return 0
    log "installing" $missing
    # Keep the packaged OVS service from starting; start runs its own daemons.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod +x /usr/sbin/policy-rc.d
        added_policy=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends $missing >/dev/null || {
        [ -n "$added_policy" ] && rm -f /usr/sbin/policy-rc.d; return 1; }
    [ -n "$added_policy" ] && rm -f /usr/sbin/policy-rc.d
    return 0
}

# Root may lack CAP_SYS_RESOURCE: podman's default ulimits (above the hard
# limits) are then refused, so ask for the current hard limits instead.
write_containers_conf() {
    cat > "$1" <<EOF
[containers]
default_ulimits = ["nofile=$(ulimit -Hn):$(ulimit -Hn)", "nproc=$(ulimit -Hu):$(ulimit -Hu)"]
EOF
}

build() {
    install_host_packages
    local work conf
    work=$(mktemp -d /tmp/fmn-standin-build.XXXXXX)
    trap 'rm -rf "$work"' RETURN
    write_containers_conf "$work/containers.conf"
    export CONTAINERS_CONF=$work/containers.conf

    if ! podman image exists "$BASE_IMAGE"; then
        log "debootstrap $SUITE (minbase)"
        debootstrap --variant=minbase "$SUITE" "$work/root" "$MIRROR" >"$work/debootstrap.log" 2>&1 \
            || { tail -20 "$work/debootstrap.log" >&2; return 1; }
        tar -C "$work/root" -c . | podman import -q - "$BASE_IMAGE" >/dev/null
        rm -rf "$work/root"
    fi

    if ! podman image exists "$STANDIN_IMAGE"; then
        log "building $STANDIN_IMAGE"
        # No ethtool and no python3-requests: the real images have neither.
        cat > "$work/Containerfile" <<EOF
FROM $BASE_IMAGE
# Packages must not start services inside the build.
RUN printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d \\
 && printf 'Types: deb\nURIs: $MIRROR\nSuites: $SUITE $SUITE-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\nTypes: deb\nURIs: http://deb.debian.org/debian-security\nSuites: $SUITE-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' > /etc/apt/sources.list.d/debian.sources \\
 && rm -f /etc/apt/sources.list \\
 && apt-get update -qq \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \\
      ovn-central ovn-host ovn-ic ovn-ic-db openvswitch-switch \\
      iproute2 iputils-ping procps openssl python3 python3-pip >/dev/null \\
 && apt-get clean && rm -rf /var/lib/apt/lists/*
# SSL files where ovn-fake-multinode puts them (same names, same CA).
RUN mkdir -p /opt/ovn && ovs-pki -q --dir=/opt/ovn/pki init \\
 && cd /opt/ovn && ovs-pki -q --dir=/opt/ovn/pki req+sign ovn switch
COPY init /usr/local/sbin/fmn-init
LABEL org.ovnlb.fmn-standin=1
CMD ["/usr/local/sbin/fmn-init"]
EOF
        # PID 1 of a node: reaps the daemons started through exec, exits on TERM.
        cat > "$work/init" <<'EOF'
#!/bin/bash
trap 'exit 0' TERM INT
while :; do sleep infinity & wait $!; done
EOF
        chmod +x "$work/init"
        podman build -q --network=host -t "$STANDIN_IMAGE" -f "$work/Containerfile" "$work" >/dev/null
    fi
    podman tag "$STANDIN_IMAGE" "$FMN_IMAGE"
}

case "${1:-}" in
    build) build ;;
    *) echo "usage: $0 build|start|stop" >&2; exit 2 ;;
esac
