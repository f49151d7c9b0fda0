/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What the capture does with one parsed TCP packet, in the order the kernel
 * program does it: filter, canonical key, flow counters, the first
 * payload's frame-walk arming, count-only flows, the frame walk, the skip
 * range, the window. Compiled into the BPF program (l7tap.bpf.c) and into
 * replay's capture (daemon/capture_policy.cc), so replay decides what a live
 * node with the same settings would.
 *
 * The includer defines the environment: the maps, the event writer, the
 * counters and the byte loader. Each hook is declared below; the kernel
 * implements them on its maps and helpers, replay on its own per-flow state
 * shaped like those maps. `ctx` is the includer's (the BPF program's
 * context, replay's capture), `kind` the BPF context kind (a constant the
 * compiler folds; replay ignores it).
 *
 * Map values handed out by the hooks may go away while an event is written
 * (replay delivers events synchronously to code that may forget the flow):
 * nothing here reads a map value after writing an event, except a walk's
 * state, which the environment lends for the walk of one segment
 * (l7tap_env_walk_get() .. l7tap_env_walk_put()).
 */
#ifndef L7TAP_CAPTURE_PATH_H
#define L7TAP_CAPTURE_PATH_H

#include <linux/types.h>

#include "tc/flow_key.h"
#include "tc/frame_walk.h"
#include "tc/l7tap_abi.h"
#include "tc/packet_parse.h"
#include "tc/window_policy.h"

/* The configuration as the code reads it: the BPF program's is `const
 * volatile` (its read-only data, set at load time: the compiler must not fold
 * in the initializer), replay's plain memory the compiler may keep in
 * registers. */
#ifdef __bpf__
typedef const volatile struct l7tap_config *l7tap_config_ref;
#else
typedef const struct l7tap_config *l7tap_config_ref;
#endif

/* Word w (network order) of CIDR idx's address. */
static __always_inline __u32 l7tap_cidr_word(l7tap_config_ref cfg, int idx, int w)
{
#ifdef __bpf__
	/* A volatile read: casting the volatile away would let the compiler
	 * fold in the initializer's zeros. The addresses are 4-byte aligned in
	 * struct l7tap_config. */
	return ((const volatile __u32 *)cfg->cidrs[idx].addr)[w];
#else
	__u32 n;

	__builtin_memcpy(&n, cfg->cidrs[idx].addr + 4 * w, 4);
	return n;
#endif
}

/* The walk of one frame-walked segment in progress (frame_walk.h). */
struct l7tap_walk_scratch {
	struct l7tap_walk_cursor cur;
	struct l7tap_packet part; /* the event being written */
	__u32 dir;
	__u32 abort; /* end the walk now: its step bound ran out */
};

/* The environment, defined by the includer. */

/* Adds n to counter idx (enum l7tap_counter). */
static __always_inline void l7tap_env_count(void *ctx, __u32 idx, __u64 n);
/* Sets *fc to the flows entry of ckey, created when missing (NULL when there
 * is no room); returns 1 when this capture point does not report the
 * packet's flow. The kernel's sets pkt->ts_ns, 0 until then, when it
 * returns 0 or creates the entry: it reads the clock only for the packets
 * it reports. */
static __always_inline int l7tap_env_flow(void *ctx, const int kind,
					  const struct l7tap_flow_key *ckey,
					  struct l7tap_packet *pkt,
					  struct l7tap_flow_counters **fc);
/* The capture control entry of ckey, or NULL. */
static __always_inline struct l7tap_capture_ctl *l7tap_env_ctl(void *ctx,
							       const struct l7tap_flow_key *ckey);
/* Creates ckey's capture control entry as init if there is none; returns 0
 * when one exists afterwards. */
static __always_inline int l7tap_env_ctl_create(void *ctx, const struct l7tap_flow_key *ckey,
						const struct l7tap_capture_ctl *init);
/* Writes a direction's walk state. */
static __always_inline void l7tap_env_walk_set(void *ctx, const struct l7tap_frame_walk_key *wkey,
					       const struct l7tap_frame_walk *w);
/* Lends a direction's walk state for one segment's walk, or NULL; the walk
 * ends with l7tap_env_walk_put(). */
