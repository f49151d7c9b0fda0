// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * l7tap's TC program: on a pod's veth, copy a bounded window of every TCP
 * segment's payload into the ring buffer and keep per-flow L4 counters.
 *
 * One object, three programs sharing l7tap_handle() with the direction and
 * the context kind as constants: l7tap_ingress and l7tap_egress (TC), and
 * l7tap_xdp (XDP, ingress only). Only uapi headers and the load-bytes
 * helpers: no kfuncs, no direct packet access, no tcx-only feature, so the TC
 * programs load on kernels from 5.15 on, attached through clsact/cls_bpf or
 * as a tcx link. The XDP program needs bpf_xdp_load_bytes() and
 * bpf_xdp_get_buff_len() (5.18+); the daemon loads it only in XDP mode (its
 * autoload is off otherwise), as an freplace extension of libxdp's
 * dispatcher. No program ever changes a packet's fate: TC ones return
 * TC_ACT_UNSPEC (TCX_NEXT for tcx links), the XDP one XDP_PASS.
 *
 * The context kind (L7TAP_CTX_SKB or L7TAP_CTX_XDP) is a constant argument of
 * always-inline functions: the accessors below branch on it and the compiler
 * keeps one branch, so each program holds only its own helper calls. The
 * XDP program reports exactly what the TC ingress program would for the same
 * frame on the same interface (direction ingress, ifindex the receiving
 * interface); only the owner rule (l7tap_handle()) is TC's alone.
 *
 * Ring-buffer samples: bpf_ringbuf_reserve() needs a constant size, so a
 * segment event is reserved from one of a few size classes (header only, or
 * header + 128/256/512/1024/2048/4096 bytes) and the payload is copied
 * straight from the skb into the reserved sample: one copy, no per-CPU
 * scratch buffer (bpf_ringbuf_output() from one would copy twice). The
 * payload part of a sample is at most twice what was captured (or 128
 * bytes); readers look at header + captured_len only.
 *
 * Event rules:
 * - every segment of a captured flow gets a segment event; a segment without
 *   payload (pure ACK, SYN, FIN, RST), or whose payload lies wholly in a
 *   skipped range, gets a header-only event (captured_len 0): user space
 *   needs the ACKs for gap detection and SYN/FIN/RST for the connection state;
 * - an L4-only flow (capture control) gets no segment events, except
 *   header-only events for segments carrying SYN, FIN or RST, so user space
 *   still sees the connection start and end.
 * A flows entry ends with the first RST, or the FIN that completes FINs in
 * both directions, and stays (the daemon sweeps it); a SYN without ACK on an
 * ended entry starts it afresh (port reuse).
 *
 * The parser (packet_parse.h) and the per-packet decisions (capture_path.h)
 * are shared with replay; this file holds what is the kernel's alone: the
 * maps, the ring buffer, the context accessors and the owner rule.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/types.h>

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

/* l7tap_env_walk_step() below takes up to this many steps (capture_path.h). */
#define L7TAP_ENV_WALK_STEPS_PER_CALL 32
/* The parser hands a tunnel's inside to l7tap_env_parse_inner() below. */
#define L7TAP_PARSE_INNER_CALL 1
/* One level of VXLAN or Geneve (l7tap_abi.h). */
#define L7TAP_MAX_ENCAP L7TAP_BPF_MAX_ENCAP
#include "tc/capture_path.h"
#include "tc/l7tap_abi.h"

/* Context kinds: what the program's context pointer is. */
#define L7TAP_CTX_SKB 0 /* struct __sk_buff (TC) */
#define L7TAP_CTX_XDP 1 /* struct xdp_md (XDP) */

/* Segment-event sample size classes (payload bytes after the header). */
#define L7TAP_CLASS_XXS 128
#define L7TAP_CLASS_XS 256
#define L7TAP_CLASS_S 512
#define L7TAP_CLASS_M 1024
#define L7TAP_CLASS_L 2048
#define L7TAP_CLASS_XL L7TAP_MAX_EVENT_PAYLOAD

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Set by the daemon through the skeleton before load. */
const volatile struct l7tap_config l7tap_cfg = {
    .window = 1024,
    .wakeup_bytes = 0,
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, L7TAP_DEFAULT_FLOW_ENTRIES);
	__type(key, struct l7tap_flow_key);
	__type(value, struct l7tap_flow_counters);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, L7TAP_DEFAULT_FLOW_ENTRIES);
	__type(key, struct l7tap_flow_key);
	__type(value, struct l7tap_capture_ctl);
} capture_ctl SEC(".maps");

