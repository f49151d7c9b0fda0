/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Frame-aware windows for HTTP/2: which bytes of a segment to copy when the
 * capture follows the connection's frame headers. Pure functions over the
 * walk state of one flow direction (struct l7tap_frame_walk in
 * l7tap_abi.h), compiled into the BPF program and into replay alike (as
 * window_policy.h is), so `l7tap replay --capture-control` reports what a
 * live node would.
 *
 * The policy: frames that carry what a record needs (HEADERS, CONTINUATION,
 * PUSH_PROMISE, SETTINGS, RST_STREAM, GOAWAY, WINDOW_UPDATE, PING, PRIORITY)
 * are copied whole, whatever the payload window; of a DATA frame only the
 * 9-byte header and the first 5 payload bytes (a gRPC message prefix; 6
 * when the pad-length byte comes first); of a frame of unknown type only
 * its header. The rest is skipped: user space sees it as a gap inside a
 * frame of known length, which the HTTP/2 parser only counts. A skip
 * shorter than L7TAP_WALK_MIN_SKIP is copied instead: starting another
 * event costs more than copying that much.
 *
 * One segment becomes one or more events that cover its payload
 * contiguously, each "skip, then copy, then not copied": event i covers
 * payload [off_i, off_i + len_i), its first skip_i bytes skipped, copy_i
 * bytes copied, the rest (only after plain-window parts) not copied. Every
 * event after the first carries L7TAP_SEG_PART (one packet, not several);
 * only the last carries FIN or RST.
 *
 * The caller drives the walk: l7tap_walk_begin() once per segment, then
 * l7tap_walk_next() until it says done, loading the header bytes it asks
 * for (l7tap_walk_header()) and writing the events it hands out. The BPF
 * program does this in a bounded loop; if the bound is reached before the
 * segment ends, l7tap_walk_abort() ends the segment with the walk lost.
 *
 * Life of a walk: the capture arms a direction itself on a first payload
 * that starts HTTP/2 (l7tap_walk_arm_first()); user space arms it at a frame
 * boundary its parser knows otherwise. A hole inside one frame is only a
 * gap; a hole across frame headers (or the step bound) loses the walk, and
 * the next L7TAP_WALK_LOST_COPY bytes are copied whole so that user space
 * finds the frames again and re-arms it (l7tap_walk_begin_whole()).
 */
#ifndef L7TAP_FRAME_WALK_H
#define L7TAP_FRAME_WALK_H

#include <linux/types.h>

#include "tc/l7tap_abi.h"
#include "tc/window_policy.h"

#ifdef __bpf__
#define L7TAP_WALK_UNROLL _Pragma("unroll")
/* A value the compiler must hold in a register as loaded. Without it, a
 * choice between two fields of one struct becomes one load at a chosen
 * offset, and the verifier refuses pointer arithmetic whose offset depends
 * on the path unless the loader has CAP_PERFMON. */
#define L7TAP_OPAQUE(x) asm volatile("" : "+r"(x))
#else
#define L7TAP_WALK_UNROLL
#define L7TAP_OPAQUE(x) ((void)0)
#endif

#define L7TAP_H2_FRAME_HEADER 9
/* Frame header bytes the policy reads: length (3), type, flags. */
#define L7TAP_WALK_HEADER_BYTES 5
#define L7TAP_WALK_MIN_SKIP 256
/* Calls of l7tap_walk_next() per segment (about four per frame): enough for
 * a 64 KB GSO skb of DATA frames of 256 bytes and more. A segment that needs
 * more ends with l7tap_walk_abort() (lost; user space re-arms). */
#define L7TAP_WALK_MAX_STEPS 1024
/* Payload bytes copied whole after the walk loses its place (see
 * l7tap_walk_begin_whole()). */
#define L7TAP_WALK_LOST_COPY (256 * 1024)
/* gRPC length-prefixed message: compressed flag and 4-byte length. */
#define L7TAP_WALK_DATA_PREFIX 5

/* The HTTP/2 client preface: the one definition, C++ included
 * (parsers/http2/frame.h). */
#define L7TAP_H2_PREFACE "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define L7TAP_H2_PREFACE_LEN 24

#define L7TAP_H2_DATA 0x0
#define L7TAP_H2_CONTINUATION 0x9
#define L7TAP_H2_FLAG_PADDED 0x8

/* What l7tap_walk_next() asks of the caller. */
enum l7tap_walk_step {
	L7TAP_WALK_DONE = 0,   /* the segment is fully described */
	L7TAP_WALK_EVENT = 1,  /* write the event in the cursor's ev_* fields */
	L7TAP_WALK_HEADER = 2, /* load hdr_need bytes at payload offset `off` */
	L7TAP_WALK_AGAIN = 3,  /* nothing to do: call again */
};

