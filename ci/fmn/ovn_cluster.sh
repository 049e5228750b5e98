#!/bin/bash
# Stand-in for ovn-fake-multinode's ovn_cluster.sh: "start" and "stop" with
# its container names, networks, SSL files and environment variables, on
# images built from Debian's OVN packages (see ../fmn-standin.sh).
#
#   ovn_cluster.sh start [-r]   (-r: stop an existing cluster first)
#   ovn_cluster.sh stop
#
# Nodes: ovn-central-az1 (NB, SB, ovn-northd, IC DBs, ovn-ic), ovn-gw-N and
# ovn-chassis-N (ovsdb-server, ovs-vswitchd, ovn-controller; system-id and
# hostname = container name). eth1: underlay on the host bridge br-ovn
# (IP_START and up: central, gateways, chassis); eth2: on the host bridge
# br-ovn-ext, inside gateways/chassis a port of br-ex (public:br-ex).
# The host dir FAKENODE_MNT_DIR is /data in every node. SSL files come from
# the image: /opt/ovn/ovn-privkey.pem, /opt/ovn/ovn-cert.pem,
# /opt/ovn/pki/switchca/cacert.pem.
#
# With OVN_DP_TYPE=netdev (no kernel module) eth1 of gateways/chassis is a
# port of a netdev bridge br-phy that carries the node's underlay address, so
# that geneve works in the userspace datapath. TX checksum offload is off on
# every veth this script creates (both ends): the userspace datapath does
# not complete partial checksums. The images have no ethtool, so the host's
# runs in the node's network namespace.
#
# OVN_DB_CLUSTER=yes: three centrals ovn-central-az1-1..3 instead, each with
# a member of clustered (raft) NB and SB databases and an ovn-northd (one of
# them active, the others on standby); chassis get all three as ovn-remote;
# the IC DBs and ovn-ic run on the first. With ovn-nbctl/ovn-sbctl inside a
# member, give --no-leader-only: the member may be a follower.
#
# Not supported: CENTRAL_COUNT > 1, RELAY_COUNT, ENABLE_ETCD,
# OVN_NBDB_SRC/OVN_SBDB_SRC, and the other commands (build, add-chassis, ...).

[ $EUID -eq 0 ] || { echo 'must be root' >&2; exit 1; }
set -o errexit -o pipefail

RUNC_CMD="${RUNC_CMD:-podman}"

CENTRAL_IMAGE=${CENTRAL_IMAGE:-"ovn/ovn-multi-node:latest"}
CHASSIS_IMAGE=${CHASSIS_IMAGE:-"ovn/ovn-multi-node:latest"}
GW_IMAGE=${GW_IMAGE:-"ovn/ovn-multi-node:latest"}

CENTRAL_COUNT=${CENTRAL_COUNT:-1}
CENTRAL_PREFIX="${CENTRAL_PREFIX:-ovn-central-az}"
CENTRAL_NAME="${CENTRAL_NAME:-}"
CHASSIS_PREFIX="${CHASSIS_PREFIX:-ovn-chassis-}"
CHASSIS_COUNT=${CHASSIS_COUNT:-2}
GW_PREFIX="ovn-gw-"
GW_COUNT=${GW_COUNT:-1}

OVN_BR="br-ovn"
OVN_EXT_BR="br-ovn-ext"
OVN_BR_CLEANUP="${OVN_BR_CLEANUP:-yes}"

IP_CIDR=${IP_CIDR:-16}
IP_START=${IP_START:-170.168.0.2}

OVN_MONITOR_ALL="${OVN_MONITOR_ALL:-no}"
OVN_START_IC_DBS=${OVN_START_IC_DBS:-yes}
OVN_DP_TYPE="${OVN_DP_TYPE:-system}"
ENABLE_SSL="${ENABLE_SSL:-yes}"
CREATE_FAKE_VMS="${CREATE_FAKE_VMS:-yes}"
OVN_DB_CLUSTER="${OVN_DB_CLUSTER:-no}"
FAKENODE_MNT_DIR="${FAKENODE_MNT_DIR:-/tmp/ovn-multinode}"

# Seconds to wait for the chassis to register and catch up with the NB.
OVN_WAIT_TIMEOUT=${OVN_WAIT_TIMEOUT:-60}