static __always_inline struct l7tap_frame_walk *
l7tap_env_walk_get(void *ctx, const struct l7tap_frame_walk_key *wkey);
static __always_inline void l7tap_env_walk_put(void *ctx, const struct l7tap_frame_walk_key *wkey,
					       struct l7tap_frame_walk *w);
/* The walk scratch of one segment's walk (the kernel: a per-CPU map
 * element, to spare the stack the parser and the packet need), or NULL. */
static __always_inline struct l7tap_walk_scratch *l7tap_env_walk_scratch(void *ctx);
/* Writes pkt as a segment event: captured_len bytes from payload offset
 * data_offset. */
static __always_inline void l7tap_env_emit(void *ctx, const int kind,
					   const struct l7tap_packet *pkt, __u32 dir);
/* Call l7tap_walk_detect_body() and l7tap_walk_step_body() (the kernel,
 * through global functions that the verifier checks once). */
static __always_inline void l7tap_env_walk_detect(void *ctx, const int kind,
						  const struct l7tap_packet *pkt,
						  struct l7tap_frame_walk_key *wkey, __u32 d);
static __always_inline int l7tap_env_walk_step(void *ctx, const int kind,
					       const struct l7tap_packet *pkt,
					       struct l7tap_frame_walk *w,
					       struct l7tap_walk_scratch *s);
/* How many steps one l7tap_env_walk_step() call takes (it returns early when
 * the segment is done; with s->abort set it takes the one aborting step).
 * The kernel batches 32 in a global function so that both its loop and the
 * one in l7tap_walk() below have 32 iterations, unrolled: a loader without
 * CAP_PERFMON makes the verifier also follow the speculative side of every
 * branch it can predict, and on a counted loop's exit test that side runs
 * the loop on past its bound until the verifier gives up ("The sequence of
 * 8193 jumps is too complex"). Unrolled, nothing is left to predict. */
#ifndef L7TAP_ENV_WALK_STEPS_PER_CALL
#define L7TAP_ENV_WALK_STEPS_PER_CALL 1
#endif
L7TAP_STATIC_ASSERT(L7TAP_WALK_MAX_STEPS % L7TAP_ENV_WALK_STEPS_PER_CALL == 0,
		    "the walk's step bound is a whole number of calls");

/* The direction (0 or 1) that indexes the per-direction fields. In the
 * kernel a global function, whose result the verifier does not know: a
 * known 0 on one path and 1 on another would make each indexed access
 * pointer arithmetic with an offset that depends on the path, which the
 * verifier refuses unless the loader has CAP_PERFMON. */
#ifdef __bpf__
__noinline __u32 l7tap_direction_index(__u32 d) { return d & 1; }
#else
static inline __u32 l7tap_direction_index(__u32 d) { return d & 1; }
#endif

/* Wrap-aware: a is after b in sequence space. */
static __always_inline int l7tap_seq_after(__u32 a, __u32 b) { return (__s32)(a - b) > 0; }

static __always_inline int l7tap_port_selected(l7tap_config_ref cfg, __u16 sport, __u16 dport)
{
	int any = 0;

	L7TAP_UNROLL
	for (int i = 0; i < L7TAP_MAX_FILTER_PORTS; i++) {
		__u16 p = cfg->ports[i];

		if (!p)
			break; /* the end of the list */
		if (p == sport || p == dport)
			return 1;
		any = 1;
	}
	return !any;
}

static __always_inline int l7tap_addr_in_cidr(l7tap_config_ref cfg, const __u8 *addr, int idx)
{
	__u32 prefix = cfg->cidrs[idx].prefix_len;

	L7TAP_UNROLL
	for (int w = 0; w < 4; w++) {
		__u32 a, n, mask;
		int bits = (int)prefix - 32 * w;

		if (bits <= 0)
			break;
		mask = bits >= 32 ? 0xffffffffu : ~(0xffffffffu >> bits);
		__builtin_memcpy(&a, addr + 4 * w, 4);
		n = l7tap_cidr_word(cfg, idx, w);
		if ((bpf_ntohl(a) ^ bpf_ntohl(n)) & mask)
			return 0;
	}
	return 1;
}

