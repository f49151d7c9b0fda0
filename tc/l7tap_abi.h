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

enum l7tap_event_kind {
	L7TAP_EVENT_SEGMENT = 1,  /* a TCP segment, payload window included */
	L7TAP_EVENT_FLOW_END = 2, /* final kernel-side L4 counters of a flow */
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

/* Common prefix of every ring-buffer event. */
struct l7tap_event_header {
	__u64 ts_ns; /* CLOCK_MONOTONIC in the kernel, wall clock in replay */
	__u32 ifindex;
	__u8 kind;	/* enum l7tap_event_kind */
	__u8 direction; /* enum l7tap_direction */
	__u8 pad[2];
};

/* One TCP segment. payload_len is the full TCP payload length on the wire;
 * captured_len <= payload_len bytes of it follow in data[]. */
struct l7tap_segment_event {
	struct l7tap_event_header hdr;
	struct l7tap_flow_key key;
	__u32 seq;
	__u32 ack;
	__u32 payload_len;
	__u32 captured_len;
	__u16 tcp_window; /* raw, unscaled */
	__u8 tcp_flags;
	__u8 pad[5];
	__u8 data[L7TAP_MAX_EVENT_PAYLOAD];
};

#define L7TAP_SEGMENT_EVENT_HEADER_SIZE 80

#if defined(__cplusplus)
static_assert(sizeof(struct l7tap_flow_key) == 40, "ABI: flow key size");
static_assert(sizeof(struct l7tap_event_header) == 16, "ABI: event header size");
static_assert(sizeof(struct l7tap_segment_event) ==
		  L7TAP_SEGMENT_EVENT_HEADER_SIZE + L7TAP_MAX_EVENT_PAYLOAD,
	      "ABI: segment event size");
#else
_Static_assert(sizeof(struct l7tap_flow_key) == 40, "ABI: flow key size");
_Static_assert(sizeof(struct l7tap_event_header) == 16, "ABI: event header size");
_Static_assert(sizeof(struct l7tap_segment_event) ==
		   L7TAP_SEGMENT_EVENT_HEADER_SIZE + L7TAP_MAX_EVENT_PAYLOAD,
	       "ABI: segment event size");
#endif

#endif /* L7TAP_ABI_H */