SSL_CERTS_PATH="/opt/ovn"
SSL_KEY=$SSL_CERTS_PATH/ovn-privkey.pem
SSL_CERT=$SSL_CERTS_PATH/ovn-cert.pem
SSL_CACERT=$SSL_CERTS_PATH/pki/switchca/cacert.pem
REMOTE_PROT=ssl
[ "$ENABLE_SSL" = "yes" ] || REMOTE_PROT=tcp

OVNCTL_PATH=/usr/share/ovn/scripts/ovn-ctl
OVSCTL_PATH=/usr/share/openvswitch/scripts/ovs-ctl

CENTRAL_NAMES=()
GW_NAMES=()
CHASSIS_NAMES=()

log() { echo "$*"; }
die() { echo "ovn_cluster.sh: $*" >&2; exit 1; }
host_vsctl() { ovs-vsctl --timeout=30 "$@"; }

set_node_names() {
    local i
    if [ -n "$CENTRAL_NAME" ]; then
        CENTRAL_NAMES=("$CENTRAL_NAME")
    else
        for ((i = 1; i <= CENTRAL_COUNT; i++)); do CENTRAL_NAMES+=("${CENTRAL_PREFIX}$i"); done
    fi
    if [ "$OVN_DB_CLUSTER" = yes ]; then
        CENTRAL_NAMES=("${CENTRAL_NAMES[0]}-1" "${CENTRAL_NAMES[0]}-2" "${CENTRAL_NAMES[0]}-3")
    fi
    for ((i = 1; i <= GW_COUNT; i++)); do GW_NAMES+=("${GW_PREFIX}$i"); done
    for ((i = 1; i <= CHASSIS_COUNT; i++)); do CHASSIS_NAMES+=("${CHASSIS_PREFIX}$i"); done
}

check_supported() {
    [ "$CENTRAL_COUNT" -eq 1 ] || die "only CENTRAL_COUNT=1 is supported"
    [ "${RELAY_COUNT:-0}" -eq 0 ] || die "RELAY_COUNT is not supported"
    [ "${ENABLE_ETCD:-no}" = "no" ] || die "ENABLE_ETCD is not supported"
    [ -z "${OVN_NBDB_SRC:-}${OVN_SBDB_SRC:-}" ] || die "OVN_NBDB_SRC/OVN_SBDB_SRC are not supported"
}

# Underlay addresses: IP_START + index (central, then gateways, then chassis).
ip_to_int() { local IFS=.; set -- $1; echo $(( ($1 << 24) | ($2 << 16) | ($3 << 8) | $4 )); }
int_to_ip() { echo "$(( ($1 >> 24) & 255 )).$(( ($1 >> 16) & 255 )).$(( ($1 >> 8) & 255 )).$(( $1 & 255 ))"; }
underlay_ip() { int_to_ip $(( $(ip_to_int "$IP_START") + $1 )); }

# Names of existing containers of the cluster (running or not).
existing_containers() {
    $RUNC_CMD ps -a --format '{{.Names}}' \
        --filter "name=^(${CENTRAL_PREFIX}|${GW_PREFIX}|${CHASSIS_PREFIX})"
}

tx_off() {  # tx_off PID DEV: no TX checksum offload on DEV in PID's netns
    nsenter -t "$1" -n ethtool -K "$2" tx off >/dev/null
}

# add_port BRIDGE IFACE NAME PID [ADDRESS/PREFIX]: a veth pair, one end a port
# of the host BRIDGE tagged with the container, the other IFACE in the node.
add_port() {
    local br=$1 iface=$2 name=$3 pid=$4 addr=${5:-} id port
    id=$(tr -d - < /proc/sys/kernel/random/uuid)
    port=${id:0:13}
    ip link add "${port}_l" type veth peer name "${port}_c"
    host_vsctl add-port "$br" "${port}_l" -- set interface "${port}_l" \
        external_ids:container_id="$name" external_ids:container_iface="$iface"
    ip link set "${port}_l" up
    ethtool -K "${port}_l" tx off >/dev/null
    ip link set "${port}_c" netns "$pid"
    nsenter -t "$pid" -n ip link set dev "${port}_c" name "$iface"
    tx_off "$pid" "$iface"
    [ -z "$addr" ] || nsenter -t "$pid" -n ip addr add "$addr" dev "$iface"
    nsenter -t "$pid" -n ip link set "$iface" up
}

