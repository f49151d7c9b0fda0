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
 *   still sees the connection start and end;
 * - a flow-end event follows the segment event of the first RST, or of the
 *   FIN that completes FINs in both directions. The flows entry stays (the
 *   daemon sweeps it); a SYN without ACK on an ended entry starts it afresh
 *   (port reuse).
 */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/in6.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/pkt_cls.h>
#include <linux/tcp.h>
#include <linux/types.h>

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

#include "tc/flow_key.h"
#include "tc/frame_walk.h"
#include "tc/l7tap_abi.h"
#include "tc/window_policy.h"

/* Not in the uapi headers. */
#define L7TAP_IP_MF 0x2000
#define L7TAP_IP_OFFSET 0x1fff
#define L7TAP_MAX_VLAN_TAGS 2
/* IPv6 extension headers skipped before giving up on a packet. */
#define L7TAP_MAX_IPV6_EXT_HEADERS 6

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
	__uint(max_entries, 65536);
	__type(key, struct l7tap_flow_key);
	__type(value, struct l7tap_flow_counters);
} flows SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct l7tap_flow_key);
	__type(value, struct l7tap_capture_ctl);
} capture_ctl SEC(".maps");

/* Two entries per HTTP/2 flow (one per direction), so user space arms one
 * direction without writing over the other's walk, which the program
 * updates in place. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct l7tap_frame_walk_key);
	__type(value, struct l7tap_frame_walk);
} frame_walk SEC(".maps");

/* The walk's step bound (L7TAP_WALK_MAX_STEPS, frame_walk.h) makes its loop
 * one the verifier accepts: each step is a call of a global function, so it
 * walks this loop as a few instructions per iteration. */

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 8 << 20);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, L7TAP_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

struct l7tap_vlan_hdr {
	__be16 tci;
	__be16 encapsulated_proto;
};

struct l7tap_ipv6_ext_hdr {
	__u8 nexthdr;
	__u8 hdrlen;
};

/* One parsed TCP packet. */
struct l7tap_packet {
	struct l7tap_flow_key key; /* as seen: not canonical */
	__u32 payload_off;	   /* from the start of the frame */
	__u32 payload_len;
	__u32 seq;
	__u32 ack;
	__u16 window;
	__u8 flags;
	__u8 capture_flags; /* L7TAP_SEG_* */
	/* Set after parsing, for l7tap_emit_segment(). */
	__u64 ts_ns;
	__u32 data_offset;  /* payload bytes skipped (capture control) */
	__u32 captured_len; /* 0, or 1..L7TAP_MAX_EVENT_PAYLOAD */
};

static __always_inline void l7tap_count(__u32 idx, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&counters, &idx);

	if (v)
		*v += n;
}

/* Copies len bytes at offset off of the frame into to; 0 on success. Both
 * helpers read across fragments (non-linear skbs, multi-buffer XDP). */