/* Two entries per HTTP/2 flow (one per direction), so user space arms one
 * direction without writing over the other's walk, which the program
 * updates in place. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, L7TAP_DEFAULT_FLOW_ENTRIES);
	__type(key, struct l7tap_frame_walk_key);
	__type(value, struct l7tap_frame_walk);
} frame_walk SEC(".maps");

/* The walk's step bound (L7TAP_WALK_MAX_STEPS, frame_walk.h) makes its loop
 * one the verifier accepts: each step is a call of a global function, so it
 * walks this loop as a few instructions per iteration. */

/* The outer addresses of encapsulated flows (l7tap_abi.h, L7TAP_SEG_TUNNEL):
 * beside the flows map rather than in it, so the flows entries of the
 * unencapsulated majority do not grow by 40 bytes, and rather than in every
 * event, which stay 80 bytes. Written when the flows entry is created: user
 * space reads it once per connection, when its flow table creates it. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, L7TAP_DEFAULT_TUNNEL_ENTRIES);
	__type(key, struct l7tap_flow_key);
	__type(value, struct l7tap_tunnel);
} tunnels SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, L7TAP_DEFAULT_RING_BYTES);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, L7TAP_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

/* The last TCP packet the TC ingress program reported on this CPU, and
 * where. A pod-to-pod packet runs the ingress program of the sender's veth
 * and then, in the same softirq on the same CPU, the egress program of the
 * receiver's veth: when the first run reported it, the second one is not
 * the flow's owner (there is one per flow) and can tell from this entry,
 * without parsing the packet or looking up its flow. The packet's identity
 * (receiving interface, length, hash, and its bytes from the IP source
 * address to the end of the TCP base header: addresses, ports, sequence and
 * ack numbers, flags, window, checksum) makes any other packet that matches
 * one of the same flow, whose owner is the same; a packet whose addresses
 * or ports were translated on the way (DNAT to a service's pod) does not
 * match, and is another flow. Only headers without IP options or IPv6
 * extension headers, whose span is one of two constant sizes. */
#define L7TAP_PAIR_SPAN_V4 (8 + 20)
#define L7TAP_PAIR_SPAN_V6 (32 + 20)

struct l7tap_reported {
	__u32 ifindex; /* 0: nothing reported since the last ingress run */
	__u32 len;
	__u32 hash;
	__u16 addr_off;
	__u16 span; /* L7TAP_PAIR_SPAN_V4 or _V6 */
	__u32 bytes[L7TAP_PAIR_SPAN_V6 / 4];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct l7tap_reported);
} reported SEC(".maps");

static __always_inline void l7tap_count(__u32 idx, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &idx);

	if (v)
		*v += n;
}

/* Copies len bytes at offset off of the frame into to; 0 on success. Both
 * helpers read across fragments (non-linear skbs, multi-buffer XDP). */
static __always_inline long l7tap_env_load(void *ctx, const int kind, __u32 off, void *to,
					   __u32 len)
{
	if (kind == L7TAP_CTX_XDP)
		return bpf_xdp_load_bytes(ctx, off, to, len);
	return bpf_skb_load_bytes(ctx, off, to, len);
}

/* A tunnel's inside (packet_parse.h): global functions, checked once. */
__noinline int l7tap_parse_inner_skb(struct __sk_buff *skb, struct l7tap_parse_at *at,
				     struct l7tap_packet *pkt)
{
	if (!at || !pkt)
		return L7TAP_PARSE_MALFORMED;
	return l7tap_parse_inner(skb, L7TAP_CTX_SKB, at, pkt);
}

