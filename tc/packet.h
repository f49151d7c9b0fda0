/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * One TCP packet as the capture handles it: what the parser
 * (packet_parse.h) found, and what the capture path (capture_path.h)
 * decides to send of it. The BPF program and replay share it.
 */
#ifndef L7TAP_PACKET_H
#define L7TAP_PACKET_H

#include <linux/types.h>

#include "tc/l7tap_abi.h"

/* One parsed TCP packet, and (after parsing) what the capture makes of it. */
struct l7tap_packet {
	struct l7tap_flow_key key; /* as seen: not canonical */
	__u16 addr_off;		   /* the IP source address's, from the start of the frame */
	union {
		__u16 tcp_off; /* the TCP header's, from the start of the frame */
		/* L7TAP_PARSE_FRAGMENT: the fragmented IP header's offset
		 * from the start of the frame (key.family says which IP) */
		__u16 frag_off;
	};
	__u32 payload_off; /* from the start of the frame */
	__u32 payload_len;
	__u32 seq;
	__u32 ack;
	__u16 window;
	__u8 flags;
	__u8 capture_flags; /* L7TAP_SEG_* */
	__u64 ts_ns;
	__u32 data_offset;  /* payload bytes skipped (capture control) */
	__u32 captured_len; /* payload bytes to copy after data_offset */
	/* The innermost encapsulation; the parser sets it when it takes one
	 * off and never clears it (callers zero the packet), so a datagram
	 * rebuilt from fragments parses again with the outer layers' kept. */
	struct l7tap_tunnel tunnel;
};

#endif /* L7TAP_PACKET_H */
