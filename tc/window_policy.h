/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The payload window policy: how many bytes of a TCP segment's payload are
 * copied to user space. Pure functions of the segment and the configuration,
 * compiled into the BPF program and into the pcap source alike, so a replay
 * with --window N reports what a live node with that window would.
 */
#ifndef L7TAP_WINDOW_POLICY_H
#define L7TAP_WINDOW_POLICY_H

#include <linux/types.h>

/* Window value meaning "copy the whole payload". Only replay can honour it;
 * the kernel clamps every window to L7TAP_MAX_EVENT_PAYLOAD. */
#define L7TAP_WINDOW_UNLIMITED 0

/* Bytes of a payload of payload_len bytes to copy under a window of
 * window bytes per segment (per skb in the kernel, where GSO/GRO packets can
 * carry up to 64 KB: the window applies to each skb as a whole). */
static inline __u32 l7tap_window_capture_len(__u32 payload_len, __u32 window)
{
	if (window == L7TAP_WINDOW_UNLIMITED || payload_len < window)
		return payload_len;
	return window;
}

/* Bytes at the start of a payload that capture control says to skip: the
 * segment starts inside the sequence range [skip_start, skip_end) (an HTTP/1
 * body of known length, an HTTP/2 DATA payload) and the skip runs to the end
 * of that range or of the payload. Sequence arithmetic wraps; an empty range
 * (start == end) skips nothing. */
static inline __u32 l7tap_skip_len(__u32 seq, __u32 payload_len, __u32 skip_start, __u32 skip_end)
{
	__u32 skip;

	if (seq - skip_start >= skip_end - skip_start)
		return 0;
	skip = skip_end - seq;
	return skip < payload_len ? skip : payload_len;
}

#endif /* L7TAP_WINDOW_POLICY_H */