__noinline int l7tap_parse_inner_xdp(struct xdp_md *xdp, struct l7tap_parse_at *at,
				     struct l7tap_packet *pkt)
{
	if (!at || !pkt)
		return L7TAP_PARSE_MALFORMED;
	return l7tap_parse_inner(xdp, L7TAP_CTX_XDP, at, pkt);
}

static __always_inline int l7tap_env_parse_inner(void *ctx, const int kind,
						 struct l7tap_parse_at *at, struct l7tap_packet *pkt)
{
	if (kind == L7TAP_CTX_XDP)
		return l7tap_parse_inner_xdp(ctx, at, pkt);
	return l7tap_parse_inner_skb(ctx, at, pkt);
}

/* The frame's length: the whole skb, or all of an XDP buffer's fragments. */
static __always_inline __u32 l7tap_ctx_len(void *ctx, const int kind)
{
	if (kind == L7TAP_CTX_XDP)
		return (__u32)bpf_xdp_get_buff_len(ctx);
	return ((struct __sk_buff *)ctx)->len;
}

/* The interface the program runs on (the receiving one for XDP). */
static __always_inline __u32 l7tap_ctx_ifindex(void *ctx, const int kind)
{
	if (kind == L7TAP_CTX_XDP)
		return ((struct xdp_md *)ctx)->ingress_ifindex;
	return ((struct __sk_buff *)ctx)->ifindex;
}

/* A GSO/GRO skb carries several segments. An XDP buffer is one frame as
 * received (generic XDP linearizes a GRO skb, whose IP length then covers
 * it all). */
static __always_inline int l7tap_ctx_is_gso(void *ctx, const int kind)
{
	if (kind == L7TAP_CTX_XDP)
		return 0;
	return ((struct __sk_buff *)ctx)->gso_segs > 1;
}

static __always_inline __u32 l7tap_window(void)
{
	__u32 w = l7tap_cfg.window;

	/* 0 is "unlimited" in the window policy: the most an event can carry. */
	if (w == L7TAP_WINDOW_UNLIMITED || w > L7TAP_MAX_EVENT_PAYLOAD)
		return L7TAP_MAX_EVENT_PAYLOAD;
	return w;
}

/* Wake the reader only when this sample (of sample_size bytes, plus the
 * ring's 8-byte record header) takes the queue across wakeup_bytes. Waking
 * it for every sample once above the threshold cost ~7 us per event here
 * (a self-IPI) exactly when the reader is behind; the reader's own short
 * drain timer is the safety net when two CPUs cross at once and neither
 * sees it. */
static __always_inline __u64 l7tap_wakeup_flags(__u64 sample_size)
{
	__u32 wakeup_bytes = l7tap_cfg.wakeup_bytes;
	__u64 avail;

	if (!wakeup_bytes)
		return 0;
	avail = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	if (avail >= wakeup_bytes && avail < (__u64)wakeup_bytes + sample_size + 8)
		return BPF_RB_FORCE_WAKEUP;
	return BPF_RB_NO_WAKEUP;
}

static __always_inline void l7tap_fill_header(struct l7tap_event_header *hdr, __u32 ifindex,
					      __u8 kind, __u8 dir, __u64 now)
{
	hdr->ts_ns = now;
	hdr->ifindex = ifindex;
	hdr->kind = kind;
	hdr->direction = dir;
	hdr->pad[0] = 0;
	hdr->pad[1] = 0;
}

/* Writes a segment event with pkt->captured_len payload bytes copied from
 * pkt->data_offset into the payload.
 *
 * Called only through l7tap_emit_segment() and l7tap_emit_segment_xdp(),
 * global (not inlined) functions: the verifier checks each once, on its own,
 * with unknown arguments. Inlined, the length handed to the load-bytes
 * helper made the verifier track every parsing path's offsets precisely
 * (they all feed the length), multiplying the paths it walks: 86k
 * instructions and 4.6 s per program, against a few thousand this way. A
 * global function's context argument must have the program's own context
 * type, hence one wrapper per kind. Returns 0. */
