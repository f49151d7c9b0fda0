/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The kernel/user ABI of l7tap: the events the TC program writes into the
 * ring buffer and the pcap source builds in user space. Included by the BPF
 * program (C, uapi types only) and by C++. Every struct has a fixed layout
 * with explicit padding; the size asserts below hold on both sides.
 */
#ifndef L7TAP_ABI_H
#define L7TAP_ABI_H

#include <linux/types.h>

/* Largest payload window a single event can carry. The kernel program clamps
 * its configured window to this; replay may use larger windows because it
 * builds events in user space (see window_policy.h). */
#define L7TAP_MAX_EVENT_PAYLOAD 4096

/* Default sizes of the flows map (and of the capture-control maps beside
 * it) and of the ring buffer; the daemon may resize both at load time. */
#define L7TAP_DEFAULT_FLOW_ENTRIES 65536
#define L7TAP_DEFAULT_RING_BYTES (8 << 20)
/* Default size of the tunnels map: flows that came encapsulated only, and
 * read once per connection by user space, so a fraction of the flows map. */
#define L7TAP_DEFAULT_TUNNEL_ENTRIES 16384

enum l7tap_event_kind {
	L7TAP_EVENT_SEGMENT = 1, /* a TCP segment, payload window included */
};

enum l7tap_direction {
	L7TAP_DIR_INGRESS = 0,
	L7TAP_DIR_EGRESS = 1,
};

/* TCP flag bits as in the TCP header's 13th byte. */
#define L7TAP_TCP_FIN 0x01
#define L7TAP_TCP_SYN 0x02
#define L7TAP_TCP_RST 0x04
#define L7TAP_TCP_PSH 0x08
#define L7TAP_TCP_ACK 0x10
#define L7TAP_TCP_URG 0x20

/* A flow as seen in one packet: source and destination, not canonical.
 * IPv4 addresses are stored IPv4-mapped (::ffff:a.b.c.d) so one key type
 * serves both families. Ports are in host byte order. */
struct l7tap_flow_key {
	__u8 saddr[16];
	__u8 daddr[16];
	__u16 sport;
	__u16 dport;
	__u8 family; /* 4 or 6 */
	__u8 pad[3];
};

/* The encapsulation a packet came in, as the parser found it
 * (packet_parse.h): the innermost one, nearest the TCP flow. */
enum l7tap_tunnel_type {
	L7TAP_TUNNEL_NONE = 0,
	L7TAP_TUNNEL_VXLAN = 1,
	L7TAP_TUNNEL_GENEVE = 2,
	L7TAP_TUNNEL_GRE = 3,
	L7TAP_TUNNEL_IPIP = 4, /* IPv4 in IPv4 */
	L7TAP_TUNNEL_6IN4 = 5,
	L7TAP_TUNNEL_4IN6 = 6,
	L7TAP_TUNNEL_6IN6 = 7,
	L7TAP_TUNNEL_PPPOE = 8,
};

struct l7tap_tunnel {
	__u8 outer_saddr[16]; /* outer IP source of this packet, IPv4-mapped; zero for PPPoE */
	__u8 outer_daddr[16]; /* outer IP destination */
	__u32 id;	      /* VXLAN/Geneve VNI, GRE key, PPPoE session id; see has_id */
	__u8 type;	      /* enum l7tap_tunnel_type; NONE: not encapsulated */
	__u8 outer_family;    /* 4 or 6; 0 for PPPoE */
	__u8 has_id;
	__u8 depth; /* encapsulations taken off to reach the flow (1: this one alone) */
};