# Host-side ports of a container: OVS rows and veths.
del_container_ports() {
    local name=$1 port
    for port in $(host_vsctl --data=bare --no-heading --columns=name find interface \
                      external_ids:container_id="$name" 2>/dev/null); do
        host_vsctl --if-exists del-port "$port" || :
        ip link delete "$port" 2>/dev/null || :
    done
}

start_container() {
    local image=$1 name=$2
    $RUNC_CMD run -dt -v "${FAKENODE_MNT_DIR}:/data" --privileged \
        --name="$name" --hostname="$name" "$image" >/dev/null
}

# Runs in the central node: NB and SB (listening on p$REMOTE_PROT:6641/6642),
# ovn-northd, and the IC DBs with ovn-ic.
CENTRAL_SCRIPT='
set -e
name=$1 prot=$2 key=$3 cert=$4 cacert=$5 ic=$6 ic_ip=$7
ctl='"$OVNCTL_PATH"'
$ctl start_northd >/dev/null
if [ "$prot" = ssl ]; then
    ovn-nbctl set-ssl "$key" "$cert" "$cacert"
    ovn-sbctl set-ssl "$key" "$cert" "$cacert"
fi
ovn-nbctl set-connection p$prot:6641 -- set connection . inactivity_probe=180000
ovn-sbctl set-connection p$prot:6642 -- set connection . inactivity_probe=180000
ovn-nbctl set NB_Global . name="$name" options:ic-route-adv=true options:ic-route-learn=true
if [ "$ic" = yes ]; then
    $ctl --db-ic-nb-create-insecure-remote=yes --db-ic-sb-create-insecure-remote=yes \
        start_ic_ovsdb >/dev/null
    $ctl --ovn-ic-nb-db=tcp:$ic_ip:6645 --ovn-ic-sb-db=tcp:$ic_ip:6646 start_ic >/dev/null
fi
'

# Runs in a member of a clustered central, in two steps. "db": its NB and SB
# servers, creating the clusters on the first member (ip = first), joining
# them on the others. "northd": on the first, the connections (and SSL) of
# both databases and the IC DBs with ovn-ic; on each, an ovn-northd.
RAFT_SCRIPT='
set -e
step=$1 name=$2 prot=$3 key=$4 cert=$5 cacert=$6 ip=$7 first=$8 nbs=$9 sbs=${10} ic=${11}
ctl='"$OVNCTL_PATH"'
ssl=
[ "$prot" != ssl ] || ssl="--ovn-nb-db-ssl-key=$key --ovn-nb-db-ssl-cert=$cert
    --ovn-nb-db-ssl-ca-cert=$cacert --ovn-sb-db-ssl-key=$key --ovn-sb-db-ssl-cert=$cert
    --ovn-sb-db-ssl-ca-cert=$cacert --ovn-northd-ssl-key=$key --ovn-northd-ssl-cert=$cert
    --ovn-northd-ssl-ca-cert=$cacert"
if [ "$step" = db ]; then
    join=
    [ "$ip" = "$first" ] || join="--db-nb-cluster-remote-addr=$first
        --db-sb-cluster-remote-addr=$first --db-nb-cluster-remote-proto=$prot
        --db-sb-cluster-remote-proto=$prot"
    $ctl --db-nb-addr=$ip --db-sb-addr=$ip --db-nb-cluster-local-addr=$ip \
        --db-sb-cluster-local-addr=$ip --db-nb-cluster-local-proto=$prot \
        --db-sb-cluster-local-proto=$prot $join $ssl start_ovsdb >/dev/null
    exit 0