static __always_inline int l7tap_emit_segment_body(void *ctx, const int kind,
						   const struct l7tap_packet *pkt, __u32 dir)
{
	__u32 captured_len;
	struct l7tap_segment_event *ev;
	const __u32 hdr_size = L7TAP_SEGMENT_EVENT_HEADER_SIZE;
	__u32 class_mask, copy_len;

	captured_len = pkt->captured_len;

	/* One constant size per call site, as the verifier requires. The
	 * verifier follows each branch on its own, so class_mask is a known
	 * constant (class - 1) on every path below. */
	if (captured_len == 0) {
		ev = bpf_ringbuf_reserve(&events, hdr_size, 0);
		class_mask = 0;
	} else if (captured_len <= L7TAP_CLASS_XXS) {
		ev = bpf_ringbuf_reserve(&events, hdr_size + L7TAP_CLASS_XXS, 0);
		class_mask = L7TAP_CLASS_XXS - 1;
	} else if (captured_len <= L7TAP_CLASS_XS) {
		ev = bpf_ringbuf_reserve(&events, hdr_size + L7TAP_CLASS_XS, 0);
		class_mask = L7TAP_CLASS_XS - 1;
	} else if (captured_len <= L7TAP_CLASS_S) {
		ev = bpf_ringbuf_reserve(&events, hdr_size + L7TAP_CLASS_S, 0);
		class_mask = L7TAP_CLASS_S - 1;
	} else if (captured_len <= L7TAP_CLASS_M) {
		ev = bpf_ringbuf_reserve(&events, hdr_size + L7TAP_CLASS_M, 0);
		class_mask = L7TAP_CLASS_M - 1;
	} else if (captured_len <= L7TAP_CLASS_L) {
		ev = bpf_ringbuf_reserve(&events, hdr_size + L7TAP_CLASS_L, 0);
		class_mask = L7TAP_CLASS_L - 1;
	} else if (captured_len <= L7TAP_CLASS_XL) {
		ev = bpf_ringbuf_reserve(&events, hdr_size + L7TAP_CLASS_XL, 0);
		class_mask = L7TAP_CLASS_XL - 1;
	} else {
		return 0;
	}
	if (!ev) {
		l7tap_count(L7TAP_CNT_RINGBUF_FULL, 1);
		l7tap_count(L7TAP_CNT_RINGBUF_FULL_BYTES, pkt->payload_len);
		return 0;
	}

	l7tap_fill_header(&ev->hdr, l7tap_ctx_ifindex(ctx, kind), L7TAP_EVENT_SEGMENT, dir,
			  pkt->ts_ns);
	ev->key = pkt->key;
	ev->seq = pkt->seq;
	ev->ack = pkt->ack;
	ev->payload_len = pkt->payload_len;
	ev->captured_len = captured_len;
	ev->data_offset = pkt->data_offset;
	ev->tcp_window = pkt->window;
	ev->tcp_flags = pkt->flags;
	/* The per-packet cost of tunnels for every packet: this one test. */
	ev->capture_flags = pkt->capture_flags | (pkt->tunnel.type ? L7TAP_SEG_TUNNEL : 0);
	/* Tested on class_mask (a constant on each verifier path) rather than
	 * on captured_len: the verifier cannot tie the class branches above to
	 * a later test of another copy of captured_len. */
	if (class_mask) {
		/* captured_len is in [1, class] here, so this is captured_len
		 * itself; written so that the verifier sees the length in
		 * [1, class] (a possibly-zero length is rejected). The barrier
		 * keeps the compiler from folding it back to captured_len. */
		copy_len = captured_len;
		asm volatile("" : "+r"(copy_len));
		copy_len = ((copy_len - 1) & class_mask) + 1;
		if (l7tap_env_load(ctx, kind, pkt->payload_off + pkt->data_offset, ev->data,
				   copy_len)) {
			bpf_ringbuf_discard(ev, 0);
			l7tap_count(L7TAP_CNT_UNPARSABLE, 1);
			return 0;
		}
	}
	/* A lost frame walk is re-armed by the reader: wake it now. */
	if (pkt->capture_flags & L7TAP_SEG_WALK_LOST)
		bpf_ringbuf_submit(ev, BPF_RB_FORCE_WAKEUP);
	else
		bpf_ringbuf_submit(
		    ev, l7tap_wakeup_flags(hdr_size + (class_mask ? class_mask + 1 : 0)));
	l7tap_count(L7TAP_CNT_EVENTS, 1);
	l7tap_count(L7TAP_CNT_COPIED_BYTES, captured_len);
	return 0;
}