/* Bit (1 << type) of each enum l7tap_tunnel_type, as numbers for #if. */
#define L7TAP_TUNNEL_MASK_VXLAN 0x002
#define L7TAP_TUNNEL_MASK_GENEVE 0x004
#define L7TAP_TUNNEL_MASK_GRE 0x008
#define L7TAP_TUNNEL_MASK_IPIP 0x010
#define L7TAP_TUNNEL_MASK_6IN4 0x020
#define L7TAP_TUNNEL_MASK_4IN6 0x040
#define L7TAP_TUNNEL_MASK_6IN6 0x080
#define L7TAP_TUNNEL_MASK_PPPOE 0x100
#define L7TAP_TUNNELS_UDP (L7TAP_TUNNEL_MASK_VXLAN | L7TAP_TUNNEL_MASK_GENEVE)
#define L7TAP_TUNNELS_IP_IN_IP                                                                     \
	(L7TAP_TUNNEL_MASK_IPIP | L7TAP_TUNNEL_MASK_6IN4 | L7TAP_TUNNEL_MASK_4IN6 |                \
	 L7TAP_TUNNEL_MASK_6IN6)
#define L7TAP_TUNNELS_ALL                                                                          \
	(L7TAP_TUNNELS_UDP | L7TAP_TUNNELS_IP_IN_IP | L7TAP_TUNNEL_MASK_GRE |                      \
	 L7TAP_TUNNEL_MASK_PPPOE)
/* The BPF program's: VXLAN and Geneve (what a node's uplink carries under a
 * pod overlay), one level deep (L7TAP_BPF_MAX_ENCAP): the outer pass in the
 * program, the tunnel's inside in a global function the verifier checks once
 * (L7TAP_PARSE_INNER_CALL, l7tap.bpf.c). Two levels made each path through
 * the outer headers meet every path through the inner ones: the verifier
 * gave up at a million instructions. */
#define L7TAP_BPF_PARSE_TUNNELS L7TAP_TUNNELS_UDP
#define L7TAP_BPF_MAX_ENCAP 1

/* Common prefix of every ring-buffer event. */
struct l7tap_event_header {
	__u64 ts_ns; /* CLOCK_MONOTONIC in the kernel, wall clock in replay */
	__u32 ifindex;
	__u8 kind;	/* enum l7tap_event_kind */
	__u8 direction; /* enum l7tap_direction */
	__u8 pad[2];
};

/* One TCP segment. payload_len is the full TCP payload length on the wire
 * (of the whole skb: GSO/GRO packets carry up to 64 KB). Of that payload,
 * data_offset bytes were skipped on purpose (capture control), then
 * captured_len bytes follow in data[]; the rest was not copied (window).
 * The ring-buffer sample may end right after data[captured_len]: readers
 * must not look past L7TAP_SEGMENT_EVENT_HEADER_SIZE + captured_len. */
struct l7tap_segment_event {
	struct l7tap_event_header hdr;
	struct l7tap_flow_key key;
	__u32 seq;
	__u32 ack;
	__u32 payload_len;
	__u32 captured_len;
	__u32 data_offset;
	__u16 tcp_window; /* raw, unscaled */
	__u8 tcp_flags;
	__u8 capture_flags; /* L7TAP_SEG_* */
	__u8 data[L7TAP_MAX_EVENT_PAYLOAD];
};

/* Segment event capture flags. A frame-walked segment (frame_walk.h) may be
 * sent as several events that cover its payload contiguously; only the last
 * carries FIN or RST. */
#define L7TAP_SEG_WALKED 0x1	/* shaped by the HTTP/2 frame walk */
#define L7TAP_SEG_WALK_LOST 0x2 /* the walk lost its place here: re-arm it */
#define L7TAP_SEG_PART 0x4	/* a later event of the same segment (not a packet) */
/* The flow's packets came encapsulated (VXLAN, Geneve): its outer addresses
 * are in the tunnels map, under the canonical key (see below).
 * A flag rather than the tunnel in every event: events stay 80 bytes, and
 * user space looks the map up once per connection, never for a flow without
 * the flag. */
#define L7TAP_SEG_TUNNEL 0x8

#define L7TAP_SEGMENT_EVENT_HEADER_SIZE 80

/* Kernel-side L4 counters of one flow, kept in the flows map. Index [0] is
 * the direction from the canonical key's saddr/sport to daddr/dport (the
 * endpoint that compares lower, bytewise address then port, is the source). */
