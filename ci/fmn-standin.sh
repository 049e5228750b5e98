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
#   ci/fmn-standin.sh conf F  write podman's containers.conf for this host to F
#
# start honours ovn_cluster.sh's variables (GW_COUNT, CHASSIS_COUNT,
# ENABLE_SSL, CREATE_FAKE_VMS, OVN_START_IC_DBS, RUNC_CMD, ...); defaults
# here: GW_COUNT=1 CHASSIS_COUNT=2 OVN_DP_TYPE=netdev, images
# localhost/fmn-standin:latest (also tagged ovn/ovn-multi-node:latest).
# FMN_STANDIN_HOST_ONLY=1 start prepares the host without starting a
# cluster: ci/fmn/ovn_cluster.sh start/stop (with CONTAINERS_CONF=
# /run/ovnlb-fmn-host/containers.conf) can then run, and stop here undoes
# the host set-up at the end.
# One cluster per host: callers serialize start..stop (e.g. with flock).
#
# Host OVS: ovn_cluster.sh talks to the host's OVS with plain ovs-vsctl, so
# the host daemons use the default run directory (/run/openvswitch); their
# database and logs live in $STATE and go away at stop. An OVS already
# answering there is used as it is and left running.
set -euo pipefail

[ "$(id -u)" -eq 0 ] || { echo "fmn-standin: must be root" >&2; exit 1; }
HERE=$(cd "$(dirname "$0")" && pwd)

SUITE=bookworm
# Images build from the archives this machine's apt uses (ci/debian-mirror.sh;
# $MIRROR and $SECURITY_MIRROR override, as does $DEBIAN_MIRROR for the main one).
BASE_IMAGE=localhost/fmn-standin-base:$SUITE
STANDIN_IMAGE=localhost/fmn-standin:latest
# The name ovn-fake-multinode gives its node image; the stand-in's image
# carries it too, so "is the image built" reads the same.
FMN_IMAGE=ovn/ovn-multi-node:latest
STATE=/run/ovnlb-fmn-host
OVS_RUN=/run/openvswitch
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
default_ulimits = ["nofile=$(ulimit -Hn):$(ulimit -Hn)", "nproc=4096:4096"]
EOF
}

# The same as flags, for podman build (its RUN steps ignore default_ulimits).
ULIMIT_ARGS=(--ulimit="nofile=$(ulimit -Hn):$(ulimit -Hn)" --ulimit=nproc=4096:4096)

label_of() {  # label_of IMAGE: the stand-in label of IMAGE, empty if none
    podman image inspect -f '{{index .Labels "org.ovnlb.fmn-standin"}}' "$1" 2>/dev/null || true
}

