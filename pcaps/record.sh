#!/bin/bash
# Re-record every l7tap pcap fixture (run as root): sudo pcaps/record.sh
#
# Builds a two-namespace test bed joined by one veth pair, runs real servers
# (nginx, nghttpd, nghttpx, small python3 servers in pcaps/servers/) in the
# server namespace and real clients (curl, nghttp, h2load, python3) in the
# client namespace, and captures each fixture with tcpdump on the server's veth
# end. Traffic only ever goes to addresses inside these namespaces (or their
# loopback): the namespaces have no route anywhere else.
#
# Writes pcaps/<name>.pcap and pcaps/<name>.client.txt (what the client saw),
# plus pcaps/http1-keepalive-ng.pcapng. Everything it creates (namespaces, veth,
# processes, temp dir) is removed on exit, also on failure.
#
# Environment: OUT=dir (default: the folder of this script), ONLY="name ..."
# (record only these fixtures), NS_PREFIX=name (default l7fx: namespaces
# NS_PREFIX-client and NS_PREFIX-server, veths NS_PREFIX-c and NS_PREFIX-s; a
# prefix of at most 13 characters keeps the veth names within IFNAMSIZ).
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${OUT:-$HERE}
SERVERS=$HERE/servers
ONLY=${ONLY:-}

NS_PREFIX=${NS_PREFIX:-l7fx}
CNS=$NS_PREFIX-client
SNS=$NS_PREFIX-server
CIF=$NS_PREFIX-c
SIF=$NS_PREFIX-s
C4=10.77.0.1
S4=10.77.0.2
C6=fd00:77::1
S6=fd00:77::2
PY=/usr/bin/python3 # Debian's python3, which has python3-h2

# Ports (server side). Every fixture's capture filter is "tcp port <its port>".
P_NGINX=8080   # nginx HTTP/1.1 (IPv4, IPv6, and 127.0.0.1 as nghttpx's backend)
P_NGINX_H2=8081 # nginx h2c prior knowledge ("listen ... http2")
P_NGHTTPX=8082 # nghttpx, h2c Upgrade frontend, backend nginx 127.0.0.1:8080
P_NGHTTPD=8083 # nghttpd --no-tls
P_PY11=8090    # pcaps/servers/http1server.py v11
P_PY10=8091    # pcaps/servers/http1server.py v10 (close-delimited)
P_H2PY=8094    # pcaps/servers/h2fixture.py server (gRPC, RST_STREAM)
P_ECHO=8095    # pcaps/servers/rawtcp.py echo-server

log() { printf '== %s\n' "$*" >&2; }
die() {
  printf 'record.sh: %s\n' "$*" >&2
  exit 1
}

[[ $(id -u) -eq 0 ]] || die "run as root (network namespaces, tcpdump)"