static __always_inline long l7tap_load_bytes(void *ctx, const int kind, __u32 off, void *to,
					     __u32 len)
{
	if (kind == L7TAP_CTX_XDP)
		return bpf_xdp_load_bytes(ctx, off, to, len);
	return bpf_skb_load_bytes(ctx, off, to, len);
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

/* Wrap-aware: a is after b in sequence space. */
static __always_inline int l7tap_seq_after(__u32 a, __u32 b) { return (__s32)(a - b) > 0; }

/* Parses Ethernet, up to two in-band VLAN tags, IPv4 or IPv6 and TCP.
 * Returns L7TAP_CNT_TCP, or the counter that says why the packet is not
 * captured. A tag the kernel has already moved into skb metadata (VLAN
 * acceleration) is not in the data and needs nothing. */
static __always_inline __u32 l7tap_parse(void *ctx, const int kind, struct l7tap_packet *pkt)
{
	__u32 len = l7tap_ctx_len(ctx, kind);
	struct ethhdr eth;
	struct tcphdr th;
	__u32 off = ETH_HLEN;
	__u32 ip_end = 0; /* end of the IP datagram per its header, 0: unknown */
	__u32 doff;
	__u16 proto;
	__u8 l4proto;

	if (l7tap_load_bytes(ctx, kind, 0, &eth, sizeof(eth)))
		return L7TAP_CNT_UNPARSABLE;
	proto = eth.h_proto;

#pragma unroll
	for (int i = 0; i < L7TAP_MAX_VLAN_TAGS; i++) {
		struct l7tap_vlan_hdr vh;

		if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD))
			break;
		if (l7tap_load_bytes(ctx, kind, off, &vh, sizeof(vh)))
			return L7TAP_CNT_UNPARSABLE;
		proto = vh.encapsulated_proto;
		off += sizeof(vh);
	}

	if (proto == bpf_htons(ETH_P_IP)) {
		struct iphdr iph;

		if (l7tap_load_bytes(ctx, kind, off, &iph, sizeof(iph)))
			return L7TAP_CNT_UNPARSABLE;
		if (iph.version != 4 || iph.ihl < 5)
			return L7TAP_CNT_UNPARSABLE;
		if (iph.frag_off & bpf_htons(L7TAP_IP_MF | L7TAP_IP_OFFSET))
			return L7TAP_CNT_FRAGMENTS;
		if (iph.protocol != IPPROTO_TCP)
			return L7TAP_CNT_NOT_TCP;
		/* tot_len 0 (BIG TCP): unknown. */
		if (iph.tot_len)
			ip_end = off + bpf_ntohs(iph.tot_len);
		__builtin_memset(pkt->key.saddr, 0, 10);
		__builtin_memset(pkt->key.saddr + 10, 0xff, 2);
		__builtin_memcpy(pkt->key.saddr + 12, &iph.saddr, 4);
		__builtin_memset(pkt->key.daddr, 0, 10);
		__builtin_memset(pkt->key.daddr + 10, 0xff, 2);
		__builtin_memcpy(pkt->key.daddr + 12, &iph.daddr, 4);
		pkt->key.family = 4;
		off += iph.ihl * 4;
	} else if (proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr ip6;

		if (l7tap_load_bytes(ctx, kind, off, &ip6, sizeof(ip6)))
			return L7TAP_CNT_UNPARSABLE;
		if (ip6.version != 6)
			return L7TAP_CNT_UNPARSABLE;
		off += sizeof(ip6);
		/* payload_len 0 (jumbogram, BIG TCP): unknown. */
		if (ip6.payload_len)
			ip_end = off + bpf_ntohs(ip6.payload_len);
		__builtin_memcpy(pkt->key.saddr, &ip6.saddr, 16);
		__builtin_memcpy(pkt->key.daddr, &ip6.daddr, 16);
		pkt->key.family = 6;
		l4proto = ip6.nexthdr;

#pragma unroll
		for (int i = 0; i < L7TAP_MAX_IPV6_EXT_HEADERS; i++) {
			struct l7tap_ipv6_ext_hdr ext;

			if (l4proto == IPPROTO_TCP)
				break;
			if (l4proto == IPPROTO_FRAGMENT)
				return L7TAP_CNT_FRAGMENTS;
			if (l4proto != IPPROTO_HOPOPTS && l4proto != IPPROTO_ROUTING &&
			    l4proto != IPPROTO_DSTOPTS)
				return L7TAP_CNT_NOT_TCP;
			if (l7tap_load_bytes(ctx, kind, off, &ext, sizeof(ext)))
				return L7TAP_CNT_UNPARSABLE;
			l4proto = ext.nexthdr;
			off += (ext.hdrlen + 1) * 8;
		}
		if (l4proto != IPPROTO_TCP)
			return L7TAP_CNT_UNPARSABLE; /* too many extension headers */
	} else {
		return L7TAP_CNT_NOT_TCP;
	}

	if (l7tap_load_bytes(ctx, kind, off, &th, sizeof(th)))
		return L7TAP_CNT_UNPARSABLE;
	doff = th.doff;
	if (doff < 5)
		return L7TAP_CNT_UNPARSABLE;
	off += doff * 4;
	if (off > len)
		return L7TAP_CNT_UNPARSABLE;

	pkt->payload_off = off;
	/* The skb's length, not the IP length: a GSO/GRO skb carries up to
	 * 64 KB and the window applies per skb. Only a non-GSO skb whose IP
	 * datagram ends before the skb does is trimmed: that tail is link-layer
	 * padding (short Ethernet frames), not payload. */
	pkt->payload_len = len - off;
	if (ip_end && ip_end < len && !l7tap_ctx_is_gso(ctx, kind)) {
		if (ip_end < off)
			return L7TAP_CNT_UNPARSABLE;
		pkt->payload_len = ip_end - off;
	}
	pkt->key.sport = bpf_ntohs(th.source);
	pkt->key.dport = bpf_ntohs(th.dest);
	pkt->seq = bpf_ntohl(th.seq);
	pkt->ack = bpf_ntohl(th.ack_seq);
	pkt->window = bpf_ntohs(th.window);
	pkt->flags = ((__u8 *)&th)[13];
	return L7TAP_CNT_TCP;
}