struct l7tap_flow_counters {
	__u64 first_ns;
	__u64 last_ns;
	__u64 packets[2];
	__u64 bytes[2];	       /* TCP payload bytes */
	__u64 syn_ns;	       /* first SYN without ACK, 0 if none */
	__u64 synack_ns;       /* first SYN+ACK, 0 if none */
	__u32 retransmits[2];  /* segments whose sequence went backwards */
	__u32 zero_windows[2]; /* packets advertising a zero window */
	__u32 next_seq[2];     /* highest seq + payload seen, per direction */
	__u32 owner_ifindex;   /* interface that saw the flow first and reports it */
	__u8 tcp_flags[2];     /* OR of flags seen per direction */
	__u8 ended;	       /* RST, or FIN both ways, seen */
	__u8 pad[5];
};

/* Per-CPU counters of everything the kernel program lost or skipped. */
enum l7tap_counter {
	L7TAP_CNT_PACKETS = 0,	 /* packets seen */
	L7TAP_CNT_TCP,		 /* TCP packets parsed */
	L7TAP_CNT_UNPARSABLE,	 /* headers cut short or malformed */
	L7TAP_CNT_NOT_TCP,	 /* IP but not TCP, or not IP */
	L7TAP_CNT_FRAGMENTS,	 /* IP fragments: not captured */
	L7TAP_CNT_FILTERED,	 /* outside the configured ports/CIDRs */
	L7TAP_CNT_NOT_OWNER,	 /* flow reported by another interface */
	L7TAP_CNT_EVENTS,	 /* segment events written */
	L7TAP_CNT_RINGBUF_FULL,	 /* events lost: ring buffer full */
	L7TAP_CNT_FLOW_MAP_FULL, /* flow entries that could not be created */
	L7TAP_CNT_PAYLOAD_BYTES, /* payload bytes on the wire of captured flows */
	L7TAP_CNT_COPIED_BYTES,	 /* payload bytes copied into events */
	L7TAP_CNT_SKIPPED_BYTES, /* payload bytes skipped by capture control */
	L7TAP_CNT_L4_ONLY,	 /* packets of L4-only flows (counted, not copied) */
	L7TAP_CNT_WALKED,	 /* segments shaped by the HTTP/2 frame walk */
	L7TAP_CNT_WALK_LOST,	 /* times a frame walk lost its place */
	/* payload_len of the segment events lost to a full ring buffer: each is
	 * a sequence range user space never sees, so it reads it as a hole of
	 * exactly these bytes (unless a retransmission's event covers it). */
	L7TAP_CNT_RINGBUF_FULL_BYTES,
	/* of not_owner: TC egress runs of a packet that the TC ingress program
	 * of the interface it came in on reported just before, told without
	 * parsing it (l7tap.bpf.c, struct l7tap_reported) */
	L7TAP_CNT_NOT_OWNER_PAIRED,
	/* flows entries created by an encapsulated packet (its tunnels map entry
	 * written then) */
	L7TAP_CNT_TUNNEL_FLOWS,
	L7TAP_CNT_MAX,
};

/* The tunnels map (LRU): canonical flow key -> struct l7tap_tunnel of the
 * encapsulated packet that created the flow's entry in the flows map, its
 * outer addresses put in canonical order: outer_saddr is the outer source of
 * direction 0's packets (those from the key's saddr), outer_daddr that of
 * direction 1's. Written only when a flows entry is created, so it costs
 * nothing per packet; an entry of a flow whose later incarnation (port reuse)
 * came unencapsulated stays, unread (no event of that flow has
 * L7TAP_SEG_TUNNEL). */

/* Capture control, written by user space per flow (canonical key). Index as
 * in struct l7tap_flow_counters. */
struct l7tap_capture_ctl {
	__u32 skip_start[2]; /* copy nothing of [skip_start, skip_end) (seq) */
	__u32 skip_end[2];   /* start == end: nothing to skip */
	__u8 l4_only;	     /* count only: no segment events */
	__u8 frame_walk;     /* HTTP/2: look up the frame_walk map per direction */
	__u8 pad[6];
};