# --- tools ------------------------------------------------------------------
need_pkgs=()
have() { command -v "$1" >/dev/null 2>&1; }
have tcpdump || need_pkgs+=(tcpdump)
have nginx || need_pkgs+=(nginx-light)
have nghttp || need_pkgs+=(nghttp2-client)
have h2load || need_pkgs+=(nghttp2-client)
have nghttpd || need_pkgs+=(nghttp2-server)
have nghttpx || need_pkgs+=(nghttp2-proxy)
have curl || need_pkgs+=(curl)
have ethtool || need_pkgs+=(ethtool)
have ip || need_pkgs+=(iproute2)
have iptables || need_pkgs+=(iptables) # encap-nflog: -j NFLOG
[[ -x $PY ]] || need_pkgs+=(python3)
if [[ -x $PY ]] && ! $PY -c 'import h2' 2>/dev/null; then need_pkgs+=(python3-h2); fi
if ((${#need_pkgs[@]})); then
  log "installing ${need_pkgs[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends "${need_pkgs[@]}" ||
    { apt-get update && apt-get install -y --no-install-recommends "${need_pkgs[@]}"; }
fi
HAVE_H2PY=1
$PY -c 'import h2' 2>/dev/null || HAVE_H2PY=0

# --- cleanup ------------------------------------------------------------------
TMP=
PIDS=()
CREATED_NS=0
EXTRA_NS=() # namespaces made by single fixtures (ipfrag-v4's router)
cleanup() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
  sleep 0.2
  for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
  wait 2>/dev/null
  if ((CREATED_NS)); then
    # Anything still running inside our own namespaces was started by us.
    for ns in "$SNS" "$CNS" "${EXTRA_NS[@]}"; do
      for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
    done
    for ns in "${EXTRA_NS[@]}"; do ip netns del "$ns" 2>/dev/null; done
    ip netns del "$SNS" 2>/dev/null
    ip netns del "$CNS" 2>/dev/null
    ip link del "$CIF" 2>/dev/null
  fi
  [[ -n $TMP && -d $TMP ]] && rm -rf "$TMP"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

TMP=$(mktemp -d /tmp/l7fx.XXXXXX)

# --- test bed -----------------------------------------------------------------
for ns in "$SNS" "$CNS"; do
  ! ip netns list | grep -qw "$ns" || die "namespace $ns exists (another run?); remove it first"
done
CREATED_NS=1
ip netns add "$SNS"
ip netns add "$CNS"
ip link add "$CIF" netns "$CNS" address 02:00:00:77:00:01 type veth \
  peer name "$SIF" netns "$SNS" address 02:00:00:77:00:02
sns() { ip netns exec "$SNS" "$@"; }
cns() { ip netns exec "$CNS" "$@"; }
for side in "$CNS $CIF $C4 $C6" "$SNS $SIF $S4 $S6"; do
  read -r ns ifc a4 a6 <<<"$side"
  ip -n "$ns" link set lo up
  ip -n "$ns" addr add "$a4/24" dev "$ifc"
  ip -n "$ns" addr add "$a6/64" dev "$ifc" nodad
  ip -n "$ns" link set "$ifc" up
done
# offloads on|off: the veth pair's TSO, GSO, GRO and checksum offload. Off (the
# default here): segments of at most one MSS and real TCP checksums. On (as veths
# come up): the stack hands TC and tcpdump skbs of up to 64 KB, and TCP
# checksums in the capture are left for the (absent) hardware to fill in.
offloads() {
  local ns ifc
  for side in "$CNS $CIF" "$SNS $SIF"; do
    read -r ns ifc <<<"$side"
    ip netns exec "$ns" ethtool -K "$ifc" tso "$1" gso "$1" gro "$1" tx "$1" >/dev/null
  done
}
offloads off

# --- content --------------------------------------------------------------------
DOC=$TMP/www
mkdir -p "$DOC" "$TMP/nginx"
{
  printf '<!DOCTYPE html>\n<html><head><title>l7tap fixture</title></head>\n<body>\n'
  for i in $(seq 1 12); do printf '<p>line %02d of the l7tap fixture index page</p>\n' "$i"; done
  printf '</body></html>\n'
} >"$DOC/index.html"
printf 'small text file for l7tap fixtures\n' >"$DOC/small.txt"
for n in a b c d e; do
  $PY -c "import sys; sys.stdout.write(''.join('%s line %03d\n' % ('$n', i) for i in range(40)))" >"$DOC/$n.txt"
done
# 1,000,000 bytes of numbered 20-byte lines: offsets are easy to read in a hex dump.
$PY -c "import sys; sys.stdout.write(''.join('large %013d\n' % i for i in range(50000)))" >"$DOC/large.bin"
# 100,000 bytes in the same style: the base of the derived TCP fixtures (derive.sh).
$PY -c "import sys; sys.stdout.write(''.join('medium %012d\\n' % i for i in range(5000)))" >"$DOC/medium.bin"
# The offload fixtures' sizes: empty, 1 KB, one byte over 64 KB (one skb cannot
# carry it), 200 KB, 1 MiB; the same bytes as downloads (size-N.bin) and uploads.
OFFLOAD_SIZES="0 1024 65537 204800 1048576"
mkdir -p "$TMP/up"
for n in $OFFLOAD_SIZES; do
  $PY -c "import sys; sys.stdout.write(''.join('%07d size $n\\n' % i for i in range($n // 16 + 1))[:$n])" >"$DOC/size-$n.bin"
  cp "$DOC/size-$n.bin" "$TMP/up/size-$n.bin"
done
touch -d '@1704067200' "$DOC"/* # fixed mtime: fixed ETag and Last-Modified
# shellcheck disable=SC2046,SC2183
ETAG=$(printf '"%x-%x"' $(stat -c '%Y %s' "$DOC/index.html")) # nginx: "mtime-size" in hex
LASTMOD='Mon, 01 Jan 2024 00:00:00 GMT'

cat >"$TMP/nginx/nginx.conf" <<EOF
daemon off;
master_process off;
worker_processes 1;
pid $TMP/nginx/nginx.pid;
error_log $TMP/nginx/error.log info;
events { worker_connections 256; }
http {
  access_log $TMP/nginx/access.log;
  client_body_temp_path $TMP/nginx/body;
  proxy_temp_path $TMP/nginx/proxy;
  fastcgi_temp_path $TMP/nginx/fastcgi;
  uwsgi_temp_path $TMP/nginx/uwsgi;
  scgi_temp_path $TMP/nginx/scgi;
  types { text/html html; text/plain txt; application/octet-stream bin; }
  default_type application/octet-stream;
  server_tokens off;
  sendfile on;
  gzip off;
  keepalive_timeout 30s;
  large_client_header_buffers 4 32k;
  client_max_body_size 2m;
  server {
    listen $S4:$P_NGINX;
    listen [$S6]:$P_NGINX;
    listen 127.0.0.1:$P_NGINX;
    root $DOC;
    # Uploads (offload fixtures): the python server counts the body it is
    # handed; nginx talks to it inside the server namespace, not on the veth.
    location = /upload { proxy_pass http://$S4:$P_PY11; }
  }
  server {
    listen $S4:$P_NGINX_H2 http2;
    root $DOC;
    location = /upload { proxy_pass http://$S4:$P_PY11; }
  }
}
EOF

# --- helpers --------------------------------------------------------------------
# bg NAME CMD...: run CMD in the server namespace in the background, log to $TMP.
bg() {
  local name=$1
  shift
  # Not through sns(): $! must be the server itself (ip netns exec execs it).
  ip netns exec "$SNS" "$@" >"$TMP/$name.log" 2>&1 &
  PIDS+=($!)
}
wait_port() { # wait_port PORT: until something listens on PORT in the server namespace
  local i
  for i in $(seq 1 100); do
    [[ -n $(sns ss -Hltn "sport = :$1") ]] && return 0
    sleep 0.05
  done
  die "nothing listens on port $1 (see $TMP/*.log)"
}

want() { [[ -z $ONLY || " $ONLY " == *" $1 "* ]]; }

CAP_PID=
CAP_NAME=
# cap_start NAME PORT [tcpdump options...]: capture "tcp port PORT" on the server's veth
# (CAP_IF: another interface; CAP_FILTER: another filter, empty for none).
cap_start() {
  CAP_NAME=$1
  local port=$2
  shift 2
  local iface=${CAP_IF:-$SIF}
  local filter=${CAP_FILTER-tcp port $port}
  rm -f "$OUT/$CAP_NAME.pcap"
  # -B: 64 KB skbs (offloads on) overflow tcpdump's default 2 MB buffer.
  ip netns exec "$SNS" tcpdump -i "$iface" -Z root --immediate-mode -U -s "${SNAPLEN:-0}" -B 32768 "$@" \
    -w "$OUT/$CAP_NAME.pcap" ${filter:+"$filter"} \
    2>"$TMP/tcpdump.$CAP_NAME.log" &
  CAP_PID=$!
  PIDS+=("$CAP_PID")
  local i
  for i in $(seq 1 100); do
    grep -q 'listening on' "$TMP/tcpdump.$CAP_NAME.log" 2>/dev/null && return 0
    sleep 0.05
  done
  die "tcpdump did not start: $(cat "$TMP/tcpdump.$CAP_NAME.log")"
}
cap_stop() {
  sleep 0.7 # let the last FIN/ACKs through and tcpdump flush them
  kill -INT "$CAP_PID"
  wait "$CAP_PID" || true
  local n
  n=$(grep -o '^[0-9]* packets captured' "$TMP/tcpdump.$CAP_NAME.log" || echo '? packets captured')
  log "$CAP_NAME: $n, $(stat -c %s "$OUT/$CAP_NAME.pcap") bytes"
  # A fixture must hold every packet: a drop would be a gap nobody chose.
  grep -q '^0 packets dropped by kernel' "$TMP/tcpdump.$CAP_NAME.log" ||
    die "$CAP_NAME: tcpdump dropped packets: $(cat "$TMP/tcpdump.$CAP_NAME.log")"
}
# largest_packet FILE: the largest original (on-the-wire) length in a pcap.
largest_packet() {
  $PY - "$1" <<'PYEOF'
import struct, sys
b = open(sys.argv[1], "rb").read()
off, top = 24, 0
while off + 16 <= len(b):
    caplen, origlen = struct.unpack("<II", b[off + 8:off + 16])
    top = max(top, origlen)
    off += 16 + caplen
print(top)
PYEOF
}
# client NAME "COMMAND AS DOCUMENTED" CMD...: run CMD in the client namespace and save
# its output (stdout and stderr) in NAME.client.txt after the documented command.
client() {
  local name=$1 shown=$2
  shift 2
  local rc=0
  {
    printf '$ %s\n' "$shown"
    cns "$@" 2>&1 || rc=$?
    [[ $rc -eq 0 ]] || printf '[client exit status %d]\n' "$rc"
  } >"$OUT/$name.client.txt"
  return 0
}

W='%{method} %{url_effective} -> %{http_code} upload=%{size_upload} download=%{size_download} connects=%{num_connects}\n'

# --- servers ------------------------------------------------------------------------
bg nginx nginx -c "$TMP/nginx/nginx.conf" -p "$TMP/nginx"
wait_port "$P_NGINX"
wait_port "$P_NGINX_H2"
bg nghttpx nghttpx --conf=/dev/null --workers=1 "--frontend=$S4,$P_NGHTTPX;no-tls" \
  "--backend=127.0.0.1,$P_NGINX" --errorlog-file="$TMP/nghttpx.err" --accesslog-file="$TMP/nghttpx.acc"
wait_port "$P_NGHTTPX"
bg nghttpd nghttpd --no-tls --address="$S4" -d "$DOC" "$P_NGHTTPD"
wait_port "$P_NGHTTPD"
bg py11 "$PY" "$SERVERS/http1server.py" v11 "$S4" "$P_PY11"
bg py10 "$PY" "$SERVERS/http1server.py" v10 "$S4" "$P_PY10"
bg echo "$PY" "$SERVERS/rawtcp.py" echo-server "$S4" "$P_ECHO"
wait_port "$P_PY11"
wait_port "$P_PY10"
wait_port "$P_ECHO"
if ((HAVE_H2PY)); then
  bg h2py "$PY" "$SERVERS/h2fixture.py" server "$S4" "$P_H2PY"
  wait_port "$P_H2PY"
fi

U=http://$S4:$P_NGINX

# --- HTTP/1 fixtures --------------------------------------------------------------
if want http1-keepalive; then
  cap_start http1-keepalive "$P_NGINX"
  client http1-keepalive "curl -sS -w '$W' -o /dev/null $U/index.html -o /dev/null $U/small.txt -o /dev/null $U/missing" \
    curl -sS -w "$W" -o /dev/null "$U/index.html" -o /dev/null "$U/small.txt" -o /dev/null "$U/missing"
  cap_stop
  if have editcap; then
    editcap -F pcapng "$OUT/http1-keepalive.pcap" "$OUT/http1-keepalive-ng.pcapng"
  else
    log "editcap missing (package tshark / wireshark-common): no http1-keepalive-ng.pcapng"
  fi
fi

if want http1-pipelining; then
  cap_start http1-pipelining "$P_NGINX"
  client http1-pipelining "python3 pcaps/servers/rawtcp.py pipeline $S4 $P_NGINX $S4:$P_NGINX" \
    "$PY" "$SERVERS/rawtcp.py" pipeline "$S4" "$P_NGINX" "$S4:$P_NGINX"
  cap_stop
fi

if want http1-chunked-response; then
  cap_start http1-chunked-response "$P_PY11"
  client http1-chunked-response "curl -sS -w '$W' -o /dev/null http://$S4:$P_PY11/chunked -o /dev/null http://$S4:$P_PY11/small" \
    curl -sS -w "$W" -o /dev/null "http://$S4:$P_PY11/chunked" -o /dev/null "http://$S4:$P_PY11/small"
  cap_stop
fi

if want http1-chunked-upload; then
  # Three pieces written to curl's stdin with pauses: curl sends them as separate chunks.
  cap_start http1-chunked-upload "$P_PY11"
  client http1-chunked-upload "(printf 'part-1 %.0s' {1..100}; sleep 0.1; printf 'part-2 %.0s' {1..150}; sleep 0.1; printf 'part-3 %.0s' {1..50}) | curl -sS -w '$W' -T - -H 'Expect:' http://$S4:$P_PY11/upload" \
    bash -c "(printf 'part-1 %.0s' {1..100}; sleep 0.1; printf 'part-2 %.0s' {1..150}; sleep 0.1; printf 'part-3 %.0s' {1..50}) | curl -sS -w '$W' -T - -H 'Expect:' http://$S4:$P_PY11/upload"
  cap_stop
fi

if want http1-head; then
  cap_start http1-head "$P_NGINX"
  client http1-head "curl -sS -I -w '$W' $U/index.html" curl -sS -I -w "$W" "$U/index.html"
  cap_stop
fi

if want http1-304; then
  cap_start http1-304 "$P_NGINX"
  client http1-304 "curl -sS -w '$W' -o /dev/null -H 'If-None-Match: $ETAG' -H 'If-Modified-Since: $LASTMOD' $U/index.html" \
    curl -sS -w "$W" -o /dev/null -H "If-None-Match: $ETAG" -H "If-Modified-Since: $LASTMOD" "$U/index.html"
  cap_stop
fi

if want http1-100-continue; then
  $PY -c "import sys; sys.stdout.write('field=' + 'c' * 2042)" >"$TMP/body2k" # 2048 bytes
  cap_start http1-100-continue "$P_PY11"
  client http1-100-continue "curl -sS -w '$W' -H 'Expect: 100-continue' -H 'Content-Type: application/x-www-form-urlencoded' --data-binary @body2k http://$S4:$P_PY11/upload  # body2k = 'field=' + 2042 x 'c' (2048 bytes)" \
    curl -sS -w "$W" -H 'Expect: 100-continue' -H 'Content-Type: application/x-www-form-urlencoded' \
    --data-binary "@$TMP/body2k" "http://$S4:$P_PY11/upload"
  cap_stop
fi

if want http1-large-download; then
  cap_start http1-large-download "$P_NGINX"
  client http1-large-download "curl -sS -w '$W' -o /dev/null $U/large.bin" curl -sS -w "$W" -o /dev/null "$U/large.bin"
  cap_stop
fi

if want http1-download-100k; then
  cap_start http1-download-100k "$P_NGINX"
  client http1-download-100k "curl -sS -w '$W' -o /dev/null $U/medium.bin" curl -sS -w "$W" -o /dev/null "$U/medium.bin"
  cap_stop
fi

if want http1-large-header; then
  BIG=$($PY -c "print('v' * 17000)")
  cap_start http1-large-header "$P_NGINX"
  client http1-large-header "curl -sS -w '$W' -o /dev/null -H 'X-Large: <17000 x v>' $U/small.txt" \
    curl -sS -w "$W" -o /dev/null -H "X-Large: $BIG" "$U/small.txt"
  cap_stop
fi

if want http1-close-delimited; then
  cap_start http1-close-delimited "$P_PY10"
  client http1-close-delimited "curl -sS -w '$W' -o /dev/null http://$S4:$P_PY10/close" \
    curl -sS -w "$W" -o /dev/null "http://$S4:$P_PY10/close"
  cap_stop
fi

if want http1-ipv6; then
  U6="http://[$S6]:$P_NGINX"
  cap_start http1-ipv6 "$P_NGINX"
  client http1-ipv6 "curl -sS -g -w '$W' -o /dev/null $U6/index.html -o /dev/null $U6/small.txt" \
    curl -sS -g -w "$W" -o /dev/null "$U6/index.html" -o /dev/null "$U6/small.txt"
  cap_stop
fi

if want http1-cooked-sll; then
  # Same kind of exchange, captured on the "any" device as Linux cooked (SLL v1) frames.
  CAP_IF=any cap_start http1-cooked-sll "$P_NGINX" -y LINUX_SLL
  client http1-cooked-sll "curl -sS -w '$W' -o /dev/null $U/small.txt" curl -sS -w "$W" -o /dev/null "$U/small.txt"
  cap_stop
fi

# --- HTTP/2 fixtures --------------------------------------------------------------
U2=http://$S4:$P_NGINX_H2
# Secrets where a client puts them: userinfo in the URL (curl turns it into
# Authorization: Basic), userinfo in Host/:authority and in an absolute-form
# target, a token in the query, Authorization, Cookie and X-Api-Key headers.
# No record may show any of them (tests/daemon/redaction_fixture_test.cc).
REDACT_Q='token=s3cr3t&user=bob'
if want http1-redaction; then
  cap_start http1-redaction "$P_NGINX"
  client http1-redaction "curl -sS -w '$W' -o /dev/null -H 'Cookie: session=c00k13v4l' -H 'X-Api-Key: k3y-v4lu3' 'http://alice:pa55@$S4:$P_NGINX/small.txt?$REDACT_Q'; curl -sS -w '$W' -o /dev/null -H 'Authorization: Bearer t0k3n-h34d3r' -H 'Host: alice:pa55@$S4:$P_NGINX' --request-target 'http://alice:pa55@$S4:$P_NGINX/small.txt?$REDACT_Q' $U/" \
    bash -c "curl -sS -w '$W' -o /dev/null -H 'Cookie: session=c00k13v4l' -H 'X-Api-Key: k3y-v4lu3' 'http://alice:pa55@$S4:$P_NGINX/small.txt?$REDACT_Q'; curl -sS -w '$W' -o /dev/null -H 'Authorization: Bearer t0k3n-h34d3r' -H 'Host: alice:pa55@$S4:$P_NGINX' --request-target 'http://alice:pa55@$S4:$P_NGINX/small.txt?$REDACT_Q' $U/"
  cap_stop
fi

if want h2c-redaction; then
  cap_start h2c-redaction "$P_NGINX_H2"
  client h2c-redaction "curl -sS --http2-prior-knowledge -w '$W' -o /dev/null -H 'Cookie: session=c00k13v4l' -H 'X-Api-Key: k3y-v4lu3' 'http://alice:pa55@$S4:$P_NGINX_H2/small.txt?$REDACT_Q'; curl -sS --http2-prior-knowledge -w '$W' -o /dev/null -H 'Authorization: Bearer t0k3n-h34d3r' -H 'Host: alice:pa55@$S4:$P_NGINX_H2' '$U2/small.txt?$REDACT_Q'" \
    bash -c "curl -sS --http2-prior-knowledge -w '$W' -o /dev/null -H 'Cookie: session=c00k13v4l' -H 'X-Api-Key: k3y-v4lu3' 'http://alice:pa55@$S4:$P_NGINX_H2/small.txt?$REDACT_Q'; curl -sS --http2-prior-knowledge -w '$W' -o /dev/null -H 'Authorization: Bearer t0k3n-h34d3r' -H 'Host: alice:pa55@$S4:$P_NGINX_H2' '$U2/small.txt?$REDACT_Q'"
  cap_stop
fi

if want h2c-prior-knowledge; then
  cap_start h2c-prior-knowledge "$P_NGINX_H2"
  client h2c-prior-knowledge "nghttp -nv $U2/a.txt $U2/b.txt $U2/c.txt $U2/d.txt $U2/e.txt" \
    nghttp -nv "$U2/a.txt" "$U2/b.txt" "$U2/c.txt" "$U2/d.txt" "$U2/e.txt"
  cap_stop
fi

if want h2c-many-streams; then
  cap_start h2c-many-streams "$P_NGINX_H2"
  client h2c-many-streams "h2load -n 60 -c 1 -m 20 $U2/small.txt" h2load -n 60 -c 1 -m 20 "$U2/small.txt"
  cap_stop
fi

if want h2c-upgrade; then
  UX=http://$S4:$P_NGHTTPX
  cap_start h2c-upgrade "$P_NGHTTPX"
  client h2c-upgrade "curl -sS --http2 -w '$W' -o /dev/null $UX/index.html -o /dev/null $UX/small.txt" \
    curl -sS --http2 -w "$W" -o /dev/null "$UX/index.html" -o /dev/null "$UX/small.txt"
  cap_stop
fi

if want h2c-hpack-reuse; then
  UD=http://$S4:$P_NGHTTPD
  cap_start h2c-hpack-reuse "$P_NGHTTPD"
  client h2c-hpack-reuse "nghttp -nv -m 3 -H 'x-trace-token: 0123456789abcdef0123456789abcdef' $UD/a.txt $UD/b.txt" \
    nghttp -nv -m 3 -H 'x-trace-token: 0123456789abcdef0123456789abcdef' "$UD/a.txt" "$UD/b.txt"
  cap_stop
fi

if want h2c-large-responses; then
  # Two ~1 MB responses at once on one h2c connection: DATA frames of both
  # streams interleave in 64 KB GSO packets, and frame headers fall anywhere
  # inside them. The fixture of the capture's HTTP/2 frame walk.
  UD=http://$S4:$P_NGHTTPD
  cap_start h2c-large-responses "$P_NGHTTPD"
  client h2c-large-responses "h2load -n 2 -c 1 -m 2 $UD/large.bin" \
    h2load -n 2 -c 1 -m 2 "$UD/large.bin"
  cap_stop
fi

if want h2c-hpack-churn; then
  # 200 sequential requests on one h2c connection, each to its own URI (every 11th one
  # that does not exist: 404), the base of the HPACK resynchronisation fixtures
  # (derive.sh cuts it). nginx adds every response header it sends to its dynamic
  # table, so the server's table keeps evicting; h2load's table holds :authority,
  # user-agent and x-l7tap-trace after the first request. Every 20th URI from the 7th
  # on has a 1800-byte pad (X and Z have 8-bit Huffman codes: sent as they are; the
  # whole target stays under l7tap's 2048-byte bound), so its HEADERS frame spans two
  # segments (nghttp2 never indexes :path).
  $PY - "$U2" >"$TMP/churn.uris" <<'PYEOF'
import sys
for i in range(1, 201):
    if i % 11 == 0:
        print("%s/missing/%d" % (sys.argv[1], i))
    elif i % 20 == 7:
        print("%s/small.txt?i=%d&pad=%s" % (sys.argv[1], i, "XZ" * 900))
    else:
        print("%s/small.txt?i=%d" % (sys.argv[1], i))
PYEOF
  cap_start h2c-hpack-churn "$P_NGINX_H2"
  client h2c-hpack-churn "h2load -n 200 -c 1 -m 1 -H 'x-l7tap-trace: 0123456789abcdef' -i churn.uris  # line N (1..200): $U2/small.txt?i=N, but $U2/missing/N when 11 divides N, and $U2/small.txt?i=N&pad=XZXZ...(1800 bytes) when N % 20 == 7" \
    h2load -n 200 -c 1 -m 1 -H 'x-l7tap-trace: 0123456789abcdef' -i "$TMP/churn.uris"
  cap_stop
fi

if ((HAVE_H2PY)); then
  if want h2c-grpc-trailers; then
    cap_start h2c-grpc-trailers "$P_H2PY"
    client h2c-grpc-trailers "python3 pcaps/servers/h2fixture.py grpc-client $S4 $P_H2PY alice nobody" \
      "$PY" "$SERVERS/h2fixture.py" grpc-client "$S4" "$P_H2PY" alice nobody
    cap_stop
  fi
  if want h2c-rst-stream; then
    UP=http://$S4:$P_H2PY
    cap_start h2c-rst-stream "$P_H2PY"
    client h2c-rst-stream "nghttp -nv $UP/ok $UP/partial $UP/refuse" nghttp -nv "$UP/ok" "$UP/partial" "$UP/refuse"
    cap_stop
  fi
else
  log "python3-h2 not available: skipping h2c-grpc-trailers and h2c-rst-stream"
fi

# --- offloads on ------------------------------------------------------------------------
# As veths come up: TSO/GSO/GRO and checksum offload on, so tcpdump (and the TC
# program) see skbs of up to 64 KB holding many segments' worth of payload. One
# connection per transfer (curl 7.88 cannot reuse an h2c prior-knowledge
# connection); uploads go to nginx's /upload, which hands the body to
# http1server.py, whose answer "received N bytes" is the server's own count.
# curl 7.88.1 can send part of an HTTP/2 request body twice when a socket write
# would block (nginx then answers 400, "client intended to send body data larger
# than declared"); a recording where any upload was not received whole is refused.
OFFLOAD_SIZES_H2="0 1024 65537 204800" # full payload: 1 MiB more would double the file
expect_received() {                    # expect_received NAME SIZES: every upload arrived whole
  local n
  for n in $2; do
    grep -qx "received $n bytes" "$OUT/$1.client.txt" ||
      die "$1: the $n-byte upload did not arrive whole (see $1.client.txt); record it again"
  done
}
expect_gso() { # expect_gso NAME: the capture holds skbs larger than one segment
  local top
  top=$(largest_packet "$OUT/$1.pcap")
  ((top > 1514)) || die "$1: largest packet $top bytes: offloads did not take effect"
  log "$1: largest packet $top bytes on the wire"
}
OW='%{method} %{url_effective} -> %{http_code} upload=%{size_upload} download=%{size_download}\n'

if want h2c-offload; then
  offloads on
  cap_start h2c-offload "$P_NGINX_H2"
  loop="for n in $OFFLOAD_SIZES_H2; do curl -sS --http2-prior-knowledge -w '$OW' -o /dev/null $U2/size-\$n.bin; curl -sS --http2-prior-knowledge -w '$OW' -H 'Content-Type: application/octet-stream' --data-binary @size-\$n.bin $U2/upload; done"
  client h2c-offload "$loop  # size-N.bin: N bytes of lines '%07d size N'" bash -c "cd '$TMP/up' && $loop"
  cap_stop
  offloads off
  expect_received h2c-offload "$OFFLOAD_SIZES_H2"
  expect_gso h2c-offload
fi

if want http1-offload; then
  # Snap length 512: each packet's headers and first ~440 payload bytes (every
  # request and response header block here fits), the original length kept,
  # so 1 MiB transfers cost a few KB. HTTP/1 bodies are sized by Content-Length,
  # so the records stay exact (flagged gap: the bodies were not all seen).
  offloads on
  SNAPLEN=512 cap_start http1-offload "$P_NGINX"
  loop="for n in $OFFLOAD_SIZES; do curl -sS -w '$OW' -o /dev/null $U/size-\$n.bin; curl -sS -w '$OW' -H 'Expect:' -H 'Content-Type: application/octet-stream' --data-binary @size-\$n.bin $U/upload; done"
  client http1-offload "$loop  # size-N.bin: N bytes of lines '%07d size N'" bash -c "cd '$TMP/up' && $loop"
  cap_stop
  offloads off
  expect_received http1-offload "$OFFLOAD_SIZES"
  expect_gso http1-offload
fi

# --- not HTTP -------------------------------------------------------------------------
if want tcp-not-http; then
  cap_start tcp-not-http "$P_ECHO"
  client tcp-not-http "python3 pcaps/servers/rawtcp.py echo-client $S4 $P_ECHO" \
    "$PY" "$SERVERS/rawtcp.py" echo-client "$S4" "$P_ECHO"
  cap_stop
fi

# --- issue 16: methods and HTTP/0.9 -------------------------------------------------------
# pcaps/servers/methodserver.py answers any method (WebDAV's, extension tokens)
# on keep-alive HTTP/1.1, and HTTP/0.9 (a version-less request line) with the
# body alone, then the close. Started only when one of these fixtures is wanted.
P_METHODS=8161 # pcaps/servers/methodserver.py server
if want http1-webdav-methods || want http1-09; then
  bg methods "$PY" "$SERVERS/methodserver.py" server "$S4" "$P_METHODS"
  wait_port "$P_METHODS"
fi
UM=http://$S4:$P_METHODS
XML='Content-Type: application/xml'

if want http1-webdav-methods; then
  # Two connections (one curl each, --next keeps the connection): WebDAV
  # methods, then extension tokens llhttp does not know (BREW, X-CUSTOM-1,
  # QUERY), bodies on some, and a GET last.
  m1=(-sS -w "$W" -o /dev/null -X PROPFIND -H 'Depth: 1' -H "$XML"
    --data-binary '<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>' "$UM/dav/"
    --next -sS -w "$W" -o /dev/null -X MKCOL "$UM/dav/new/"
    --next -sS -w "$W" -o /dev/null -X LOCK -H "$XML"
    --data-binary '<?xml version="1.0"?><D:lockinfo xmlns:D="DAV:"><D:lockscope><D:exclusive/></D:lockscope><D:locktype><D:write/></D:locktype></D:lockinfo>' "$UM/dav/file.txt"
    --next -sS -w "$W" -o /dev/null -X SEARCH -H "$XML"
    --data-binary '<?xml version="1.0"?><D:searchrequest xmlns:D="DAV:"><D:basicsearch/></D:searchrequest>' "$UM/dav/")
  m2=(-sS -w "$W" -o /dev/null -X PROPPATCH -H "$XML"
    --data-binary '<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><D:displayname>x</D:displayname></D:prop></D:set></D:propertyupdate>' "$UM/dav/file.txt"
    --next -sS -w "$W" -o /dev/null -X BREW -H 'Content-Type: message/coffeepot' --data-binary 'start' "$UM/pot"
    --next -sS -w "$W" -o /dev/null -X X-CUSTOM-1 "$UM/custom?a=1"
    --next -sS -w "$W" -o /dev/null -X QUERY -H 'Content-Type: text/plain' --data-binary 'select all' "$UM/query"
    --next -sS -w "$W" -o /dev/null "$UM/after")
  cap_start http1-webdav-methods "$P_METHODS"
  client http1-webdav-methods "curl ${m1[*]@Q}; curl ${m2[*]@Q}" bash -c 'curl "$@"' _ "${m1[@]}"
  cns curl "${m2[@]}" >>"$OUT/http1-webdav-methods.client.txt" 2>&1 ||
    printf '[client exit status %d]\n' "$?" >>"$OUT/http1-webdav-methods.client.txt"
  cap_stop
fi

if want http1-09; then
  cap_start http1-09 "$P_METHODS"
  client http1-09 "python3 pcaps/servers/methodserver.py get09 $S4 $P_METHODS /hello.txt  # printf 'GET /hello.txt\r\n' | nc -N" \
    "$PY" "$SERVERS/methodserver.py" get09 "$S4" "$P_METHODS" /hello.txt
  cap_stop
fi
# --- end of issue 16: methods and HTTP/0.9 --------------------------------------------------

# --- issue 16: encapsulations and fragments ------------------------------------------
# Replay's decapsulation and IP reassembly, from real kernels: HTTP over VXLAN overlays
# captured on the underlay veth, through netfilter's NFLOG, and IP fragments made by a
# router and by VXLAN devices whose outer packets exceed the underlay MTU. One server,
# http1server.py v11 on [::]:$P_ENCAP (dual stack), answers on every address below. This
# kernel has no GRE, IP-in-IP, Geneve or PPP modules: those fixtures are rewrapped from
# recorded ones with pcapedit (derive.sh). Devices made inside our namespaces have short
# fixed names: only namespace names and the first veth pair are visible outside them.
P_ENCAP=8099
ENCAP_FIXTURES="encap-vxlan encap-vxlan6 encap-vxlan-fragmented encap-nflog ipfrag-v4"
encap_wanted=0
for f in $ENCAP_FIXTURES; do want "$f" && encap_wanted=1; done
if ((encap_wanted)); then
  bg pyencap "$PY" "$SERVERS/http1server.py" v11 :: "$P_ENCAP"
  wait_port "$P_ENCAP"
  # 4,000 bytes of numbered 16-byte lines: three full segments and a bit.
  $PY -c "import sys; sys.stdout.write(''.join('line %010d\\n' % i for i in range(250)))" >"$TMP/body4k"
  $PY -c "import sys; sys.stdout.write(''.join('line %010d\\n' % i for i in range(125)))" >"$TMP/body2k"
fi
# VXLAN and fragments outside the TCP header: the port filter would miss them.
VX_FILTER='udp port 4789 or (ip and ip[6:2] & 0x3fff != 0) or (ip6 and ip6[6] == 44)'

# encap_client NAME HOST BODY: GET /small, then POST BODY to /upload, keep-alive (one
# connection: curl reuses it across --next).
encap_client() {
  local name=$1 host=$2 body=$3 url
  url="http://$host:$P_ENCAP"
  client "$name" "curl -sS -g -w '$W' -o /dev/null $url/small --next -sS -g -w '$W' -o /dev/null -H 'Expect:' -H 'Content-Type: application/octet-stream' --data-binary @$body $url/upload  # $body: lines 'line %010d'" \
    curl -sS -g -w "$W" -o /dev/null "$url/small" --next -sS -g -w "$W" -o /dev/null -H 'Expect:' \
    -H 'Content-Type: application/octet-stream' --data-binary "@$TMP/$body" "$url/upload"
}
# vxlan_pair DEV VNI C_UNDERLAY S_UNDERLAY [MTU]: a VXLAN device DEV in both namespaces,
# each sending to the other's underlay address on the first veth pair, UDP port 4789.
# With MTU the device is not bound to the veth (a bound one cannot exceed the veth's
# MTU less the 50 or 70 bytes of outer headers); the underlay route still picks the veth.
vxlan_pair() {
  local dev=$1 vni=$2 cu=$3 su=$4 mtu=${5:-} ns ifc local remote mac
  for side in "$CNS $CIF $cu $su 01" "$SNS $SIF $su $cu 02"; do
    read -r ns ifc local remote mac <<<"$side"
    local link=() bind=(dev "$ifc")
    [[ -z $mtu ]] || { link=(mtu "$mtu"); bind=(); }
    ip -n "$ns" link add "$dev" address "02:00:00:78:$(printf %02x "$vni"):$mac" "${link[@]}" type vxlan \
      id "$vni" local "$local" remote "$remote" dstport 4789 "${bind[@]}"
    ip netns exec "$ns" ethtool -K "$dev" tso off gso off gro off tx off >/dev/null
    ip -n "$ns" link set "$dev" up
  done
}
vxlan_del() { ip -n "$CNS" link del "$1"; ip -n "$SNS" link del "$1"; }
# overlay_addr DEV C_ADDR S_ADDR PLEN: addresses on the overlay device of each side.
overlay_addr() {
  local nodad=
  [[ $2 != *:* ]] || nodad=nodad
  ip -n "$CNS" addr add "$2/$4" dev "$1" $nodad
  ip -n "$SNS" addr add "$3/$4" dev "$1" $nodad
}
# lock_mtu DEV C_ADDR S_ADDR MTU: host routes across DEV whose path MTU never drops, so
# TCP keeps sending MTU-sized packets however the tunnel under it fares.
lock_mtu() {
  ip -n "$CNS" route add "$3" dev "$1" mtu lock "$4"
  ip -n "$SNS" route add "$2" dev "$1" mtu lock "$4"
}

if want encap-vxlan; then
  # IPv4 underlay (the first veth pair), IPv4 overlay 10.78.0.0/24, VNI 42, MTU 1450.
  vxlan_pair vx42 42 "$C4" "$S4"
  overlay_addr vx42 10.78.0.1 10.78.0.2 24
  CAP_FILTER=$VX_FILTER cap_start encap-vxlan "$P_ENCAP"
  encap_client encap-vxlan 10.78.0.2 body2k
  cap_stop
  vxlan_del vx42
fi

if want encap-vxlan6; then
  # IPv6 underlay (fd00:77::/64), VNI 43, MTU 1430: one connection over an IPv4 overlay
  # and one over an IPv6 overlay.
  vxlan_pair vx43 43 "$C6" "$S6"
  overlay_addr vx43 10.79.0.1 10.79.0.2 24
  overlay_addr vx43 fd00:79::1 fd00:79::2 64
  CAP_FILTER=$VX_FILTER cap_start encap-vxlan6 "$P_ENCAP"
  encap_client encap-vxlan6 10.79.0.2 body2k
  mv "$OUT/encap-vxlan6.client.txt" "$TMP/vx6-a.txt"
  encap_client encap-vxlan6 "[fd00:79::2]" body2k
  cat "$TMP/vx6-a.txt" "$OUT/encap-vxlan6.client.txt" >"$TMP/vx6-b.txt"
  mv "$TMP/vx6-b.txt" "$OUT/encap-vxlan6.client.txt"
  cap_stop
  vxlan_del vx43
fi

if want encap-vxlan-fragmented; then
  # The VXLAN device's MTU is the underlay's (1500), so a full-size inner packet makes a
  # 1550-byte outer packet: the sending kernel fragments it (the outer DF bit is clear by
  # default). The inner routes' MTU is locked, or the tunnel's first PMTU update would
  # shrink TCP's segments to fit.
  vxlan_pair vx44 44 "$C4" "$S4" 1500
  overlay_addr vx44 10.81.0.1 10.81.0.2 24
  lock_mtu vx44 10.81.0.1 10.81.0.2 1500
  CAP_FILTER=$VX_FILTER cap_start encap-vxlan-fragmented "$P_ENCAP"
  encap_client encap-vxlan-fragmented 10.81.0.2 body4k
  cap_stop
  vxlan_del vx44
fi

# No ipfrag-v6 here: the same over an IPv6 underlay does not fragment (the kernel drops
# the 1570-byte outer IPv6 packets; an IPv6 tunnel endpoint does not fragment them), and
# Linux routers never fragment IPv6. derive.sh makes ipfrag-v6 with pcapedit fragment.

if want encap-nflog; then
  # Link type NFLOG: netfilter hands tcpdump the IP packets the rules match (the
  # server's input and output of one connection on the first veth pair).
  sns iptables -A INPUT -p tcp --dport "$P_ENCAP" -j NFLOG --nflog-group 5 --nflog-prefix l7fx-in
  sns iptables -A OUTPUT -p tcp --sport "$P_ENCAP" -j NFLOG --nflog-group 5 --nflog-prefix l7fx-out
  CAP_IF=nflog:5 CAP_FILTER='' cap_start encap-nflog "$P_ENCAP"
  encap_client encap-nflog "$S4" body2k
  sleep 1.5 # nfnetlink_log sends its queue to tcpdump at least every second
  cap_stop
  sns iptables -F INPUT
  sns iptables -F OUTPUT
fi

if want ipfrag-v4; then
  # client 10.80.1.1 -- 10.80.1.254 router 10.80.2.254 (MTU 576) -- 10.80.2.2 server.
  # The client sends without DF (ip_no_pmtu_disc), so the router fragments its 1500-byte
  # packets; captured as the server receives them. The server's route back has MTU 576
  # (a veth drops what exceeds its receiving end's MTU) but advertises MSS 1460.
  RNS=$NS_PREFIX-router
  ! ip netns list | grep -qw "$RNS" || die "namespace $RNS exists (another run?); remove it first"
  ip netns add "$RNS"
  EXTRA_NS+=("$RNS")
  ip link add c-r netns "$CNS" address 02:00:00:80:01:01 type veth peer name r-c netns "$RNS" address 02:00:00:80:01:fe
  ip link add s-r netns "$SNS" address 02:00:00:80:02:02 type veth peer name r-s netns "$RNS" address 02:00:00:80:02:fe
  for l in "$CNS c-r 10.80.1.1/24" "$RNS r-c 10.80.1.254/24" "$RNS r-s 10.80.2.254/24" "$SNS s-r 10.80.2.2/24"; do
    read -r ns ifc a <<<"$l"
    ip -n "$ns" addr add "$a" dev "$ifc"
    ip netns exec "$ns" ethtool -K "$ifc" tso off gso off gro off tx off >/dev/null
    ip -n "$ns" link set "$ifc" up
  done
  ip -n "$RNS" link set lo up
  ip -n "$RNS" link set r-s mtu 576
  ip netns exec "$RNS" sysctl -qw net.ipv4.ip_forward=1
  ip -n "$CNS" route add 10.80.2.0/24 via 10.80.1.254
  ip -n "$SNS" route add 10.80.1.0/24 via 10.80.2.254 mtu 576 advmss 1460
  cns sysctl -qw net.ipv4.ip_no_pmtu_disc=1
  CAP_IF=s-r CAP_FILTER='host 10.80.1.1' cap_start ipfrag-v4 "$P_ENCAP"
  encap_client ipfrag-v4 10.80.2.2 body4k
  cap_stop
  cns sysctl -qw net.ipv4.ip_no_pmtu_disc=0
  ip netns del "$RNS"
  EXTRA_NS=()
fi

log "done"