/* The verifier wants a global function's pointer arguments checked before
 * use, but not the context: that is never NULL, and comparing it is refused
 * without CAP_PERFMON ("pointer comparison prohibited"). */
__noinline int l7tap_emit_segment(struct __sk_buff *skb, const struct l7tap_packet *pkt, __u32 dir)
{
	if (!pkt)
		return 0;
	return l7tap_emit_segment_body(skb, L7TAP_CTX_SKB, pkt, dir);
}

__noinline int l7tap_emit_segment_xdp(struct xdp_md *xdp, const struct l7tap_packet *pkt, __u32 dir)
{
	if (!pkt)
		return 0;
	return l7tap_emit_segment_body(xdp, L7TAP_CTX_XDP, pkt, dir);
}

/* Global (not inlined) for the same reason as l7tap_emit_segment(): the
 * verifier checks each once, and their buffers stay off the program's own
 * stack. */
__noinline int l7tap_walk_step(struct __sk_buff *skb, const struct l7tap_packet *pkt,
			       struct l7tap_frame_walk *w, struct l7tap_walk_scratch *s)
{
	if (!pkt || !w || !s)
		return 1;
	return l7tap_walk_step_body(skb, L7TAP_CTX_SKB, pkt, w, s);
}

__noinline int l7tap_walk_step_xdp(struct xdp_md *xdp, const struct l7tap_packet *pkt,
				   struct l7tap_frame_walk *w, struct l7tap_walk_scratch *s)
{
	if (!pkt || !w || !s)
		return 1;
	return l7tap_walk_step_body(xdp, L7TAP_CTX_XDP, pkt, w, s);
}

/* Up to L7TAP_ENV_WALK_STEPS_PER_CALL steps, each a call of the global
 * function above: the verifier checks this loop once, with its 32
 * iterations, instead of as part of a 1024-iteration loop in each program. */
__noinline int l7tap_walk_steps(struct __sk_buff *skb, const struct l7tap_packet *pkt,
				struct l7tap_frame_walk *w, struct l7tap_walk_scratch *s)
{
	if (!pkt || !w || !s)
		return 1;
	if (s->abort)
		return l7tap_walk_step(skb, pkt, w, s);
	L7TAP_UNROLL
	for (int i = 0; i < L7TAP_ENV_WALK_STEPS_PER_CALL; i++) {
		if (l7tap_walk_step(skb, pkt, w, s))
			return 1;
	}
	return 0;
}

__noinline int l7tap_walk_steps_xdp(struct xdp_md *xdp, const struct l7tap_packet *pkt,
				    struct l7tap_frame_walk *w, struct l7tap_walk_scratch *s)
{
	if (!pkt || !w || !s)
		return 1;
	if (s->abort)
		return l7tap_walk_step_xdp(xdp, pkt, w, s);
	L7TAP_UNROLL
	for (int i = 0; i < L7TAP_ENV_WALK_STEPS_PER_CALL; i++) {
		if (l7tap_walk_step_xdp(xdp, pkt, w, s))
			return 1;
	}
	return 0;
}

__noinline int l7tap_walk_detect(struct __sk_buff *skb, const struct l7tap_packet *pkt,
				 struct l7tap_frame_walk_key *wkey, __u32 d)
{
	if (!pkt || !wkey)
		return 0;
	l7tap_walk_detect_body(skb, L7TAP_CTX_SKB, pkt, wkey, d);
	return 0;
}

__noinline int l7tap_walk_detect_xdp(struct xdp_md *xdp, const struct l7tap_packet *pkt,
				     struct l7tap_frame_walk_key *wkey, __u32 d)
{
	if (!pkt || !wkey)
		return 0;
	l7tap_walk_detect_body(xdp, L7TAP_CTX_XDP, pkt, wkey, d);
	return 0;
}

/* The environment of capture_path.h: the maps and the ring buffer. */