/* The HTTP/2 frame walk of one flow direction (frame_walk.h), in the
 * frame_walk map. The capture arms a direction itself when its first
 * payload starts HTTP/2 (the client preface, or a SETTINGS frame) and
 * l7tap_config.frame_walk is set; user space arms it at a frame boundary it
 * knows otherwise (Upgrade, a connection joined mid-way, after a loss). The kernel
 * follows the frame headers, and sets it lost when it can no longer (user
 * space sees L7TAP_SEG_WALK_LOST and arms it again). */
enum l7tap_walk_state {
	L7TAP_WALK_OFF = 0,
	L7TAP_WALK_ARMED = 1,	    /* a frame header starts at next_hdr */
	L7TAP_WALK_ON = 2,	    /* following frames; pos is the next new byte */
	L7TAP_WALK_LOST = 3,	    /* plain windows until armed again */
	L7TAP_WALK_ARMED_FIRST = 4, /* a frame header starts with the next payload */
};

struct l7tap_frame_walk {
	__u32 pos;	/* ON: sequence number of the next byte not yet walked */
	__u32 next_hdr; /* where the next frame header starts */
	__u32 copy_end; /* ON: the current frame is copied up to here, then skipped */
	__u8 state;	/* enum l7tap_walk_state */
	__u8 hdr_len;	/* bytes of the header at next_hdr already seen, 0..4 */
	__u8 hdr[8];	/* those bytes (room for the 5 read: gathered as one __u64) */
	__u8 pad[2];
};

struct l7tap_frame_walk_key {
	struct l7tap_flow_key flow; /* canonical */
	__u32 dir;		    /* index as in struct l7tap_flow_counters */
	__u32 pad;
};

#define L7TAP_MAX_FILTER_PORTS 16
#define L7TAP_MAX_FILTER_CIDRS 8

/* Load-time configuration (the program's read-only data). */
struct l7tap_config {
	__u32 window;	    /* payload bytes copied per skb, 1..L7TAP_MAX_EVENT_PAYLOAD */
	__u32 wakeup_bytes; /* wake the reader once this much is queued; 0: every event */
	/* Capture flows with either port here; the first 0 ends the list
	 * (none: any port). */
	__u16 ports[L7TAP_MAX_FILTER_PORTS];
	struct {
		__u8 addr[16];	 /* IPv4-mapped for IPv4 */
		__u8 prefix_len; /* of the 128-bit form */
		__u8 pad[3];
	} cidrs[L7TAP_MAX_FILTER_CIDRS]; /* either address inside; none set: any */
	__u8 num_cidrs;
	__u8 frame_walk; /* arm the HTTP/2 frame walk on a first payload that starts HTTP/2 */
	__u8 pad[6];
};

#if defined(__cplusplus)
#define L7TAP_STATIC_ASSERT static_assert
#else
#define L7TAP_STATIC_ASSERT _Static_assert
#endif
L7TAP_STATIC_ASSERT(sizeof(struct l7tap_flow_key) == 40, "ABI: flow key size");
L7TAP_STATIC_ASSERT(sizeof(struct l7tap_tunnel) == 40, "ABI: tunnel size");
L7TAP_STATIC_ASSERT(sizeof(struct l7tap_event_header) == 16, "ABI: event header size");
L7TAP_STATIC_ASSERT(sizeof(struct l7tap_segment_event) ==
			L7TAP_SEGMENT_EVENT_HEADER_SIZE + L7TAP_MAX_EVENT_PAYLOAD,
		    "ABI: segment event size");
L7TAP_STATIC_ASSERT(sizeof(struct l7tap_flow_counters) == 104, "ABI: flow counters size");
L7TAP_STATIC_ASSERT(sizeof(struct l7tap_capture_ctl) == 24, "ABI: capture control size");
L7TAP_STATIC_ASSERT(sizeof(struct l7tap_config) == 208, "ABI: config size");
L7TAP_STATIC_ASSERT(sizeof(struct l7tap_frame_walk) == 24, "ABI: frame walk size");
L7TAP_STATIC_ASSERT(sizeof(struct l7tap_frame_walk_key) == 48, "ABI: frame walk key size");

#endif /* L7TAP_ABI_H */
