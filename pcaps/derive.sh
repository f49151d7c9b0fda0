#!/bin/bash
# Regenerate the derived (synthetic TCP edge case) fixtures from the recorded ones:
#   pcaps/derive.sh PATH/TO/pcapedit
# (build it with: cmake --build BUILD --target pcapedit; it lands in BUILD/pcaps/pcapedit)
#
# Packet numbers are looked up with tshark in the recorded captures, so this keeps working
# after pcaps/record.sh re-recorded them. Run record.sh first if a base capture is missing.
set -euo pipefail

E=${1:?usage: derive.sh PATH/TO/pcapedit}
E=$(cd "$(dirname "$E")" && pwd)/$(basename "$E")
[[ -x $E ]] || { echo "derive.sh: $E is not executable" >&2; exit 1; }
command -v tshark >/dev/null || { echo "derive.sh: needs tshark (apt-get install tshark)" >&2; exit 1; }
cd "$(dirname "$0")"

DL=http1-download-100k.pcap # GET /medium.bin (100,000 bytes) from nginx on port 8080
KA=http1-keepalive.pcap     # 3 GETs on one connection to nginx on port 8080
H2=h2c-many-streams.pcap    # h2load, 60 requests, 20 streams at a time, nginx h2c on 8081
for f in "$DL" "$KA" "$H2"; do [[ -f $f ]] || { echo "derive.sh: $f missing: run record.sh" >&2; exit 1; }; done

# nth FILE FILTER N: frame number of the Nth packet of FILE matching the display filter.
nth() {
  local n
  n=$(tshark -r "$1" -Y "$2" -T fields -e frame.number 2>/dev/null | sed -n "${3}p")
  [[ -n $n ]] || { echo "derive.sh: no packet #$3 matching '$2' in $1" >&2; exit 1; }
  echo "$n"
}
edit() { # edit OUT_NAME IN OPS...
  local out=$1 in=$2
  shift 2
  "$E" "$in" "$out.pcap" "$@"
  printf '%-28s <- %-26s %s (%s bytes)\n' "$out.pcap" "$in" "$*" "$(stat -c %s "$out.pcap")"
}

# Full-size (1448-byte) body segments from the server in the 100k download; the 30th
# to 32nd are in the middle of the body (the body has ~69 segments).
SEG='tcp.srcport==8080 && tcp.len==1448'
S30=$(nth "$DL" "$SEG" 30)
S31=$(nth "$DL" "$SEG" 31)
S32=$(nth "$DL" "$SEG" 32)

edit tcp-out-of-order "$DL" "swap:$S30:$S31"
edit tcp-retransmission "$DL" "dup:$S30@$S32"
# S31 arrives before S30 and is buffered; a second copy of S31 whose payload byte 100
# ('0'..'9' or ' ' in the original) became 'X' arrives while the first is still buffered,
# so the two disagreeing copies can be compared (the first one wins: Linux drops a segment
# whose bytes are all queued already).
edit tcp-conflicting-overlap "$DL" "swap:$S30:$S31" "dup:$S30" "corrupt:$((S30 + 1)):100:0x58"
# Evasion by overlap: the first request's path arrives out of order as "admin.html" (stream
# bytes 5..14 of "GET /index.html ...", five bytes changed), then a copy of bytes 5..87 with
# the original path (same start, reaching further: Linux replaces the queued copy), then
# "GET /" (bytes 0..4). Linux's server read GET /index.html; first-wins would say /admin.html.
REQ=$(nth "$KA" 'http.request' 1)
REQLEN=$(tshark -r "$KA" -Y "frame.number == $REQ" -T fields -e tcp.len 2>/dev/null)
edit tcp-evasion-overlap "$KA" "dup:$REQ" "dup:$REQ" "slice:$REQ:5:10" \
  "corrupt:$REQ:0:0x61" "corrupt:$REQ:1:0x64" "corrupt:$REQ:2:0x6d" "corrupt:$REQ:3:0x69" \
  "corrupt:$REQ:4:0x6e" "slice:$((REQ + 1)):5:$((REQLEN - 5))" "slice:$((REQ + 2)):0:5"