/* One segment being walked. */
struct l7tap_walk_cursor {
	__u32 seq; /* sequence number of the payload's first byte */
	__u32 len; /* payload length */
	__u32 off; /* payload bytes classified so far */
	/* The event being built: payload [ev_off, ev_off + ev_skip + ev_copy
	 * + ev_rest), ev_skip skipped, then ev_copy copied, then ev_rest not
	 * copied. Valid for the caller when l7tap_walk_next() says EVENT. */
	__u32 ev_off;
	__u32 ev_skip;
	__u32 ev_copy;
	__u32 ev_rest;
	__u32 hdr_need; /* HEADER: bytes to load, 1..L7TAP_WALK_HEADER_BYTES */
	__u8 whole;	/* copy the segment whole: the walk is lost (no frames) */
	__u8 ev_open;	/* an event is being built */
	__u8 ev_last;	/* the event ends the segment */
	__u8 lost;	/* the walk lost its place in this segment */
	__u8 done;
	__u8 pad[3];
};

static inline int l7tap_walk_seq_before(__u32 a, __u32 b) { return (__s32)(a - b) < 0; }

/* Copy length after the 9-byte header of a frame (length len, type, flags). */
static inline __u32 l7tap_walk_frame_copy(__u32 len, __u8 type, __u8 flags)
{
	__u32 prefix;

	if (type == L7TAP_H2_DATA) {
		prefix = L7TAP_WALK_DATA_PREFIX + ((flags & L7TAP_H2_FLAG_PADDED) ? 1 : 0);
		return len < prefix ? len : prefix;
	}
	if (type <= L7TAP_H2_CONTINUATION)
		return len;
	return 0;
}

/* 1 when the 24 bytes at p are the HTTP/2 client preface. */
static inline int l7tap_is_h2_preface(const __u8 *p)
{
	/* Unrolled: each byte at a constant offset. A loop would read p at an
	 * offset that differs by iteration, which the verifier refuses without
	 * CAP_PERFMON. */
	L7TAP_WALK_UNROLL
	for (int i = 0; i < L7TAP_H2_PREFACE_LEN; i++)
		if (p[i] != (__u8)L7TAP_H2_PREFACE[i])
			return 0;
	return 1;
}

/* Whether the first payload of a flow direction starts HTTP/2, and where
 * its first frame header is: after the client preface, or at once for a
 * SETTINGS frame (every HTTP/2 endpoint's first frame; a server's first
 * bytes). p holds the first n bytes (n >= L7TAP_H2_FRAME_HEADER; the
 * preface needs 24). Arms w at that frame and returns 1, or returns 0.
 * Arming here, where the packet passes, lets a fast connection be walked
 * from its start: user space learns of it milliseconds later. */
static inline int l7tap_walk_arm_first(const __u8 *p, __u32 n, __u32 seq,
				       struct l7tap_frame_walk *w)
{
	__u32 len;

	if (n >= L7TAP_H2_PREFACE_LEN && l7tap_is_h2_preface(p)) {
		seq += L7TAP_H2_PREFACE_LEN;
	} else {
		/* SETTINGS (type 4), no flags (not an ACK), stream 0, a whole
		 * number of 6-byte settings within the default frame size. */
		len = ((__u32)p[0] << 16) | ((__u32)p[1] << 8) | p[2];
		if (p[3] != 0x4 || p[4] != 0 || p[5] != 0 || p[6] != 0 || p[7] != 0 || p[8] != 0 ||
		    len % 6 != 0 || len > 16384)
			return 0;
	}
	__builtin_memset(w, 0, sizeof(*w));
	w->state = L7TAP_WALK_ARMED;
	w->next_hdr = seq;
	return 1;
}

/* A lost walk copies the next L7TAP_WALK_LOST_COPY payload bytes whole (in
 * events of up to L7TAP_MAX_EVENT_PAYLOAD, not flagged WALKED): with every
 * byte, user space finds the frames again at once and re-arms the walk at
 * the next boundary, usually before this connection's next skb passes (the
 * event that says "lost" wakes the reader). Plain windows would leave it
 * only the first bytes of each 64 KB skb, from which a busy connection's
 * frames are rarely found again. In the lost state copy_end counts those
 * bytes. Returns 1 (walk the segment whole) or 0 (budget spent: plain). */
