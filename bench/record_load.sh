#!/bin/bash
# Records a large capture of real load for throughput measurements (root):
#   bench/record_load.sh OUT.pcap [h1|h2c] [REQUESTS]
# h2load drives nginx across the test bed of testbed.sh (pod 10.78.1.2 ->
# node -> pod 10.78.2.2, recorded at the server's interface), which this
# script creates and removes on exit, also on failure.
# h1: HTTP/1.1 keep-alive, 10 connections; h2c: prior knowledge, 10
# connections x 10 concurrent streams. The file served is 35 bytes.
set -euo pipefail
OUT=${1:?usage: record_load.sh OUT.pcap [h1|h2c] [REQUESTS]}
MODE=${2:-h1}
REQUESTS=${3:-100000}
[[ $(id -u) -eq 0 ]] || { echo "record_load.sh: run as root" >&2; exit 1; }
for t in tcpdump nginx h2load ethtool; do
  command -v $t >/dev/null || { echo "record_load.sh: needs $t (apt-get install tcpdump nginx-light nghttp2-client ethtool)" >&2; exit 1; }
done
OUT=$(realpath -m "$OUT")
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=bench/testbed.sh
. "$HERE/testbed.sh"
TMP=$(mktemp -d /tmp/l7bench.XXXXXX)
cleanup() {
  set +e
  testbed_down
  rm -rf "$TMP"
}
trap cleanup EXIT
testbed_up l7bench 10.78
# MTU-sized segments, as a capture on a pod's veth with offloads off sees them.
testbed_offloads_off

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
  server { listen 10.78.2.2:8080; root $TMP/www; }
  server { listen 10.78.2.2:8081 http2; root $TMP/www; }
}
CONF
ip netns exec $B nginx -c "$TMP/nginx.conf"
sleep 0.3
ip netns exec $B tcpdump -i eth0 -s 0 -B 262144 -U -w "$OUT" tcp 2>/dev/null &
TCPDUMP=$!
sleep 1
case $MODE in
  h1) ip netns exec $A h2load --h1 -n "$REQUESTS" -c 10 -m 1 http://10.78.2.2:8080/small.txt | grep -E "^(finished|requests|status)" ;;
  h2c) ip netns exec $A h2load -n "$REQUESTS" -c 10 -m 10 http://10.78.2.2:8081/small.txt | grep -E "^(finished|requests|status)" ;;
  *) echo "record_load.sh: mode is h1 or h2c" >&2; exit 2 ;;
esac
sleep 1
kill -INT $TCPDUMP
wait $TCPDUMP 2>/dev/null || true
ls -la "$OUT"