edit tcp-loss "$DL" "drop:$S30"
edit tcp-seq-wrap "$DL" "seqwrap:server:50000"
edit tcp-truncated "$DL" "trim:$S30:100"
edit midstream-body "$DL" "cut:$S30"

# Keep-alive: the first server segment with payload after "GET /small.txt" carries the
# start of that response (status line and headers).
REQ2=$(nth "$KA" 'http.request.uri == "/small.txt"' 1)
RSP2=$(nth "$KA" "frame.number > $REQ2 && tcp.srcport==8080 && tcp.len>0" 1)
edit tcp-loss-header "$KA" "drop:$RSP2"
edit midstream-http1 "$KA" "cut:$REQ2"
# L4 events inside the second exchange only: the response's first segment (headers) lost
# before the capture point and resent after its second (the body arrives first: out of
# order), the server advertising a zero window on that body segment, and the request
# sent twice (a client retransmission). The first and third exchanges carry none.
RSP2B=$(nth "$KA" "frame.number > $REQ2 && tcp.srcport==8080 && tcp.len>0" 2)
edit tcp-exchange-l4 "$KA" "swap:$RSP2:$RSP2B" "window:$RSP2:0" "dup:$REQ2"

# h2load: the second client segment with payload carries its second batch of requests,
# whose HPACK blocks refer to dynamic-table entries made by the first batch.
C2=$(nth "$H2" 'tcp.dstport==8081 && tcp.len>0' 2)
edit midstream-h2 "$H2" "cut:$C2"
# The server segment with stream 3's response HEADERS sent twice, while streams 3-39 are in
# flight (h2load opened 1-39 in its first segment; stream 1 has ended): each of those 19
# records carries the retransmission, stream 1 and streams 41-119 do not.
H3=$(tshark -r "$H2" -d tcp.port==8081,http2 -Y 'tcp.srcport==8081 && http2.type==1 && http2.streamid==3' \
  -T fields -e frame.number 2>/dev/null | head -1)
[[ -n $H3 ]] || { echo "derive.sh: no HEADERS of stream 3 from the server in $H2" >&2; exit 1; }
edit tcp-exchange-l4-h2 "$H2" "dup:$H3"

# h2load, 200 requests one at a time on one connection (h2c-hpack-churn): cut at several
# points, each keeping the 60 requests after the cut point (the tail goes: smaller files).
# Request N is on stream 2N-1; with one request at a time, every packet of exchange N
# comes before request N+1's HEADERS.
CH=h2c-hpack-churn.pcap
[[ -f $CH ]] || { echo "derive.sh: $CH missing: run record.sh" >&2; exit 1; }
LAST=$(tshark -r "$CH" -T fields -e frame.number 2>/dev/null | tail -1)
h2nth() { # h2nth FILTER: the first packet of $CH matching FILTER, port 8081 decoded as h2c
  local n
  n=$(tshark -r "$CH" -d tcp.port==8081,http2 -Y "$1" -T fields -e frame.number 2>/dev/null | head -1)
  [[ -n $n ]] || { echo "derive.sh: no packet matching '$1' in $CH" >&2; exit 1; }
  echo "$n"
}
# req N: the client packet that completes request N's HEADERS frame.
req() { h2nth "tcp.dstport==8081 && http2.type==1 && http2.streamid==$((2 * $1 - 1))"; }
# first_seg N: the client packet that starts request N's HEADERS (N's HEADERS spans two).
prev_client() { # prev_client FRAME: the last client packet with payload before FRAME
  tshark -r "$CH" -Y "tcp.dstport==8081 && tcp.len>0 && frame.number < $1" -T fields -e frame.number 2>/dev/null | tail -1
}
tail_from() { echo "drop:$(req "$1")-$LAST"; } # drops request N and everything after it