fi
if [ "$ip" = "$first" ]; then
    nbctl="ovn-nbctl --no-leader-only" sbctl="ovn-sbctl --no-leader-only"
    if [ "$prot" = ssl ]; then
        $nbctl set-ssl "$key" "$cert" "$cacert"
        $sbctl set-ssl "$key" "$cert" "$cacert"
    fi
    $nbctl set-connection p$prot:6641 -- set connection . inactivity_probe=180000
    $sbctl set-connection p$prot:6642 -- set connection . inactivity_probe=180000
    $nbctl set NB_Global . name="$name" options:ic-route-adv=true options:ic-route-learn=true
    if [ "$ic" = yes ]; then
        $ctl --db-ic-nb-create-insecure-remote=yes --db-ic-sb-create-insecure-remote=yes \
            start_ic_ovsdb >/dev/null
        $ctl --ovn-ic-nb-db=tcp:$ip:6645 --ovn-ic-sb-db=tcp:$ip:6646 start_ic >/dev/null
    fi
fi
$ctl --ovn-northd-nb-db=$nbs --ovn-northd-sb-db=$sbs --ovn-manage-ovsdb=no $ssl \
    start_northd >/dev/null
'

# start_raft_central: the clustered central's servers, first member first.
start_raft_central() {
    local step name i pids first nbs= sbs=
    first=$(underlay_ip 0)
    for i in 0 1 2; do
        nbs="$nbs${nbs:+,}$REMOTE_PROT:$(underlay_ip $i):6641"
        sbs="$sbs${sbs:+,}$REMOTE_PROT:$(underlay_ip $i):6642"
    done
    raft_step() {  # raft_step STEP INDEX
        $RUNC_CMD exec "${CENTRAL_NAMES[$2]}" bash -c "$RAFT_SCRIPT" raft "$1" \
            "${CENTRAL_NAMES[$2]}" "$REMOTE_PROT" "$SSL_KEY" "$SSL_CERT" "$SSL_CACERT" \
            "$(underlay_ip "$2")" "$first" "$nbs" "$sbs" "$OVN_START_IC_DBS"
    }
    raft_step db 0 || return 1
    pids=(); for i in 1 2; do raft_step db $i & pids+=($!); done
    wait_all "${pids[@]}" || return 1
    raft_step northd 0 || return 1
    pids=(); for i in 1 2; do raft_step northd $i & pids+=($!); done
    wait_all "${pids[@]}"
}

# Runs in a gateway or chassis node: OVS, the OVN settings, then ovn-controller.
NODE_SCRIPT='
set -e
name=$1 remote=$2 role=$3 dp=$4 monitor_all=$5 ssl=$6 key=$7 cert=$8 cacert=$9
# Quiet unless it fails (it cannot raise its fd limit without CAP_SYS_RESOURCE).
out=$('"$OVSCTL_PATH"' start --system-id="$name" 2>&1) || { echo "$out" >&2; exit 1; }
addr=$(ip -4 -o addr show dev eth1 | awk "{print \$4; exit}")
set -- set open . external_ids:ovn-encap-ip="${addr%/*}" external_ids:ovn-encap-type=geneve \
    external_ids:ovn-remote="$remote" external_ids:ovn-openflow-probe-interval=60 \
    external_ids:ovn-remote-probe-interval=180000 external_ids:ovn-bridge-datapath-type="$dp" \
    external_ids:ovn-bridge-mappings=public:br-ex external_ids:ovn-is-interconn=true
[ "$monitor_all" != yes ] || set -- "$@" external_ids:ovn-monitor-all=true
[ "$role" != gw ] || set -- "$@" external_ids:ovn-cms-options=enable-chassis-as-gw
set -- "$@" -- --if-exists del-br br-ex -- add-br br-ex -- set bridge br-ex datapath_type="$dp" \
    -- add-port br-ex eth2
# Userspace geneve: the underlay address lives on an OVS bridge.
[ "$dp" != netdev ] || set -- "$@" -- --may-exist add-br br-phy \
    -- set bridge br-phy datapath_type=netdev -- --may-exist add-port br-phy eth1
ovs-vsctl --timeout=30 "$@"
if [ "$dp" = netdev ]; then
    ip addr del "$addr" dev eth1
    ip addr add "$addr" dev br-phy
    ip link set br-phy up
fi
if [ "$ssl" = yes ]; then
    '"$OVNCTL_PATH"' --ovn-controller-ssl-key="$key" --ovn-controller-ssl-cert="$cert" \
        --ovn-controller-ssl-ca-cert="$cacert" start_controller >/dev/null
