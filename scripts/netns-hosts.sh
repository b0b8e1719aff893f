#!/usr/bin/env bash
# N hosts made on this machine, for the multi-host tests: each a Linux network namespace with its own
# network stack, hostname and TMPDIR, joined by one bridge (10.77.0.0/24), all sharing the file system
# as cluster nodes share /shared. Runs COMMAND with a hostfile of them and the Open MPI settings that
# launch across them over TCP (the remote daemons are started by an rsh agent that enters the host's
# namespace instead of ssh-ing), then removes the namespaces, links and files, even when COMMAND fails.
# Needs root.
#   scripts/netns-hosts.sh [--hosts N] [--rate RATE] COMMAND [ARG ...]
#   scripts/netns-hosts.sh swift test --skip-build --filter MultiHostTests
#   scripts/netns-hosts.sh --rate 1gbit bash      # links shaped to 1 Gbit/s (tc tbf), a shell to try things
# COMMAND sees: DIGITS_DIST_HOSTFILE (one line per host, `ADDRESS slots=1`), DIGITS_DIST_HOSTS (the
# addresses), DIGITS_DIST_ON_HOST (`$DIGITS_DIST_ON_HOST ADDRESS CMD ...` runs CMD on that host: start
# mpirun there, as on a login node), and OMPI_MCA_* for the agent and the interfaces.
set -euo pipefail
hosts=2
rate=""
while [ $# -gt 0 ]; do
    case $1 in
        --hosts) hosts=$2; shift 2 ;;
        --rate) rate=$2; shift 2 ;;
        *) break ;;
    esac
done
[ $# -gt 0 ] || { echo "usage: scripts/netns-hosts.sh [--hosts N] [--rate RATE] COMMAND [ARG ...]" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "netns-hosts: needs root (network namespaces)" >&2; exit 2; }

subnet=10.77.0
bridge=ddbr0
state=$(mktemp -d /tmp/digits-dist-hosts.XXXXXX)
chmod 755 "$state"
cleanup() {
    status=$?
    for i in $(seq "$hosts"); do ip netns delete "ddhost$i" 2>/dev/null || true; done
    ip link delete "$bridge" 2>/dev/null || true
    rm -rf "$state"
    exit $status
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# `on ADDRESS CMD ...`: CMD inside that host's namespace, with its own hostname (Open MPI keys its session
# folder by hostname) and its own TMPDIR.
cat >"$state/on" <<EOF
#!/bin/bash
address=\$1
shift
i=\${address##*.}
i=\$((i - 10))
if [ \$i -lt 1 ] || [ \$i -gt $hosts ] || [ "\${address%.*}" != $subnet ]; then
    echo "ssh: connect to host \$address: No route to host (not one of the $hosts hosts $subnet.11-$((10 + hosts)))" >&2
    exit 255
fi
export TMPDIR=$state/ddhost\$i/tmp
exec ip netns exec ddhost\$i unshare --uts sh -c 'hostname "\$0" && exec "\$@"' ddhost\$i "\$@"
EOF
# The rsh agent: called as `AGENT [ssh options] HOST COMMAND...`, runs COMMAND through a shell on HOST.
cat >"$state/rsh" <<EOF
#!/bin/bash
while [ \$# -gt 0 ]; do
    case \$1 in
        -[bcDEeFIiJLlmOopQRSWw]) shift 2 ;;
        -*) shift ;;
        *) break ;;
    esac
done
host=\$1
shift
exec $state/on "\$host" sh -c "\$*"
EOF
chmod 755 "$state/on" "$state/rsh"

ip link add "$bridge" type bridge
ip addr add "$subnet.1/24" dev "$bridge"
ip link set "$bridge" up
: >"$state/hostfile"
addresses=()
for i in $(seq "$hosts"); do
    namespace=ddhost$i
    address=$subnet.$((10 + i))
    ip netns add "$namespace"
    ip link add "ddveth$i" type veth peer name eth0 netns "$namespace"
    ip link set "ddveth$i" master "$bridge" up
    ip -n "$namespace" addr add "$address/24" dev eth0
    ip -n "$namespace" link set eth0 up
    ip -n "$namespace" link set lo up
    if [ -n "$rate" ]; then
        tc qdisc add dev "ddveth$i" root tbf rate "$rate" burst 256kb latency 50ms
        ip netns exec "$namespace" tc qdisc add dev eth0 root tbf rate "$rate" burst 256kb latency 50ms
    fi
    mkdir -p "$state/$namespace/tmp"
    echo "$address slots=1" >>"$state/hostfile"
    addresses+=("$address")
done
echo "netns-hosts: ${hosts} hosts ${addresses[*]} on $bridge${rate:+, links shaped to $rate}"

export DIGITS_DIST_HOSTFILE=$state/hostfile DIGITS_DIST_HOSTS="${addresses[*]}" DIGITS_DIST_ON_HOST=$state/on
export OMPI_MCA_plm_rsh_agent=$state/rsh OMPI_MCA_plm_rsh_no_tree_spawn=1
export DIGITS_DIST_NETWORK=$subnet.0/24
"$@"