static __always_inline int l7tap_port_selected(__u16 sport, __u16 dport)
{
	int any = 0;

#pragma unroll
	for (int i = 0; i < L7TAP_MAX_FILTER_PORTS; i++) {
		__u16 p = l7tap_cfg.ports[i];

		if (!p)
			continue;
		if (p == sport || p == dport)
			return 1;
		any = 1;
	}
	return !any;
}

static __always_inline int l7tap_addr_in_cidr(const __u8 *addr, int idx)
{
	__u32 prefix = l7tap_cfg.cidrs[idx].prefix_len;

#pragma unroll
	for (int w = 0; w < 4; w++) {
		__u32 a, n, mask;
		int bits = (int)prefix - 32 * w;

		if (bits <= 0)
			break;
		mask = bits >= 32 ? 0xffffffffu : ~(0xffffffffu >> bits);
		__builtin_memcpy(&a, addr + 4 * w, 4);
		/* A volatile read: casting the volatile away would let the
		 * compiler fold in the initializer's zeros. The addresses are
		 * 4-byte aligned in struct l7tap_config. */
		n = ((const volatile __u32 *)l7tap_cfg.cidrs[idx].addr)[w];
		if ((bpf_ntohl(a) ^ bpf_ntohl(n)) & mask)
			return 0;
	}
	return 1;
}

static __always_inline int l7tap_cidr_selected(const struct l7tap_flow_key *key)
{
	__u8 num = l7tap_cfg.num_cidrs;

	if (!num)
		return 1;
#pragma unroll
	for (int i = 0; i < L7TAP_MAX_FILTER_CIDRS; i++) {
		if (i >= num)
			break;
		if (l7tap_addr_in_cidr(key->saddr, i) || l7tap_addr_in_cidr(key->daddr, i))
			return 1;
	}
	return 0;
}

/* The flows entry of ckey, created for this interface when missing (or when
 * a SYN reopens an ended flow); NULL when the map has no room. */
static __always_inline struct l7tap_flow_counters *
l7tap_flow_get(__u32 ifindex, const struct l7tap_flow_key *ckey, __u8 flags, __u64 now)
{
	struct l7tap_flow_counters *fc = bpf_map_lookup_elem(&flows, ckey);
	struct l7tap_flow_counters init = {};
	__u64 update = BPF_NOEXIST;

	if (fc) {
		if (!fc->ended || (flags & (L7TAP_TCP_SYN | L7TAP_TCP_ACK)) != L7TAP_TCP_SYN)
			return fc;
		update = BPF_EXIST; /* port reuse: a new connection */
	}
	init.first_ns = now;
	init.owner_ifindex = ifindex;
	/* Fails with -EEXIST when another CPU created it first: fine. */
	bpf_map_update_elem(&flows, ckey, &init, update);
	fc = bpf_map_lookup_elem(&flows, ckey);
	if (!fc)
		l7tap_count(L7TAP_CNT_FLOW_MAP_FULL, 1);
	return fc;
}