static __always_inline void l7tap_env_count(void *ctx, __u32 idx, __u64 n) { l7tap_count(idx, n); }

/* Writes the tunnels entry of the encapsulated packet pkt, whose flow's
 * entry in the flows map was just created (struct l7tap_tunnel in canonical
 * order: l7tap_abi.h). A packet from the canonical destination (direction 1)
 * has its outer addresses swapped in place, word by word in registers: a
 * copy would cost the program 40 bytes of stack, which it has not to spare,
 * and nothing reads them afterwards (the events carry only the type). */
static __always_inline void l7tap_remember_tunnel(const struct l7tap_flow_key *ckey,
						  struct l7tap_packet *pkt)
{
	if (pkt->key.sport != ckey->sport || l7tap_addr_cmp(pkt->key.saddr, ckey->saddr)) {
		__u32 *src = (__u32 *)pkt->tunnel.outer_saddr;
		__u32 *dst = (__u32 *)pkt->tunnel.outer_daddr;

		L7TAP_UNROLL
		for (int i = 0; i < 4; i++) {
			__u32 w = src[i];

			src[i] = dst[i];
			dst[i] = w;
		}
	}
	bpf_map_update_elem(&tunnels, ckey, &pkt->tunnel, BPF_ANY);
	l7tap_count(L7TAP_CNT_TUNNEL_FLOWS, 1);
}

static __always_inline int l7tap_env_flow(void *ctx, const int kind,
					  const struct l7tap_flow_key *ckey, struct l7tap_packet *pkt,
					  struct l7tap_flow_counters **fcp)
{
	const __u32 ifindex = l7tap_ctx_ifindex(ctx, kind);
	struct l7tap_flow_counters *fc = bpf_map_lookup_elem(&flows, ckey);
	struct l7tap_flow_counters init = {};
	__u64 update = BPF_NOEXIST;

	if (fc && l7tap_flow_reopens(fc, pkt->flags))
		update = BPF_EXIST;
	if (!fc || update == BPF_EXIST) {
		/* The entry's creator reports the flow (unless another CPU
		 * created it first, then the clock was read for nothing). */
		pkt->ts_ns = bpf_ktime_get_ns();
		init.first_ns = pkt->ts_ns;
		init.owner_ifindex = ifindex;
		/* Fails with -EEXIST when another CPU created it first: fine. */
		bpf_map_update_elem(&flows, ckey, &init, update);
		fc = bpf_map_lookup_elem(&flows, ckey);
		if (!fc)
			l7tap_count(L7TAP_CNT_FLOW_MAP_FULL, 1);
		/* Only the owner's packets are reported: the owner, this
		 * interface unless another CPU's creation came first, writes
		 * what user space will read (the same either way when both saw
		 * the packet encapsulated). */
		else if (pkt->tunnel.type && fc->owner_ifindex == ifindex)
			l7tap_remember_tunnel(ckey, pkt);
	}
	*fcp = fc;
	/* A pod-to-pod flow crosses two attached veths, and TC sees each
	 * packet twice (egress of one, ingress of the other): the interface
	 * that saw the flow first reports it. XDP sees a packet only where it
	 * is received, once: every interface reports what it receives (on pod
	 * veths, the requests on the client's and the responses on the
	 * server's). */
	if (fc && kind == L7TAP_CTX_SKB && fc->owner_ifindex != ifindex) {
		l7tap_count(L7TAP_CNT_NOT_OWNER, 1);
		return 1;
	}
	/* Read here, not before the lookup: a non-owner's run needs no clock,
	 * which costs as much as a map lookup on a VM's clock source. */
	if (!pkt->ts_ns)
		pkt->ts_ns = bpf_ktime_get_ns();
	return 0;
}

static __always_inline struct l7tap_capture_ctl *l7tap_env_ctl(void *ctx,
							       const struct l7tap_flow_key *ckey)
{
	return bpf_map_lookup_elem(&capture_ctl, ckey);
}

static __always_inline int l7tap_env_ctl_create(void *ctx, const struct l7tap_flow_key *ckey,
						const struct l7tap_capture_ctl *init)
{
	/* -EEXIST: the other direction created it on another CPU. */
	if (bpf_map_update_elem(&capture_ctl, ckey, init, BPF_NOEXIST) &&
	    !bpf_map_lookup_elem(&capture_ctl, ckey))
		return 1;
	return 0;
}