build() {
    install_host_packages
    local recipe MIRROR SECURITY_MIRROR
    MIRROR=${DEBIAN_MIRROR:-$(bash "$HERE/debian-mirror.sh")}
    SECURITY_MIRROR=$(bash "$HERE/debian-mirror.sh" security)
    work=$(mktemp -d /tmp/fmn-standin-build.XXXXXX)
    # EXIT, not RETURN: an error leaves through exit (set -e).
    trap 'rm -rf "$work"' EXIT
    write_containers_conf "$work/containers.conf"
    export CONTAINERS_CONF=$work/containers.conf

    if ! podman image exists "$BASE_IMAGE"; then
        log "debootstrap $SUITE (minbase)"
        debootstrap --variant=minbase "$SUITE" "$work/root" "$MIRROR" >"$work/debootstrap.log" 2>&1 \
            || { tail -20 "$work/debootstrap.log" >&2; return 1; }
        tar -C "$work/root" -c . | podman import -q - "$BASE_IMAGE" >/dev/null
        rm -rf "$work/root"
    fi

    mkdir "$work/ctx"
    # No ethtool and no python3-requests: the real images have neither; curl,
    # as they have (README's walk-through uses it in nodes).
    cat > "$work/ctx/Containerfile" <<EOF
FROM $BASE_IMAGE
# Packages must not start services inside the build.
RUN printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d \\
 && printf 'Types: deb\nURIs: $MIRROR\nSuites: $SUITE $SUITE-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\nTypes: deb\nURIs: $SECURITY_MIRROR\nSuites: $SUITE-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' > /etc/apt/sources.list.d/debian.sources \\
 && rm -f /etc/apt/sources.list \\
 && apt-get update -qq \\
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \\
      ovn-central ovn-host ovn-ic ovn-ic-db openvswitch-switch \\
      iproute2 iputils-ping procps openssl python3 python3-pip curl >/dev/null \\
 && apt-get clean && rm -rf /var/lib/apt/lists/*
# SSL files where ovn-fake-multinode puts them (same names, same CA).
RUN mkdir -p /opt/ovn && ovs-pki --dir=/opt/ovn/pki init \\
 && cd /opt/ovn && ovs-pki --dir=/opt/ovn/pki req+sign ovn switch
COPY init /usr/local/sbin/fmn-init
CMD ["/usr/local/sbin/fmn-init"]
EOF
    # PID 1 of a node: reaps the daemons started through exec, exits on TERM.
    cat > "$work/ctx/init" <<'EOF'
#!/bin/bash
trap 'exit 0' TERM INT
while :; do sleep infinity & wait $!; done
EOF
    chmod +x "$work/ctx/init"

    # The image is labelled with a digest of its recipe: rebuilt when it changes.
    recipe=$(cat "$work/ctx/Containerfile" "$work/ctx/init" | sha256sum | cut -c1-16)
    if [ "$(label_of "$STANDIN_IMAGE")" != "$recipe" ]; then
        log "building $STANDIN_IMAGE"
        podman build -q --network=host "${ULIMIT_ARGS[@]}" --label "org.ovnlb.fmn-standin=$recipe" \
            -t "$STANDIN_IMAGE" -f "$work/ctx/Containerfile" "$work/ctx" >/dev/null
    fi
    # Take ovn-fake-multinode's image name unless one of its own builds holds it.
    if [ -z "$(label_of "$FMN_IMAGE")" ] && podman image exists "$FMN_IMAGE"; then
        log "$FMN_IMAGE is not a stand-in image: left as it is ($STANDIN_IMAGE is used)"
    else
        podman tag "$STANDIN_IMAGE" "$FMN_IMAGE"
    fi
}

# What start did on the host, one word a line, for stop to undo.
did() { echo "$1" >> "$STATE/did"; }
done_by_start() { grep -qx "$1" "$STATE/did" 2>/dev/null; }

start_host_ovs() {
    mkdir -p "$STATE/ovs"
    [ -d "$OVS_RUN" ] || { mkdir -p "$OVS_RUN"; did ovs-rundir; }
    ovsdb-tool create "$STATE/ovs/conf.db" /usr/share/openvswitch/vswitch.ovsschema
    ovsdb-server "$STATE/ovs/conf.db" --remote="punix:$OVS_RUN/db.sock" \
        --pidfile="$OVS_RUN/ovsdb-server.pid" -vconsole:off --log-file="$STATE/ovs/ovsdb-server.log" --detach
    did ovs
    # --no-wait: no ovs-vswitchd yet to acknowledge the change.
    ovs-vsctl --no-wait init -- set Open_vSwitch . other_config:userspace-tso-enable=true
    ovs-vswitchd "unix:$OVS_RUN/db.sock" --pidfile="$OVS_RUN/ovs-vswitchd.pid" \
        -vconsole:off --log-file="$STATE/ovs/ovs-vswitchd.log" --detach
}

start() {
    install_host_packages
    podman image exists "$STANDIN_IMAGE" || build
    mkdir -p "$STATE"
    write_containers_conf "$STATE/containers.conf"
    export CONTAINERS_CONF=$STATE/containers.conf

    if ovs-vsctl --timeout=2 show >/dev/null 2>&1; then
        log "using the OVS already running on the host"
    else
        start_host_ovs
    fi
    # Netdev bridges: there is no kernel datapath.
    for br in br-ovn br-ovn-ext; do
        ovs-vsctl --timeout=30 br-exists "$br" && continue
        ovs-vsctl --timeout=30 add-br "$br" -- set bridge "$br" datapath_type=netdev
        did "br:$br"
    done
    [ -d /tmp/ovn-multinode ] || did mnt

    # FMN_STANDIN_HOST_ONLY=1: the host only, for a caller that starts the
    # cluster itself (the plugin's spin-up mode, with ci/fmn as the checkout)
    [ "${FMN_STANDIN_HOST_ONLY:-}" = 1 ] && return 0
    GW_COUNT=${GW_COUNT:-1} CHASSIS_COUNT=${CHASSIS_COUNT:-2} OVN_DP_TYPE=${OVN_DP_TYPE:-netdev} \
    CENTRAL_IMAGE=${CENTRAL_IMAGE:-$STANDIN_IMAGE} GW_IMAGE=${GW_IMAGE:-$STANDIN_IMAGE} \
    CHASSIS_IMAGE=${CHASSIS_IMAGE:-$STANDIN_IMAGE} \
        "$HERE/fmn/ovn_cluster.sh" start
}

stop() {
    local br link
    [ -f "$STATE/containers.conf" ] && export CONTAINERS_CONF=$STATE/containers.conf
    # Whatever happens there, the host set-up below is still undone.
    "$HERE/fmn/ovn_cluster.sh" stop || log "ovn_cluster.sh stop failed"
    for br in br-ovn br-ovn-ext; do
        if done_by_start "br:$br"; then
            ovs-vsctl --timeout=30 --if-exists del-br "$br" || :
        fi
    done
    if done_by_start ovs; then
        # --cleanup: the netdev datapath's tap goes with it.
        ovs-appctl -t ovs-vswitchd exit --cleanup 2>/dev/null || :
        ovs-appctl -t ovsdb-server exit 2>/dev/null || :
    fi
    done_by_start ovs-rundir && rm -rf "$OVS_RUN"
    done_by_start mnt && rm -rf /tmp/ovn-multinode
    # Host ends of container veths (ovn-fake-multinode's <13 hex>_l naming)
    # that no bridge holds any more (grep -E: Debian's default awk, mawk,
    # has no {n} intervals).
    for link in $(ip -o link show type veth | awk -F'[ :@]+' '{print $2}' | grep -E '^[0-9a-f]{13}_l$'); do
        ovs-vsctl --timeout=5 port-to-br "$link" >/dev/null 2>&1 || ip link delete "$link" 2>/dev/null || :
    done
    rm -rf "$STATE"
}

case "${1:-}" in
    build) build ;;
    start) start ;;
    stop) stop ;;
    conf) write_containers_conf "$2" ;;
    *) echo "usage: $0 build|start|stop|conf FILE" >&2; exit 2 ;;
esac
