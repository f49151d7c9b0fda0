#!/bin/bash
# Records a large capture of real load for throughput measurements (root):
#   bench/record_load.sh OUT.pcap [h1|h2c] [REQUESTS]
# h2load drives nginx across a veth pair between two network namespaces this
# script creates (10.78.0.1 -> 10.78.0.2) and removes on exit, also on failure.
# h1: HTTP/1.1 keep-alive, 10 connections; h2c: prior knowledge, 10
# connections x 10 concurrent streams. The file served is 35 bytes.
set -euo pipefail
OUT=${1:?usage: record_load.sh OUT.pcap [h1|h2c] [REQUESTS]}
MODE=${2:-h1}
N=${3:-100000}
[[ $(id -u) -eq 0 ]] || { echo "record_load.sh: run as root" >&2; exit 1; }
for t in tcpdump nginx h2load ethtool; do
  command -v $t >/dev/null || { echo "record_load.sh: needs $t (apt-get install tcpdump nginx-light nghttp2-client ethtool)" >&2; exit 1; }
done
OUT=$(realpath -m "$OUT")
CNS=l7bench-client SNS=l7bench-server TMP=$(mktemp -d /tmp/l7bench.XXXXXX)
cleanup() {
  set +e
  for ns in $SNS $CNS; do
    for p in $(ip netns pids $ns 2>/dev/null); do kill -9 $p 2>/dev/null; done
    ip netns del $ns 2>/dev/null
  done
  rm -rf "$TMP"
}
trap cleanup EXIT
ip netns add $SNS
ip netns add $CNS
ip link add l7b-c netns $CNS type veth peer name l7b-s netns $SNS
ip -n $CNS addr add 10.78.0.1/24 dev l7b-c
ip -n $SNS addr add 10.78.0.2/24 dev l7b-s
for ns in $CNS $SNS; do ip -n $ns link set lo up; done
ip -n $CNS link set l7b-c up
ip -n $SNS link set l7b-s up
# MTU-sized segments, as a capture on a pod's veth with offloads off sees them.
ip netns exec $CNS ethtool -K l7b-c tso off gso off gro off tx off >/dev/null
ip netns exec $SNS ethtool -K l7b-s tso off gso off gro off tx off >/dev/null

mkdir -p "$TMP/www" "$TMP/logs"
printf 'thirty-five bytes of small file...\n' >"$TMP/www/small.txt"
cat >"$TMP/nginx.conf" <<CONF
worker_processes 1;
pid $TMP/nginx.pid;
error_log $TMP/logs/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $TMP; proxy_temp_path $TMP; fastcgi_temp_path $TMP;
  uwsgi_temp_path $TMP; scgi_temp_path $TMP;
  keepalive_requests 1000000;
  server { listen 10.78.0.2:8080; root $TMP/www; }
  server { listen 10.78.0.2:8081 http2; root $TMP/www; }
}
CONF
ip netns exec $SNS nginx -c "$TMP/nginx.conf"
sleep 0.3
ip netns exec $SNS tcpdump -i l7b-s -s 0 -B 262144 -U -w "$OUT" tcp 2>/dev/null &
TCPDUMP=$!
sleep 1
case $MODE in
  h1) ip netns exec $CNS h2load --h1 -n "$N" -c 10 -m 1 http://10.78.0.2:8080/small.txt | grep -E "^(finished|requests|status)" ;;
  h2c) ip netns exec $CNS h2load -n "$N" -c 10 -m 10 http://10.78.0.2:8081/small.txt | grep -E "^(finished|requests|status)" ;;
  *) echo "record_load.sh: mode is h1 or h2c" >&2; exit 2 ;;
esac
sleep 1
kill -INT $TCPDUMP
wait $TCPDUMP 2>/dev/null || true
ls -la "$OUT"