static __always_inline int l7tap_cidr_selected(l7tap_config_ref cfg,
					       const struct l7tap_flow_key *key)
{
	__u8 num = cfg->num_cidrs;

	if (!num)
		return 1;
	L7TAP_UNROLL
	for (int i = 0; i < L7TAP_MAX_FILTER_CIDRS; i++) {
		if (i >= num)
			break;
		if (l7tap_addr_in_cidr(cfg, key->saddr, i) ||
		    l7tap_addr_in_cidr(cfg, key->daddr, i))
			return 1;
	}
	return 0;
}

/* A SYN without ACK on an ended flows entry starts it afresh (port reuse). */
static __always_inline int l7tap_flow_reopens(const struct l7tap_flow_counters *fc, __u8 flags)
{
	return fc->ended && (flags & (L7TAP_TCP_SYN | L7TAP_TCP_ACK)) == L7TAP_TCP_SYN;
}

/* Updates the L4 counters of direction d with pkt. */
static __always_inline void l7tap_flow_update(struct l7tap_flow_counters *fc,
					      const struct l7tap_packet *pkt, __u32 d, __u64 now)
{
	__u32 end = pkt->seq + pkt->payload_len;
	__u8 flags = pkt->flags;
	int seen;

	d &= 1;
	seen = fc->packets[d] != 0;
	__sync_fetch_and_add(&fc->packets[d], 1);
	if (pkt->payload_len)
		__sync_fetch_and_add(&fc->bytes[d], pkt->payload_len);
	fc->last_ns = now;
	if ((flags & (L7TAP_TCP_SYN | L7TAP_TCP_ACK)) == L7TAP_TCP_SYN && !fc->syn_ns)
		fc->syn_ns = now;
	if ((flags & (L7TAP_TCP_SYN | L7TAP_TCP_ACK)) == (L7TAP_TCP_SYN | L7TAP_TCP_ACK) &&
	    !fc->synack_ns)
		fc->synack_ns = now;
	/* A RST's window means nothing (Linux sends 0). */
	if (pkt->window == 0 && !(flags & L7TAP_TCP_RST))
		fc->zero_windows[d]++;
	if (seen && pkt->payload_len && !l7tap_seq_after(end, fc->next_seq[d]))
		fc->retransmits[d]++;
	if (!seen || l7tap_seq_after(end, fc->next_seq[d]))
		fc->next_seq[d] = end;
	fc->tcp_flags[d] |= flags;
	if ((flags & L7TAP_TCP_RST) ||
	    ((fc->tcp_flags[0] & L7TAP_TCP_FIN) && (fc->tcp_flags[1] & L7TAP_TCP_FIN)))
		fc->ended = 1;
}

/* Arms the frame walk of direction d (wkey->flow, d) when pkt, the first
 * payload of that direction, starts HTTP/2 (l7tap_walk_arm_first()); not
 * for a count-only flow. */
static __always_inline void l7tap_walk_detect_body(void *ctx, const int kind,
						   const struct l7tap_packet *pkt,
						   struct l7tap_frame_walk_key *wkey, __u32 d)
{
	__u8 buf[L7TAP_H2_PREFACE_LEN] = {};
	struct l7tap_capture_ctl init = {}, *ctl;
	struct l7tap_frame_walk w;
	__u32 n = L7TAP_H2_FRAME_HEADER;

	if (pkt->payload_len >= L7TAP_H2_PREFACE_LEN)
		n = L7TAP_H2_PREFACE_LEN;
	if (l7tap_env_load(ctx, kind, pkt->payload_off, buf, n) ||
	    !l7tap_walk_arm_first(buf, n, pkt->seq, &w))
		return;
	ctl = l7tap_env_ctl(ctx, &wkey->flow);
	if (ctl) {
		if (ctl->l4_only)
			return;
		ctl->frame_walk = 1;
	} else {
		init.frame_walk = 1;
		if (l7tap_env_ctl_create(ctx, &wkey->flow, &init))
			return;
	}
	wkey->pad = 0;
	wkey->dir = d & 1;
	l7tap_env_walk_set(ctx, wkey, &w);
}

/* One step of the frame walk of pkt: loads the header bytes the walk asks
 * for, or writes the event it hands out. With s->abort set, ends the
 * segment's walk instead. Returns 1 when the segment is done. */