static __always_inline void l7tap_env_walk_set(void *ctx, const struct l7tap_frame_walk_key *wkey,
					       const struct l7tap_frame_walk *w)
{
	bpf_map_update_elem(&frame_walk, wkey, w, BPF_ANY);
}

/* The map element itself: the walk updates it in place (user space writes
 * only a direction no walk runs on, or replaces the element whole). */
static __always_inline struct l7tap_frame_walk *
l7tap_env_walk_get(void *ctx, const struct l7tap_frame_walk_key *wkey)
{
	return bpf_map_lookup_elem(&frame_walk, wkey);
}

static __always_inline void l7tap_env_walk_put(void *ctx, const struct l7tap_frame_walk_key *wkey,
					       struct l7tap_frame_walk *w)
{
}

/* The walk's scratch (capture_path.h): one per CPU, as a program runs to
 * its end on one. Off the stack, which the packet and the parser need. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct l7tap_walk_scratch);
} walk_scratch SEC(".maps");

static __always_inline struct l7tap_walk_scratch *l7tap_env_walk_scratch(void *ctx)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&walk_scratch, &zero);
}

static __always_inline void l7tap_env_emit(void *ctx, const int kind,
					   const struct l7tap_packet *pkt, __u32 dir)
{
	if (kind == L7TAP_CTX_XDP)
		l7tap_emit_segment_xdp(ctx, pkt, dir);
	else
		l7tap_emit_segment(ctx, pkt, dir);
}

static __always_inline void l7tap_env_walk_detect(void *ctx, const int kind,
						  const struct l7tap_packet *pkt,
						  struct l7tap_frame_walk_key *wkey, __u32 d)
{
	if (kind == L7TAP_CTX_XDP)
		l7tap_walk_detect_xdp(ctx, pkt, wkey, d);
	else
		l7tap_walk_detect(ctx, pkt, wkey, d);
}

static __always_inline int l7tap_env_walk_step(void *ctx, const int kind,
					       const struct l7tap_packet *pkt,
					       struct l7tap_frame_walk *w,
					       struct l7tap_walk_scratch *s)
{
	if (kind == L7TAP_CTX_XDP)
		return l7tap_walk_steps_xdp(ctx, pkt, w, s);
	return l7tap_walk_steps(ctx, pkt, w, s);
}

/* On TC egress: whether the skb is the one the ingress program of the
 * interface it came in on reported last on this CPU (struct
 * l7tap_reported), so that this interface is not its flow's owner. */
static __always_inline int l7tap_reported_on_ingress(struct __sk_buff *skb)
{
	const __u32 iif = skb->ingress_ifindex;
	__u32 zero = 0, bytes[L7TAP_PAIR_SPAN_V6 / 4];
	struct l7tap_reported *r;
	long err;

	/* 0: sent by this host; equal: hairpinned, both runs are the owner's. */
	if (!iif || iif == skb->ifindex)
		return 0;
	r = bpf_map_lookup_elem(&reported, &zero);
	if (!r || r->ifindex != iif || r->len != skb->len || r->hash != skb->hash)
		return 0;
	if (r->span == L7TAP_PAIR_SPAN_V4)
		err = bpf_skb_load_bytes(skb, r->addr_off, bytes, L7TAP_PAIR_SPAN_V4);
	else
		err = bpf_skb_load_bytes(skb, r->addr_off, bytes, L7TAP_PAIR_SPAN_V6);
	if (err)
		return 0;
	L7TAP_UNROLL
	for (int i = 0; i < L7TAP_PAIR_SPAN_V6 / 4; i++) {
		if (i >= r->span / 4)
			break;
		if (bytes[i] != r->bytes[i])
			return 0;
	}
	return 1;
}

/* After the TC ingress program's capture of pkt: remembers it when this
 * interface reported it (the flow's owner), forgets the last one when not.
 * head: the frame's head, when have_head (packet_parse.h): an IPv4 packet
 * without VLAN tags or IP options has the bytes there already. */