else
    '"$OVNCTL_PATH"' start_controller >/dev/null
fi
'

# The chassis's ovn-remote: every central's SB.
sb_remotes() {
    local i out=
    for ((i = 0; i < ${#CENTRAL_NAMES[@]}; i++)); do
        out="$out${out:+,}$REMOTE_PROT:$(underlay_ip $i):6642"
    done
    echo "$out"
}

# bring_up_node NAME ROLE INDEX: links, then the node's daemons.
bring_up_node() {
    local name=$1 role=$2 index=$3 pid ip
    pid=$($RUNC_CMD inspect -f '{{.State.Pid}}' "$name")
    ip=$(underlay_ip "$index")
    add_port "$OVN_BR" eth1 "$name" "$pid" "$ip/$IP_CIDR"
    add_port "$OVN_EXT_BR" eth2 "$name" "$pid"
    if [ "$role" = central ]; then
        # a clustered central's servers start once every member has its links
        [ "$OVN_DB_CLUSTER" = yes ] && return 0
        $RUNC_CMD exec "$name" bash -c "$CENTRAL_SCRIPT" central "$name" "$REMOTE_PROT" \
            "$SSL_KEY" "$SSL_CERT" "$SSL_CACERT" "$OVN_START_IC_DBS" "$ip"
    else
        $RUNC_CMD exec "$name" bash -c "$NODE_SCRIPT" node "$name" "$(sb_remotes)" "$role" \
            "$OVN_DP_TYPE" "$OVN_MONITOR_ALL" "$ENABLE_SSL" "$SSL_KEY" "$SSL_CERT" "$SSL_CACERT"
    fi
}

# wait_all PID...: waits for background jobs, fails if any failed.
wait_all() {
    local pid rc=0
    for pid in "$@"; do wait "$pid" || rc=1; done
    return $rc
}

setup_ovs_in_host() {
    local br
    host_vsctl show >/dev/null || die "no OVS answering ovs-vsctl on the host"
    for br in "$OVN_BR" "$OVN_EXT_BR"; do
        host_vsctl br-exists "$br" && continue
        if [ "$OVN_DP_TYPE" = netdev ]; then
            host_vsctl add-br "$br" -- set bridge "$br" datapath_type=netdev
        else
            host_vsctl add-br "$br"
        fi
    done
}

start() {
    local name i pids central

    check_supported
    [ -z "$(existing_containers)" ] || die "can't start: cluster containers exist: $(existing_containers | xargs)"
    for i in "$CENTRAL_IMAGE" "$GW_IMAGE" "$CHASSIS_IMAGE"; do
        $RUNC_CMD image exists "$i" || die "image $i not found (build it first)"
    done

    log "Starting OVN cluster"
    setup_ovs_in_host
    mkdir -p "$FAKENODE_MNT_DIR"

    pids=()
    for name in "${CENTRAL_NAMES[@]}"; do start_container "$CENTRAL_IMAGE" "$name" & pids+=($!); done
    for name in "${GW_NAMES[@]}"; do start_container "$GW_IMAGE" "$name" & pids+=($!); done
    for name in "${CHASSIS_NAMES[@]}"; do start_container "$CHASSIS_IMAGE" "$name" & pids+=($!); done
    wait_all "${pids[@]}" || die "starting the containers failed"

    log "Adding ovs-ports, starting OVN"
    pids=()
    i=0
    for name in "${CENTRAL_NAMES[@]}"; do bring_up_node "$name" central $i & pids+=($!); i=$((i + 1)); done
    for name in "${GW_NAMES[@]}"; do bring_up_node "$name" gw $i & pids+=($!); i=$((i + 1)); done
    for name in "${CHASSIS_NAMES[@]}"; do bring_up_node "$name" chassis $i & pids+=($!); i=$((i + 1)); done
    wait_all "${pids[@]}" || die "setting up the nodes failed"
    if [ "$OVN_DB_CLUSTER" = yes ]; then
        start_raft_central || die "starting the clustered central failed"
    fi

    # Ready when every chassis is registered and has caught up with the NB.
    central=${CENTRAL_NAMES[0]}
    for name in "${GW_NAMES[@]}" "${CHASSIS_NAMES[@]}"; do
        $RUNC_CMD exec "$central" ovn-sbctl --no-leader-only --timeout="$OVN_WAIT_TIMEOUT" wait-until Chassis "$name" >/dev/null \
            || die "chassis $name did not register in the SB"
    done
    $RUNC_CMD exec "$central" ovn-nbctl --no-leader-only --timeout="$OVN_WAIT_TIMEOUT" --wait=hv sync \
        || die "the chassis did not catch up with the NB"

    if [ "$CREATE_FAKE_VMS" = "yes" ]; then
        create_fake_vms 1
    fi
    log "OVN cluster started"
}

# Runs in a chassis node: a VM namespace joined to br-int by a veth.
VM_SCRIPT='
set -e
iface_id=$1 vm=$2 mac=$3 mtu=$4 addr=$5 gw=$6 addr6=$7 gw6=$8
ip netns add "$vm"
ip link add "$vm-p" type veth peer name "$vm" netns "$vm"
ip link set "$vm-p" up
ovs-vsctl --timeout=30 add-port br-int "$vm-p" -- set Interface "$vm-p" external_ids:iface-id="$iface_id"
ip -n "$vm" link set lo up
ip -n "$vm" link set "$vm" address "$mac" mtu "$mtu"
[ -z "$addr" ] || ip -n "$vm" addr add "$addr" dev "$vm"
[ -z "$addr6" ] || ip -n "$vm" addr add "$addr6" dev "$vm" nodad
ip -n "$vm" link set "$vm" up
[ -z "$gw" ] || ip -n "$vm" route add default via "$gw"
[ -z "$gw6" ] || ip -n "$vm" -6 route add default via "$gw6"
'

# create_fake_vm NODE IFACE-ID VM MAC ADDR/PREFIX GW [ADDR6/PREFIX GW6]
create_fake_vm() {
    local node=$1 vm=$3 pid
    $RUNC_CMD exec "$node" bash -c "$VM_SCRIPT" vm "$2" "$vm" "$4" 1400 "$5" "$6" "${7:-}" "${8:-}"
    pid=$($RUNC_CMD inspect -f '{{.State.Pid}}' "$node")
    tx_off "$pid" "$vm-p"
    nsenter --net="/proc/$pid/root/run/netns/$vm" ethtool -K "$vm" tx off >/dev/null
}

# create_host_vm BRIDGE NS MAC ADDR/PREFIX [ADDR6/PREFIX GW]: a namespace on
# the host holding an internal port of BRIDGE.
create_host_vm() {
    local br=$1 ns=$2
    ip netns add "$ns"
    host_vsctl add-port "$br" "$ns" -- set interface "$ns" type=internal
    ip link set "$ns" netns "$ns"
    ip -n "$ns" link set lo up
    ip -n "$ns" link set "$ns" address "$3"
    ip -n "$ns" addr add "$4" dev "$ns"
    [ -z "${5:-}" ] || ip -n "$ns" addr add "$5" dev "$ns" nodad
    ip -n "$ns" link set "$ns" up
    [ -z "${6:-}" ] || ip -n "$ns" route add default via "$6"
}

# The logical topology and fake VMs ovn-fake-multinode creates for AZ $1:
# sw0$az (ports 1-4, 3 and 4 on OVN's DHCP), sw1$az, public$az with a
# localnet port, router lr$az with its gateway port on ovn-gw-$az, NAT, and
# VMs in namespaces of the first two chassis; on the host, ovnfake-ext$az on
# br-ovn-ext and ovnfake-int$az on br-ovn.
create_fake_vms() {
    local az=$1 central=${CENTRAL_NAMES[0]}
    local ch_a=${CHASSIS_NAMES[0]} ch_b=${CHASSIS_NAMES[1]}

    local dyn3 dyn4 pids=()

    log "Creating the logical resources and fake VMs of AZ $az"
    dyn3=$($RUNC_CMD exec -i "$central" bash -s "$az" "$OVN_START_IC_DBS" "$OVN_WAIT_TIMEOUT" <<'EOF'
set -e
az=$1 ic_dbs=$2 timeout=$3
nb() { ovn-nbctl --no-leader-only "$@"; }
nb ls-add sw0$az -- set logical_switch sw0$az \
    other_config:subnet=1$az.0.0.0/24 other_config:exclude_ips=1$az.0.0.1..1$az.0.0.2
dhcp=$(nb create DHCP_Options cidr=1$az.0.0.0/24 \
    options:lease_time=3600 options:router=1$az.0.0.1 \
    options:server_id=1$az.0.0.1 options:server_mac=c0:ff:ee:00:00:01)
nb lsp-add sw0$az sw0$az-port1 -- lsp-set-addresses sw0$az-port1 "50:5$az:00:00:00:03 1$az.0.0.3 100$az::3" \
   -- lsp-add sw0$az sw0$az-port2 -- lsp-set-addresses sw0$az-port2 "50:5$az:00:00:00:04 1$az.0.0.4 100$az::4" \
   -- lsp-add sw0$az sw0$az-port3 -- lsp-set-addresses sw0$az-port3 "50:5$az:00:00:00:05 dynamic" \
   -- lsp-set-dhcpv4-options sw0$az-port3 $dhcp \
   -- lsp-add sw0$az sw0$az-port4 -- lsp-set-addresses sw0$az-port4 "50:5$az:00:00:00:06 dynamic" \
   -- lsp-set-dhcpv4-options sw0$az-port4 $dhcp \
   -- ls-add sw1$az \
   -- lsp-add sw1$az sw1$az-port1 -- lsp-set-addresses sw1$az-port1 "40:5$az:00:00:00:03 2$az.0.0.3 200$az::3" \
   -- lr-add lr$az \
   -- lrp-add lr$az lr$az-sw0$az 00:0$az:00:00:ff:01 1$az.0.0.1/24 100$az::a/64 \
   -- lsp-add sw0$az sw0$az-lr$az -- lsp-set-type sw0$az-lr$az router \
   -- lsp-set-addresses sw0$az-lr$az router -- lsp-set-options sw0$az-lr$az router-port=lr$az-sw0$az \
   -- lrp-add lr$az lr$az-sw1$az 00:0$az:00:00:ff:02 2$az.0.0.1/24 200$az::a/64 \
   -- lsp-add sw1$az sw1$az-lr$az -- lsp-set-type sw1$az-lr$az router \
   -- lsp-set-addresses sw1$az-lr$az router -- lsp-set-options sw1$az-lr$az router-port=lr$az-sw1$az \
   -- ls-add public$az \
   -- lrp-add lr$az lr$az-public$az 00:0$az:20:20:12:13 172.16.$az.100/24 300$az::a/64 \
   -- lsp-add public$az public$az-lr$az -- lsp-set-type public$az-lr$az router \
   -- lsp-set-addresses public$az-lr$az router -- lsp-set-options public$az-lr$az router-port=lr$az-public$az \
   -- lsp-add public$az ln-public$az -- lsp-set-type ln-public$az localnet \
   -- lsp-set-addresses ln-public$az unknown -- lsp-set-options ln-public$az network_name=public \
   -- lrp-set-gateway-chassis lr$az-public$az ovn-gw-$az 20
nb lr-nat-add lr$az dnat_and_snat 172.16.$az.110 1$az.0.0.3 sw0$az-port1 30:5$az:00:00:00:03 \
   -- lr-nat-add lr$az dnat_and_snat 300$az::c 100$az::3 sw0$az-port1 40:5$az:00:00:00:03 \
   -- lr-nat-add lr$az dnat_and_snat 172.16.$az.120 2$az.0.0.3 sw1$az-port1 30:5$az:00:00:00:04 \
   -- lr-nat-add lr$az dnat_and_snat 300$az::d 200$az::3 sw1$az-port1 40:5$az:00:00:00:04 \
   -- lr-nat-add lr$az snat 172.16.$az.100 1$az.0.0.0/24 \
   -- lr-nat-add lr$az snat 172.16.$az.100 2$az.0.0.0/24
# The transit switch, created in the IC NB, shows up in the NB through ovn-ic.
if [ "$ic_dbs" = yes ]; then
    ovn-ic-nbctl --may-exist ts-add ts1
    nb --timeout="$timeout" wait-until Logical_Switch ts1 >/dev/null
fi
# Addresses northd picked for the DHCP ports, for VMs without a DHCP client.
nb --wait=sb sync
for p in 3 4; do nb get Logical_Switch_Port sw0$az-port$p dynamic_addresses; done
EOF
    ) || die "creating the logical resources failed"
    dyn4=${dyn3#*$'\n'}; dyn3=${dyn3%%$'\n'*}
    # sw0$az-port3/4 get OVN's DHCP answers; the images have no DHCP client,
    # so their VMs take the address northd assigned ("MAC IP", quoted).
    dyn3=${dyn3//\"/}; dyn4=${dyn4//\"/}
    [ -n "${dyn3#* }" ] && [ -n "${dyn4#* }" ] || die "no dynamic addresses on sw0$az-port3/4"

    create_fake_vm "$ch_a" sw0$az-port1 sw0${az}p1 50:5$az:00:00:00:03 1$az.0.0.3/24 1$az.0.0.1 \
        100$az::3/64 100$az::a & pids+=($!)
    create_fake_vm "$ch_b" sw1$az-port1 sw1${az}p1 40:5$az:00:00:00:03 2$az.0.0.3/24 2$az.0.0.1 \
        200$az::3/64 200$az::a & pids+=($!)
    create_fake_vm "$ch_a" sw0$az-port3 sw0${az}p3 "${dyn3% *}" "${dyn3#* }/24" 1$az.0.0.1 & pids+=($!)
    create_fake_vm "$ch_b" sw0$az-port4 sw0${az}p4 "${dyn4% *}" "${dyn4#* }/24" 1$az.0.0.1 & pids+=($!)
    create_host_vm "$OVN_EXT_BR" ovnfake-ext$az 30:5$az:00:00:00:50 172.16.$az.50/24 \
        300$az::b/64 172.16.$az.100 & pids+=($!)
    create_host_vm "$OVN_BR" ovnfake-int$az 30:5$az:00:00:00:60 170.168.0.1/$IP_CIDR & pids+=($!)
    wait_all "${pids[@]}" || die "creating the fake VMs failed"
}

stop() {
    local name i pids=() ovs=yes
    log "Stopping OVN cluster"
    host_vsctl --timeout=5 show >/dev/null 2>&1 || ovs=
    for ((i = 1; i <= CENTRAL_COUNT; i++)); do
        ip netns delete ovnfake-ext$i 2>/dev/null || :
        ip netns delete ovnfake-int$i 2>/dev/null || :
        [ -z "$ovs" ] || host_vsctl --if-exists del-port ovnfake-ext$i -- --if-exists del-port ovnfake-int$i
    done
    # Host ends of the containers' veths first: removing a container does
    # not always take them along.
    if [ -n "$ovs" ]; then
        for name in $( (existing_containers; printf '%s\n' "${CENTRAL_NAMES[@]}" "${GW_NAMES[@]}" \
                        "${CHASSIS_NAMES[@]}") | sort -u); do
            del_container_ports "$name"
        done
        if [ "$OVN_BR_CLEANUP" = "yes" ]; then
            host_vsctl --if-exists del-br "$OVN_BR" -- --if-exists del-br "$OVN_EXT_BR"
        fi
    fi
    for name in $(existing_containers); do
        $RUNC_CMD rm -f -t 2 --volumes "$name" >/dev/null & pids+=($!)
    done
    wait_all "${pids[@]}"
}

case "${1:-}" in
    start)
        shift
        remove_existing=
        while getopts ":r" opt; do
            case $opt in
                r) remove_existing=1 ;;
                *) die "invalid option: -$OPTARG" ;;
            esac
        done
        if [ "$CREATE_FAKE_VMS" = "yes" ]; then
            [ "$CHASSIS_COUNT" -ge $((2 * CENTRAL_COUNT)) ] || CHASSIS_COUNT=$((2 * CENTRAL_COUNT))
            [ "$GW_COUNT" -ge "$CENTRAL_COUNT" ] || GW_COUNT=$CENTRAL_COUNT
        fi
        set_node_names
        [ -z "$remove_existing" ] || stop
        start
        ;;
    stop)
        set_node_names
        stop
        ;;
    *)
        echo "usage: $0 start [-r] | stop" >&2
        exit 1
        ;;
esac
exit 0