static __always_inline int l7tap_walk_step_body(void *ctx, const int kind,
						const struct l7tap_packet *pkt,
						struct l7tap_frame_walk *w,
						struct l7tap_walk_scratch *s)
{
	__u8 bytes[8] = {};
	__u32 n;
	int step;

	step = s->abort ? l7tap_walk_abort(w, &s->cur) : l7tap_walk_next(w, &s->cur);
	if (step == L7TAP_WALK_HEADER) {
		n = s->cur.hdr_need;
		asm volatile("" : "+r"(n));
		n = ((n - 1) & 7) + 1; /* in [1, 8] for the verifier; hdr_need is 1..5 */
		if (n > L7TAP_WALK_HEADER_BYTES ||
		    l7tap_env_load(ctx, kind, pkt->payload_off + s->cur.off, bytes, n)) {
			/* A payload cut short (replay's snap length): the rest
			 * is lost rather than walked blind. */
			step = l7tap_walk_abort(w, &s->cur);
		} else {
			l7tap_walk_header(w, &s->cur, bytes);
			return 0;
		}
	}
	if (step == L7TAP_WALK_DONE)
		return 1;
	if (step != L7TAP_WALK_EVENT)
		return 0;

	s->part = *pkt;
	s->part.payload_off = pkt->payload_off + s->cur.ev_off;
	s->part.seq = pkt->seq + s->cur.ev_off;
	s->part.payload_len = s->cur.ev_skip + s->cur.ev_copy + s->cur.ev_rest;
	s->part.data_offset = s->cur.ev_skip;
	s->part.captured_len = s->cur.ev_copy;
	s->part.capture_flags = s->cur.whole ? 0 : L7TAP_SEG_WALKED;
	/* Only the segment's last part ends anything; only its first starts it. */
	if (!s->cur.ev_last)
		s->part.flags &= ~(L7TAP_TCP_FIN | L7TAP_TCP_RST);
	if (s->cur.ev_off) {
		s->part.flags &= ~L7TAP_TCP_SYN;
		s->part.capture_flags |= L7TAP_SEG_PART;
	}
	if (s->cur.ev_last && s->cur.lost) {
		s->part.capture_flags |= L7TAP_SEG_WALK_LOST;
		l7tap_env_count(ctx, L7TAP_CNT_WALK_LOST, 1);
	}
	if (s->cur.ev_skip)
		l7tap_env_count(ctx, L7TAP_CNT_SKIPPED_BYTES, s->cur.ev_skip);
	l7tap_env_emit(ctx, kind, &s->part, s->dir);
	return s->cur.done;
}

/* Walks pkt's frames when its direction is frame-walked: returns 1 when the
 * walk wrote the segment's events, 0 when the plain window applies (pkt
 * then carries L7TAP_SEG_WALK_LOST if the walk just lost its place). The
 * step bound (L7TAP_WALK_MAX_STEPS) makes the loop one the verifier
 * accepts. */
static __always_inline int l7tap_walk(void *ctx, const int kind, struct l7tap_packet *pkt,
				      const struct l7tap_frame_walk_key *wkey, __u32 dir,
				      __u32 window)
{
	struct l7tap_walk_scratch *s = l7tap_env_walk_scratch(ctx);
	struct l7tap_frame_walk *w;
	int i;

	if (!s)
		return 0;
	/* Whole, padding included: l7tap_walk_begin() fills only part of it. */
	__builtin_memset(s, 0, sizeof(*s));
	w = l7tap_env_walk_get(ctx, wkey);
	if (!w)
		return 0;
	if (!l7tap_walk_begin(w, pkt->seq, pkt->payload_len, window, &s->cur)) {
		if (s->cur.lost) {
			pkt->capture_flags = L7TAP_SEG_WALK_LOST;
			l7tap_env_count(ctx, L7TAP_CNT_WALK_LOST, 1);
		}
		l7tap_env_walk_put(ctx, wkey, w);
		return 0;
	}
	if (!s->cur.whole)
		l7tap_env_count(ctx, L7TAP_CNT_WALKED, 1);
	s->dir = dir;
	s->abort = 0;
	L7TAP_UNROLL
	for (i = 0; i < L7TAP_WALK_MAX_STEPS / L7TAP_ENV_WALK_STEPS_PER_CALL; i++) {
		if (l7tap_env_walk_step(ctx, kind, pkt, w, s)) {
			l7tap_env_walk_put(ctx, wkey, w);
			return 1;
		}
	}
	s->abort = 1;
	l7tap_env_walk_step(ctx, kind, pkt, w, s);
	l7tap_env_walk_put(ctx, wkey, w);
	return 1;
}