static __always_inline void l7tap_remember_reported(struct __sk_buff *skb,
						    const struct l7tap_packet *pkt, int reported_here,
						    const struct l7tap_frame_head *head,
						    int have_head)
{
	struct l7tap_reported *r;
	__u32 zero = 0;
	long err;

	r = bpf_map_lookup_elem(&reported, &zero);
	if (!r)
		return;
	r->ifindex = 0;
	if (!reported_here)
		return;
	if (pkt->key.family == 4 && pkt->tcp_off == pkt->addr_off + 8) {
		r->span = L7TAP_PAIR_SPAN_V4;
		err = 0;
		if (have_head && pkt->addr_off == ETH_HLEN + 12)
			__builtin_memcpy(r->bytes, head->eth + ETH_HLEN + 12, L7TAP_PAIR_SPAN_V4);
		else
			err = bpf_skb_load_bytes(skb, pkt->addr_off, r->bytes, L7TAP_PAIR_SPAN_V4);
	} else if (pkt->key.family == 6 && pkt->tcp_off == pkt->addr_off + 32) {
		r->span = L7TAP_PAIR_SPAN_V6;
		err = bpf_skb_load_bytes(skb, pkt->addr_off, r->bytes, L7TAP_PAIR_SPAN_V6);
	} else {
		return;
	}
	if (err)
		return;
	r->len = skb->len;
	r->hash = skb->hash;
	r->addr_off = pkt->addr_off;
	r->ifindex = skb->ifindex;
}

static __always_inline void l7tap_handle(void *ctx, const int kind, const __u8 dir)
{
	const __u32 len = l7tap_ctx_len(ctx, kind);
	struct l7tap_packet pkt = {};
	struct l7tap_frame_head head;
	int verdict, reported_here, have_head;

	l7tap_count(L7TAP_CNT_PACKETS, 1);
	/* The second run of a pod-to-pod packet, whose first run reported it:
	 * what a parse and a flow lookup would find, at a fraction of the cost
	 * (the same counters as that path). */
	if (kind == L7TAP_CTX_SKB && dir == L7TAP_DIR_EGRESS &&
	    l7tap_reported_on_ingress(ctx)) {
		l7tap_count(L7TAP_CNT_TCP, 1);
		l7tap_count(L7TAP_CNT_NOT_OWNER, 1);
		l7tap_count(L7TAP_CNT_NOT_OWNER_PAIRED, 1);
		return;
	}
	verdict = l7tap_parse_eth_head(ctx, kind, len, len, l7tap_ctx_is_gso(ctx, kind), &pkt, &head,
				       &have_head);
	l7tap_count(l7tap_parse_counter(verdict), 1);
	if (verdict != L7TAP_PARSE_TCP)
		return;
	reported_here = l7tap_capture(ctx, kind, dir, &pkt, &l7tap_cfg, l7tap_window());
	if (kind == L7TAP_CTX_SKB && dir == L7TAP_DIR_INGRESS)
		l7tap_remember_reported(ctx, &pkt, reported_here, &head, have_head);
}

SEC("tc")
int l7tap_ingress(struct __sk_buff *skb)
{
	l7tap_handle(skb, L7TAP_CTX_SKB, L7TAP_DIR_INGRESS);
	return TC_ACT_UNSPEC;
}

SEC("tc")
int l7tap_egress(struct __sk_buff *skb)
{
	l7tap_handle(skb, L7TAP_CTX_SKB, L7TAP_DIR_EGRESS);
	return TC_ACT_UNSPEC;
}

/* Ingress only: XDP runs before the stack builds an skb and has no egress
 * hook. Not loaded unless asked for ("?xdp": autoload off), so the TC
 * programs load on kernels without the XDP helpers. Loaded by the daemon as
 * an freplace extension of libxdp's dispatcher (BPF_PROG_TYPE_EXT), by the
 * tests as a plain XDP program. */
SEC("?xdp")
int l7tap_xdp(struct xdp_md *ctx)
{
	l7tap_handle(ctx, L7TAP_CTX_XDP, L7TAP_DIR_INGRESS);
	return XDP_PASS;
}