static inline int l7tap_walk_begin_whole(struct l7tap_frame_walk *w, __u32 len,
					 struct l7tap_walk_cursor *c)
{
	if (w->copy_end >= L7TAP_WALK_LOST_COPY)
		return 0;
	w->copy_end += len;
	c->whole = 1;
	return 1;
}

/* Starts a segment of len payload bytes at seq: returns 1 when the walk
 * shapes it (then call l7tap_walk_next() until DONE), 0 when the plain
 * window applies. A walk that loses its place here (the segment starts
 * after the position it expects: bytes it never saw, or an arm that came
 * too late) sets c->lost: that plain event carries L7TAP_SEG_WALK_LOST, so
 * user space re-arms the walk at a frame boundary it knows. */
static inline int l7tap_walk_begin(struct l7tap_frame_walk *w, __u32 seq, __u32 len, __u32 window,
				   struct l7tap_walk_cursor *c)
{
	__u32 start, next, before;

	c->seq = seq;
	c->len = len;
	c->off = 0;
	c->ev_off = 0;
	c->ev_skip = 0;
	c->ev_copy = 0;
	c->ev_rest = 0;
	c->hdr_need = 0;
	c->ev_open = 1;
	c->ev_last = 0;
	c->lost = 0;
	c->done = 0;
	c->whole = 0;
	if (len == 0)
		return 0;
	if (w->state == L7TAP_WALK_LOST)
		return l7tap_walk_begin_whole(w, len, c);
	if (w->state != L7TAP_WALK_ARMED && w->state != L7TAP_WALK_ON)
		return 0;
	/* Where the walk knows what comes: the armed boundary, or the end of
	 * what it has walked. */
	start = w->pos;
	next = w->next_hdr;
	L7TAP_OPAQUE(start);
	L7TAP_OPAQUE(next);
	if (w->state == L7TAP_WALK_ARMED)
		start = next;
	if (!l7tap_walk_seq_before(start, seq + len))
		return 0; /* wholly before: a retransmission (armed: not there yet) */
	if (l7tap_walk_seq_before(start, seq)) {
		/* A hole: bytes the walk never saw (a packet dropped before this
		 * hook and sent again later, reordering, or an arm that came too
		 * late). Inside the current frame that costs nothing: where the
		 * next header starts is known, the missing bytes are only a gap.
		 * Past it, the walk has lost its place. */
		if (w->state == L7TAP_WALK_ARMED || w->hdr_len ||
		    l7tap_walk_seq_before(w->next_hdr, seq)) {
			w->state = L7TAP_WALK_LOST;
			w->copy_end = 0;
			c->lost = 1;
			return l7tap_walk_begin_whole(w, len, c);
		}
		start = seq;
	}
	before = start - seq;
	if (w->state == L7TAP_WALK_ARMED) {
		/* Bytes before the boundary end a frame the walk did not see
		 * start: the plain window, then the walk. */
		w->state = L7TAP_WALK_ON;
		w->copy_end = start;
		w->hdr_len = 0;
		c->ev_copy = l7tap_window_capture_len(before, window);
		c->ev_rest = before - c->ev_copy;
	} else {
		/* A retransmission that runs past the position: what comes
		 * before it was seen already. */
		c->ev_skip = before;
	}
	c->off = before;
	return 1;
}

/* Closes the open event: the caller writes it. */
static inline int l7tap_walk_close(struct l7tap_walk_cursor *c)
{
	c->ev_open = 0;
	return L7TAP_WALK_EVENT;
}

/* The next step of the segment's walk: DONE, EVENT (write the cursor's
 * event, then call again), HEADER (load c->hdr_need bytes at payload offset
 * c->off, pass them to l7tap_walk_header(), call again) or AGAIN (call
 * again). Each call does a bounded amount of work and never recurses. */