/* Captures one parsed TCP packet seen in direction dir (L7TAP_DIR_*) at
 * time pkt->ts_ns (0 in the kernel: l7tap_env_flow() reads the clock):
 * updates the flow's state and writes its events. An encapsulated packet
 * (pkt->tunnel) is its inner TCP segment: key, filters, counters, offsets
 * and window are the inner flow's (payload_off is the inner payload's frame
 * offset); what the outer layers were reaches user space beside the events
 * (the kernel's tunnels map), not through this path. window: payload bytes
 * copied per packet (L7TAP_WINDOW_UNLIMITED: all). Returns 1
 * when this capture point is the owner of the packet's flow per its flows
 * entry (not filtered out, not another interface's, an entry there was
 * room for), 0 otherwise. */
static __always_inline int l7tap_capture(void *ctx, const int kind, const __u8 dir,
					 struct l7tap_packet *pkt, l7tap_config_ref cfg,
					 __u32 window)
{
	struct l7tap_frame_walk_key wkey; /* .flow: the canonical key */
	struct l7tap_flow_counters *fc = 0;
	struct l7tap_capture_ctl *ctl;
	__u32 d;

	/* Whole: it goes to global functions (see l7tap_walk()'s scratch). */
	__builtin_memset(&wkey, 0, sizeof(wkey));
	if (!l7tap_port_selected(cfg, pkt->key.sport, pkt->key.dport) ||
	    !l7tap_cidr_selected(cfg, &pkt->key)) {
		l7tap_env_count(ctx, L7TAP_CNT_FILTERED, 1);
		return 0;
	}

	d = l7tap_direction_index(l7tap_canonical(&pkt->key, &wkey.flow));
	if (l7tap_env_flow(ctx, kind, &wkey.flow, pkt, &fc))
		return 0;
	if (fc)
		l7tap_flow_update(fc, pkt, d, pkt->ts_ns);

	/* The first payload of this direction: does it start HTTP/2? */
	if (cfg->frame_walk && fc && pkt->payload_len >= L7TAP_H2_FRAME_HEADER &&
	    fc->bytes[d & 1] == pkt->payload_len)
		l7tap_env_walk_detect(ctx, kind, pkt, &wkey, d);

	ctl = l7tap_env_ctl(ctx, &wkey.flow);
	if (ctl && ctl->l4_only) {
		l7tap_env_count(ctx, L7TAP_CNT_L4_ONLY, 1);
		if (pkt->flags & (L7TAP_TCP_SYN | L7TAP_TCP_FIN | L7TAP_TCP_RST))
			l7tap_env_emit(ctx, kind, pkt, dir);
		return fc != 0;
	}

	l7tap_env_count(ctx, L7TAP_CNT_PAYLOAD_BYTES, pkt->payload_len);
	if (ctl && ctl->frame_walk && pkt->payload_len) {
		wkey.dir = d & 1;
		wkey.pad = 0;
		if (l7tap_walk(ctx, kind, pkt, &wkey, dir, window))
			return fc != 0;
	}
	if (ctl && pkt->payload_len) {
		pkt->data_offset = l7tap_skip_len(pkt->seq, pkt->payload_len,
						  ctl->skip_start[d & 1], ctl->skip_end[d & 1]);
		if (pkt->data_offset)
			l7tap_env_count(ctx, L7TAP_CNT_SKIPPED_BYTES, pkt->data_offset);
	}
	pkt->captured_len = l7tap_window_capture_len(pkt->payload_len - pkt->data_offset, window);
	l7tap_env_emit(ctx, kind, pkt, dir);
	return fc != 0;
}

#endif /* L7TAP_CAPTURE_PATH_H */