# After the preface: h2load's first segment holds the preface, SETTINGS, WINDOW_UPDATE
# and request 1's HEADERS; the capture starts with the packet after it.
PRE=$(nth "$CH" 'tcp.dstport==8081 && tcp.len>0' 1)
edit midstream-h2-preface "$CH" "$(tail_from 61)" "cut:$((PRE + 1))"
edit midstream-h2-after1 "$CH" "$(tail_from 62)" "cut:$(req 2)"
edit midstream-h2-after10 "$CH" "$(tail_from 71)" "cut:$(req 11)"
edit midstream-h2-after100 "$CH" "$(tail_from 161)" "cut:$(req 101)"
# Request 47's HEADERS frame spans two segments: start with the second one.
edit midstream-h2-inside-headers "$CH" "$(tail_from 108)" "cut:$(req 47)"
# Lost segments inside HEADERS frames, on a connection seen from its start: the first
# segment of request 27's HEADERS, the second of request 47's, and the server segment
# holding the response HEADERS of request 60. Highest packet first, so the numbers hold.
R60=$(h2nth "tcp.srcport==8081 && http2.type==1 && http2.streamid==119")
edit tcp-loss-h2-headers "$CH" "$(tail_from 91)" "drop:$R60" "drop:$(req 47)" "drop:$(prev_client "$(req 27)")"

# --- issue 16: tunnels this kernel cannot make, another link type, IPv6 fragments -------
# record.sh records VXLAN, NFLOG and IPv4 fragments from real kernels. This kernel has no
# GRE, IP-in-IP, sit, ip6tnl, Geneve or PPP modules, and an IPv6 tunnel endpoint here drops
# oversize packets instead of fragmenting them, so these are recorded captures wrapped again
# by pcapedit (valid outer headers; the client side's outer address on client packets).
# tshark must dissect the same HTTP messages in each as in its base capture.
V6=http1-ipv6.pcap # 2 GETs on one connection to nginx on [fd00:77::2]:8080
[[ -f $V6 ]] || { echo "derive.sh: $V6 missing: run record.sh" >&2; exit 1; }
wrap() { # wrap OUT_NAME IN SUBCOMMAND ARGS...
  local out=$1 in=$2 want got
  shift 2
  "$E" "$@" "$in" "$out.pcap"
  want=$(tshark -r "$in" -Y http 2>/dev/null | wc -l)
  got=$(tshark -r "$out.pcap" -Y http 2>/dev/null | wc -l)
  [[ $want == "$got" ]] || { echo "derive.sh: tshark finds $got HTTP messages in $out.pcap, $want in $in" >&2; exit 1; }
  printf '%-28s <- %-26s %s (%s bytes)\n' "$out.pcap" "$in" "$*" "$(stat -c %s "$out.pcap")"
}
O4=(--outer-src 192.0.2.1 --outer-dst 198.51.100.2) # TEST-NET-1 client side, TEST-NET-2 server side
O6=(--outer-src 2001:db8::1 --outer-dst 2001:db8::2)
wrap encap-gre "$KA" encap --type gre-key --id 1001 "${O4[@]}"
wrap encap-gretap "$KA" encap --type gretap --id 1002 "${O4[@]}"
wrap encap-ipip "$KA" encap --type ipip "${O4[@]}"
wrap encap-6in4 "$V6" encap --type 6in4 "${O4[@]}"
wrap encap-4in6 "$KA" encap --type 4in6 "${O6[@]}"
wrap encap-geneve "$KA" encap --type geneve --id 4242 "${O4[@]}"
wrap encap-pppoe "$KA" encap --type pppoe --id 0x1234
wrap link-chdlc "$KA" relink --dlt c-hdlc
# IPv6 fragments of TCP as a sending host makes them: every packet over 280 bytes (the
# response headers and the 650-byte body) in fragments of at most 280.
wrap ipfrag-v6 "$V6" fragment --mtu 280