static inline int l7tap_walk_next(struct l7tap_frame_walk *w, struct l7tap_walk_cursor *c)
{
	__u32 p, end, n, room, copy_end, next_hdr;

	if (c->done)
		return L7TAP_WALK_DONE;
	if (!c->ev_open) {
		c->ev_open = 1;
		c->ev_off = c->off;
		c->ev_skip = 0;
		c->ev_copy = 0;
		c->ev_rest = 0;
	}
	if (c->off >= c->len) {
		if (!c->whole)
			w->pos = c->seq + c->len;
		c->ev_last = 1;
		c->done = 1;
		return l7tap_walk_close(c);
	}
	/* Replay's plain window can be unlimited or wider than an event: the
	 * part before an armed boundary may already exceed one. */
	room = c->ev_copy < L7TAP_MAX_EVENT_PAYLOAD ? L7TAP_MAX_EVENT_PAYLOAD - c->ev_copy : 0;
	if (c->whole) {
		n = c->len - c->off;
		if (room == 0)
			return l7tap_walk_close(c);
		c->ev_copy += n < room ? n : room;
		c->off += n < room ? n : room;
		return L7TAP_WALK_AGAIN;
	}
	p = c->seq + c->off;
	end = c->seq + c->len;
	copy_end = w->copy_end;
	next_hdr = w->next_hdr;
	L7TAP_OPAQUE(copy_end);
	L7TAP_OPAQUE(next_hdr);
	if (l7tap_walk_seq_before(p, copy_end) ||
	    (l7tap_walk_seq_before(p, next_hdr) && next_hdr - p < L7TAP_WALK_MIN_SKIP)) {
		/* Copied: the frame's head, or a skip too short to be worth an
		 * event. */
		n = l7tap_walk_seq_before(p, copy_end) ? copy_end - p : next_hdr - p;
		if (n > end - p)
			n = end - p;
		if (c->ev_rest || room == 0)
			return l7tap_walk_close(c);
		c->ev_copy += n < room ? n : room;
		c->off += n < room ? n : room;
		return L7TAP_WALK_AGAIN;
	}
	if (l7tap_walk_seq_before(p, w->next_hdr)) {
		n = w->next_hdr - p;
		if (n > end - p)
			n = end - p;
		if (c->ev_copy || c->ev_rest)
			return l7tap_walk_close(c);
		c->ev_skip += n;
		c->off += n;
		return L7TAP_WALK_AGAIN;
	}
	/* At a frame header (its first hdr_len bytes read from an earlier
	 * segment): its bytes are copied, so make room first. */
	n = L7TAP_WALK_HEADER_BYTES - w->hdr_len;
	if (n > end - p)
		n = end - p;
	if (c->ev_rest || room < n)
		return l7tap_walk_close(c);
	c->hdr_need = n;
	return L7TAP_WALK_HEADER;
}

/* The c->hdr_need header bytes asked for, loaded from payload offset c->off.
 * They are gathered in w->hdr (a header can be split across segments). */
static inline void l7tap_walk_header(struct l7tap_frame_walk *w, struct l7tap_walk_cursor *c,
				     const __u8 *bytes)
{
	__u32 n = c->hdr_need, have = w->hdr_len, len, shift;
	__u64 gathered;

	if (n == 0 || have >= L7TAP_WALK_HEADER_BYTES || n > L7TAP_WALK_HEADER_BYTES - have)
		return;
	/* Gathered in a register: a store at a variable offset into w (a
	 * global function's argument) is refused without CAP_PERFMON. */
	__builtin_memcpy(&gathered, w->hdr, sizeof(gathered));
	L7TAP_WALK_UNROLL
	for (__u32 i = 0; i < L7TAP_WALK_HEADER_BYTES; i++) {
		if (i < n) {
			shift = 8 * ((have + i) & 7);
#if __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
			shift = 56 - shift;
#endif
			gathered = (gathered & ~(0xffull << shift)) | ((__u64)bytes[i] << shift);
		}
	}
	__builtin_memcpy(w->hdr, &gathered, sizeof(gathered));
	c->ev_copy += n;
	c->off += n;
	c->hdr_need = 0;
	have += n;
	if (have < L7TAP_WALK_HEADER_BYTES) {
		w->hdr_len = have; /* the segment ends inside the header */
		return;
	}
	len = ((__u32)w->hdr[0] << 16) | ((__u32)w->hdr[1] << 8) | w->hdr[2];
	w->copy_end =
	    w->next_hdr + L7TAP_H2_FRAME_HEADER + l7tap_walk_frame_copy(len, w->hdr[3], w->hdr[4]);
	w->next_hdr = w->next_hdr + L7TAP_H2_FRAME_HEADER + len;
	w->hdr_len = 0;
}

/* Ends the segment early (the caller's step bound ran out): the rest is not
 * copied and the walk is lost. Returns EVENT: write the cursor's event. */
static inline int l7tap_walk_abort(struct l7tap_frame_walk *w, struct l7tap_walk_cursor *c)
{
	if (!c->ev_open) {
		c->ev_open = 1;
		c->ev_off = c->off;
		c->ev_skip = 0;
		c->ev_copy = 0;
		c->ev_rest = 0;
	}
	c->ev_rest += c->len - c->off;
	c->off = c->len;
	c->ev_last = 1;
	c->lost = 1;
	c->done = 1;
	w->state = L7TAP_WALK_LOST;
	return l7tap_walk_close(c);
}

#endif /* L7TAP_FRAME_WALK_H */