/* Updates the L4 counters; returns 1 when this packet ends the flow. */
static __always_inline int l7tap_flow_update(struct l7tap_flow_counters *fc,
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

	if (fc->ended)
		return 0;
	if ((flags & L7TAP_TCP_RST) ||
	    ((fc->tcp_flags[0] & L7TAP_TCP_FIN) && (fc->tcp_flags[1] & L7TAP_TCP_FIN))) {
		/* Two CPUs racing here may both send a flow end; user space
		 * keeps the first. */
		fc->ended = 1;
		return 1;
	}
	return 0;
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
	ev->capture_flags = pkt->capture_flags;
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
		if (l7tap_load_bytes(ctx, kind, pkt->payload_off + pkt->data_offset, ev->data,
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

__noinline int l7tap_emit_segment(struct __sk_buff *skb, const struct l7tap_packet *pkt, __u32 dir)
{
	if (!skb || !pkt)
		return 0;
	return l7tap_emit_segment_body(skb, L7TAP_CTX_SKB, pkt, dir);
}

__noinline int l7tap_emit_segment_xdp(struct xdp_md *xdp, const struct l7tap_packet *pkt, __u32 dir)
{
	if (!xdp || !pkt)
		return 0;
	return l7tap_emit_segment_body(xdp, L7TAP_CTX_XDP, pkt, dir);
}

static __always_inline void l7tap_emit(void *ctx, const int kind, const struct l7tap_packet *pkt,
				       __u32 dir)
{
	if (kind == L7TAP_CTX_XDP)
		l7tap_emit_segment_xdp(ctx, pkt, dir);
	else
		l7tap_emit_segment(ctx, pkt, dir);
}

/* The walk of one frame-walked skb in progress (frame_walk.h). */
struct l7tap_walk_scratch {
	struct l7tap_walk_cursor cur;
	struct l7tap_packet part; /* the event being written */
	__u32 dir;
	__u32 abort; /* end the walk now: its step bound ran out */
};

/* One step of the frame walk of pkt: loads the header bytes the walk asks
 * for, or writes the event it hands out. With s->abort set, ends the skb's
 * walk instead. Returns 1 when the skb is done.
 * Global for the same reason as l7tap_emit_segment(): verified once. */
static __always_inline int l7tap_walk_step_body(void *ctx, const int kind,
						const struct l7tap_packet *pkt,
						struct l7tap_frame_walk *w,
						struct l7tap_walk_scratch *s)
{
	const __u32 dir = s->dir;
	__u8 bytes[8] = {};
	__u32 n;
	int step;

	step = s->abort ? l7tap_walk_abort(w, &s->cur) : l7tap_walk_next(w, &s->cur);
	if (step == L7TAP_WALK_HEADER) {
		n = s->cur.hdr_need;
		asm volatile("" : "+r"(n));
		n = ((n - 1) & 7) + 1; /* in [1, 8] for the verifier; hdr_need is 1..5 */
		if (n > L7TAP_WALK_HEADER_BYTES ||
		    l7tap_load_bytes(ctx, kind, pkt->payload_off + s->cur.off, bytes, n)) {
			/* Cannot happen for a payload the parser measured; if it
			 * does, the rest is lost rather than walked blind. */
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
	/* Only the skb's last part ends anything; only its first starts it. */
	if (!s->cur.ev_last)
		s->part.flags &= ~(L7TAP_TCP_FIN | L7TAP_TCP_RST);
	if (s->cur.ev_off) {
		s->part.flags &= ~L7TAP_TCP_SYN;
		s->part.capture_flags |= L7TAP_SEG_PART;
	}
	if (s->cur.ev_last && s->cur.lost) {
		s->part.capture_flags |= L7TAP_SEG_WALK_LOST;
		l7tap_count(L7TAP_CNT_WALK_LOST, 1);
	}
	if (s->cur.ev_skip)
		l7tap_count(L7TAP_CNT_SKIPPED_BYTES, s->cur.ev_skip);
	if (kind == L7TAP_CTX_XDP)
		l7tap_emit_segment_xdp(ctx, &s->part, dir);
	else
		l7tap_emit_segment(ctx, &s->part, dir);
	return s->cur.done;
}

__noinline int l7tap_walk_step(struct __sk_buff *skb, const struct l7tap_packet *pkt,
			       struct l7tap_frame_walk *w, struct l7tap_walk_scratch *s)
{
	if (!skb || !pkt || !w || !s)
		return 1;
	return l7tap_walk_step_body(skb, L7TAP_CTX_SKB, pkt, w, s);
}

__noinline int l7tap_walk_step_xdp(struct xdp_md *xdp, const struct l7tap_packet *pkt,
				   struct l7tap_frame_walk *w, struct l7tap_walk_scratch *s)
{
	if (!xdp || !pkt || !w || !s)
		return 1;
	return l7tap_walk_step_body(xdp, L7TAP_CTX_XDP, pkt, w, s);
}

/* Arms the frame walk of direction d (wkey->flow, d) when pkt is its first
 * payload and starts HTTP/2 (frame_walk.h: l7tap_walk_arm_first()). Global:
 * its buffers stay off the program's own stack. Returns 0. */
static __always_inline int l7tap_walk_detect_body(void *ctx, const int kind,
						  const struct l7tap_packet *pkt,
						  struct l7tap_frame_walk_key *wkey, __u32 d)
{
	__u8 buf[L7TAP_H2_PREFACE_LEN] = {};
	struct l7tap_capture_ctl init = {}, *ctl;
	struct l7tap_frame_walk w;
	__u32 n = L7TAP_H2_FRAME_HEADER;

	if (pkt->payload_len >= L7TAP_H2_PREFACE_LEN)
		n = L7TAP_H2_PREFACE_LEN;
	if (l7tap_load_bytes(ctx, kind, pkt->payload_off, buf, n) ||
	    !l7tap_walk_arm_first(buf, n, pkt->seq, &w))
		return 0;
	ctl = bpf_map_lookup_elem(&capture_ctl, &wkey->flow);
	if (ctl) {
		if (ctl->l4_only)
			return 0;
		ctl->frame_walk = 1;
	} else {
		init.frame_walk = 1;
		/* -EEXIST: the other direction created it on another CPU. */
		if (bpf_map_update_elem(&capture_ctl, &wkey->flow, &init, BPF_NOEXIST) &&
		    !bpf_map_lookup_elem(&capture_ctl, &wkey->flow))
			return 0;
	}
	wkey->pad = 0;
	wkey->dir = d & 1;
	bpf_map_update_elem(&frame_walk, wkey, &w, BPF_ANY);
	return 0;
}

__noinline int l7tap_walk_detect(struct __sk_buff *skb, const struct l7tap_packet *pkt,
				 struct l7tap_frame_walk_key *wkey, __u32 d)
{
	if (!skb || !pkt || !wkey)
		return 0;
	return l7tap_walk_detect_body(skb, L7TAP_CTX_SKB, pkt, wkey, d);
}

__noinline int l7tap_walk_detect_xdp(struct xdp_md *xdp, const struct l7tap_packet *pkt,
				     struct l7tap_frame_walk_key *wkey, __u32 d)
{
	if (!xdp || !pkt || !wkey)
		return 0;
	return l7tap_walk_detect_body(xdp, L7TAP_CTX_XDP, pkt, wkey, d);
}

/* Walks pkt's frames when its direction is frame-walked: returns 1 when the
 * walk wrote the skb's events, 0 when the plain window applies (pkt then
 * carries L7TAP_SEG_WALK_LOST if the walk just lost its place). */
static __always_inline int l7tap_walk(void *ctx, const int kind, struct l7tap_packet *pkt,
				      struct l7tap_frame_walk_key *wkey, __u32 dir)
{
	struct l7tap_walk_scratch s;
	struct l7tap_frame_walk *w;
	int i;

	w = bpf_map_lookup_elem(&frame_walk, wkey);
	if (!w)
		return 0;
	if (!l7tap_walk_begin(w, pkt->seq, pkt->payload_len, l7tap_window(), &s.cur)) {
		if (s.cur.lost) {
			pkt->capture_flags = L7TAP_SEG_WALK_LOST;
			l7tap_count(L7TAP_CNT_WALK_LOST, 1);
		}
		return 0;
	}
	if (!s.cur.whole)
		l7tap_count(L7TAP_CNT_WALKED, 1);
	s.dir = dir;
	s.abort = 0;
	for (i = 0; i < L7TAP_WALK_MAX_STEPS; i++) {
		if (kind == L7TAP_CTX_XDP ? l7tap_walk_step_xdp(ctx, pkt, w, &s)
					  : l7tap_walk_step(ctx, pkt, w, &s))
			return 1;
	}
	s.abort = 1;
	if (kind == L7TAP_CTX_XDP)
		l7tap_walk_step_xdp(ctx, pkt, w, &s);
	else
		l7tap_walk_step(ctx, pkt, w, &s);
	return 1;
}

static __always_inline void l7tap_emit_flow_end(__u32 ifindex, const struct l7tap_flow_key *ckey,
						const struct l7tap_flow_counters *fc, __u8 dir,
						__u64 now)
{
	struct l7tap_flow_end_event *ev;

	ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);
	if (!ev) {
		l7tap_count(L7TAP_CNT_RINGBUF_FULL, 1);
		return;
	}
	l7tap_fill_header(&ev->hdr, ifindex, L7TAP_EVENT_FLOW_END, dir, now);
	ev->key = *ckey;
	__builtin_memcpy(&ev->counters, fc, sizeof(ev->counters));
	bpf_ringbuf_submit(ev, l7tap_wakeup_flags(sizeof(*ev)));
}

static __always_inline void l7tap_handle(void *ctx, const int kind, const __u8 dir)
{
	const __u32 ifindex = l7tap_ctx_ifindex(ctx, kind);
	struct l7tap_packet pkt = {};
	struct l7tap_frame_walk_key wkey; /* .flow: the canonical key */
	struct l7tap_flow_counters *fc;
	struct l7tap_capture_ctl *ctl;
	__u32 verdict, d;
	__u64 now;
	int ended = 0;

	l7tap_count(L7TAP_CNT_PACKETS, 1);
	verdict = l7tap_parse(ctx, kind, &pkt);
	l7tap_count(verdict, 1);
	if (verdict != L7TAP_CNT_TCP)
		return;

	if (!l7tap_port_selected(pkt.key.sport, pkt.key.dport) || !l7tap_cidr_selected(&pkt.key)) {
		l7tap_count(L7TAP_CNT_FILTERED, 1);
		return;
	}

	now = bpf_ktime_get_ns();
	pkt.ts_ns = now;
	d = l7tap_canonical(&pkt.key, &wkey.flow);
	fc = l7tap_flow_get(ifindex, &wkey.flow, pkt.flags, now);
	if (fc) {
		/* A pod-to-pod flow crosses two attached veths, and TC sees each
		 * packet twice (egress of one, ingress of the other): the
		 * interface that saw the flow first reports it. XDP sees a packet
		 * only where it is received, once: every interface reports what
		 * it receives (on pod veths, the requests on the client's and
		 * the responses on the server's). */
		if (kind == L7TAP_CTX_SKB && fc->owner_ifindex != ifindex) {
			l7tap_count(L7TAP_CNT_NOT_OWNER, 1);
			return;
		}
		ended = l7tap_flow_update(fc, &pkt, d, now);
	}

	/* The first payload of this direction: does it start HTTP/2? */
	if (l7tap_cfg.frame_walk && fc && pkt.payload_len >= L7TAP_H2_FRAME_HEADER &&
	    fc->bytes[d & 1] == pkt.payload_len) {
		if (kind == L7TAP_CTX_XDP)
			l7tap_walk_detect_xdp(ctx, &pkt, &wkey, d);
		else
			l7tap_walk_detect(ctx, &pkt, &wkey, d);
	}

	ctl = bpf_map_lookup_elem(&capture_ctl, &wkey.flow);
	if (ctl && ctl->l4_only) {
		l7tap_count(L7TAP_CNT_L4_ONLY, 1);
		if (pkt.flags & (L7TAP_TCP_SYN | L7TAP_TCP_FIN | L7TAP_TCP_RST))
			l7tap_emit(ctx, kind, &pkt, dir);
		goto flow_end;
	}

	l7tap_count(L7TAP_CNT_PAYLOAD_BYTES, pkt.payload_len);
	if (ctl && ctl->frame_walk && pkt.payload_len) {
		wkey.dir = d & 1;
		wkey.pad = 0;
		if (l7tap_walk(ctx, kind, &pkt, &wkey, dir))
			goto flow_end;
	}
	if (ctl && pkt.payload_len) {
		pkt.data_offset = l7tap_skip_len(pkt.seq, pkt.payload_len, ctl->skip_start[d & 1],
						 ctl->skip_end[d & 1]);
		if (pkt.data_offset)
			l7tap_count(L7TAP_CNT_SKIPPED_BYTES, pkt.data_offset);
	}
	pkt.captured_len =
	    l7tap_window_capture_len(pkt.payload_len - pkt.data_offset, l7tap_window());
	if (pkt.captured_len > L7TAP_MAX_EVENT_PAYLOAD)
		pkt.captured_len = L7TAP_MAX_EVENT_PAYLOAD;
	l7tap_emit(ctx, kind, &pkt, dir);

flow_end:
	if (ended && fc)
		l7tap_emit_flow_end(ifindex, &wkey.flow, fc, dir, now);
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
