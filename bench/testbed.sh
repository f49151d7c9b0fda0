# Sourced by the bench scripts that need a node: a client pod namespace
# ($A), a server pod namespace ($B) and a node namespace ($N) routing between
# them over veths ${P}a and ${P}b (node side; eth0 in each pod). Only these
# namespaces are reached: they have no route anywhere else.
#
#   testbed_up PREFIX NET     # e.g. l7ov123 10.83: sets P A B N; pods NET.1.2, NET.2.2
#   testbed_offloads_off      # MTU-sized packets everywhere (no TSO/GSO/GRO)
#   testbed_down              # kills every process in them and removes them
#
# PREFIX names the namespaces (PREFIX-a, -b, -n) and the node-side veths
# (PREFIXa, PREFIXb: at most 14 characters). $L7TAP_TESTBED_PREFIX, when
# set, replaces the script's own prefix, to keep clear of other users'
# namespaces on a shared machine.

testbed_up() {
  P=${L7TAP_TESTBED_PREFIX:-$1}
  A=$P-a B=$P-b N=$P-n
  local net=$2 ns x
  for ns in $A $B $N; do ip netns add $ns; ip -n $ns link set lo up; done
  ip link add ${P}a netns $N type veth peer name eth0 netns $A
  ip link add ${P}b netns $N type veth peer name eth0 netns $B
  ip -n $N addr add $net.1.1/24 dev ${P}a
  ip -n $N addr add $net.2.1/24 dev ${P}b
  ip -n $A addr add $net.1.2/24 dev eth0
  ip -n $B addr add $net.2.2/24 dev eth0
  for x in "$N ${P}a" "$N ${P}b" "$A eth0" "$B eth0"; do
    set -- $x
    ip -n $1 link set $2 up
  done
  ip -n $A route add default via $net.1.1
  ip -n $B route add default via $net.2.1
  ip netns exec $N sysctl -qw net.ipv4.ip_forward=1
}

testbed_offloads_off() {
  local x
  for x in "$N ${P}a" "$N ${P}b" "$A eth0" "$B eth0"; do
    set -- $x
    ip netns exec $1 ethtool -K $2 tso off gso off gro off tx off >/dev/null
  done
}

testbed_down() {
  local ns p
  [ -n "${N:-}" ] || return 0  # testbed_up never ran
  for ns in $A $B $N; do
    for p in $(ip netns pids $ns 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
  done
  sleep 0.2
  for ns in $A $B $N; do ip netns del $ns 2>/dev/null; done
}
