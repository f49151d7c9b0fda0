/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The packet parser: from the EtherType (or the Ethernet header) to the TCP
 * segment, with one set of bounds, compiled into the BPF program and into
 * replay's decoder, so both take the same packets and reject the others for
 * the same reason.
 *
 * Bytes come through a loader the includer defines before including this
 * header:
 *
 *   static inline long l7tap_env_load(void *ctx, const int kind, __u32 off,
 *                                     void *to, __u32 len);
 *
 * copying len bytes at frame offset off into to, 0 on success (the kernel:
 * bpf_skb_load_bytes() or bpf_xdp_load_bytes(); replay: a bounds-checked copy
 * from the captured frame). `kind` is the BPF program's context kind, a
 * constant the compiler folds; replay ignores it.
 *
 * Lengths: `len` is the frame's length on the wire, `caplen` what can be
 * loaded of it (the same in the kernel; replay's snap length may be
 * shorter). The payload's length is the frame's rest, except that a frame
 * whose IP datagram ends before the frame does ends there (the tail is
 * link-layer padding of short Ethernet frames); a GSO/GRO skb carries
 * several segments, its length counts (the window applies per skb), and its
 * IP length field may not. An IP length of 0 (BIG TCP, jumbograms) is
 * unknown.
 */
#ifndef L7TAP_PACKET_PARSE_H
#define L7TAP_PACKET_PARSE_H

#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/tcp.h>
#include <linux/types.h>

#include <bpf/bpf_endian.h>

#include "tc/l7tap_abi.h"
#include "tc/packet.h"

#ifndef __always_inline
#define __always_inline inline __attribute__((always_inline))
#endif

/* VLAN tags (802.1Q 0x8100, 802.1ad 0x88a8, the older QinQ 0x9100) skipped
 * in the data; a tag the kernel moved into skb metadata is not there. */
#define L7TAP_MAX_VLAN_TAGS 4
/* IPv6 extension headers skipped before giving up on a packet. */
#define L7TAP_MAX_IPV6_EXT_HEADERS 8

#define L7TAP_ETH_P_QINQ_OLD 0x9100
#define L7TAP_IP_MF 0x2000
#define L7TAP_IP_OFFSET 0x1fff

#ifdef __bpf__
#define L7TAP_UNROLL _Pragma("unroll")
#else
#define L7TAP_UNROLL
#endif

/* Why a packet is, or is not, a TCP segment. Replay counts each; the kernel
 * folds them into its counters (l7tap_parse_counter()). */
enum l7tap_parse_result {
	L7TAP_PARSE_TCP = 0,
	L7TAP_PARSE_NOT_IP = 1,	   /* ARP, LLDP, too many VLAN tags, ... */
	L7TAP_PARSE_NOT_TCP = 2,   /* UDP, ICMP, ... */
	L7TAP_PARSE_FRAGMENT = 3,  /* IPv4 or IPv6 fragment: not reassembled */
	L7TAP_PARSE_TRUNCATED = 4, /* a header cut short */
	L7TAP_PARSE_MALFORMED = 5, /* lengths or versions that make no sense */
};

/* Copies len bytes at frame offset off into to; 0 on success. Defined by
 * the includer. */
static __always_inline long l7tap_env_load(void *ctx, const int kind, __u32 off, void *to,
					   __u32 len);

struct l7tap_vlan_hdr {
	__be16 tci;
	__be16 encapsulated_proto;
};

struct l7tap_ipv6_ext_hdr {
	__u8 nexthdr;
	__u8 hdrlen;
};

static __always_inline __u32 l7tap_parse_counter(int result)
{
	switch (result) {
	case L7TAP_PARSE_TCP:
		return L7TAP_CNT_TCP;
	case L7TAP_PARSE_NOT_IP:
	case L7TAP_PARSE_NOT_TCP:
		return L7TAP_CNT_NOT_TCP;
	case L7TAP_PARSE_FRAGMENT:
		return L7TAP_CNT_FRAGMENTS;
	default:
		return L7TAP_CNT_UNPARSABLE;
	}
}

/* The first bytes of a frame, loaded at once: the Ethernet header, then
 * either an IPv4 header without options and the TCP base header, or the
 * IPv6 fixed header. One load instead of one per header for most packets;
 * the parser takes from it what lies where it expects a header, and loads
 * the rest. Two bytes in front so the IP header is 4-byte aligned. */
#define L7TAP_FRAME_HEAD_LEN (ETH_HLEN + 40)

struct l7tap_frame_head {
	__u8 align[2];
	__u8 eth[ETH_HLEN];
	union {
		struct {
			struct iphdr ip;
			struct tcphdr th;
		} v4;
		struct ipv6hdr ip6;
	} l3;
};

/* Loads the frame's head; 0 when the frame is shorter (it is then parsed
 * header by header). */
static __always_inline int l7tap_load_head(void *ctx, const int kind, __u32 caplen,
					   struct l7tap_frame_head *head)
{
	return caplen >= L7TAP_FRAME_HEAD_LEN &&
	       !l7tap_env_load(ctx, kind, 0, head->eth, L7TAP_FRAME_HEAD_LEN);
}

static __always_inline void l7tap_set_ipv4(__u8 *dst, const __be32 *addr)
{
	__builtin_memset(dst, 0, 10);
	__builtin_memset(dst + 10, 0xff, 2);
	__builtin_memcpy(dst + 12, addr, 4);
}

/* Encapsulations: the parser takes off up to L7TAP_MAX_ENCAP of them (a
 * PPPoE session header does not count: it is a link layer), and records the
 * innermost in pkt->tunnel. Which ones it knows is a mask of
 * (1 << enum l7tap_tunnel_type) bits: the BPF program only VXLAN and Geneve
 * (what a node's overlay carries, kept small for the verifier), replay all. */
#ifndef L7TAP_MAX_ENCAP
#define L7TAP_MAX_ENCAP 2
#endif
#ifndef L7TAP_PARSE_TUNNELS
#ifdef __bpf__
#define L7TAP_PARSE_TUNNELS L7TAP_BPF_PARSE_TUNNELS
#else
#define L7TAP_PARSE_TUNNELS L7TAP_TUNNELS_ALL
#endif
#endif
#define L7TAP_PARSES_TUNNEL(mask) ((L7TAP_PARSE_TUNNELS & (mask)) != 0)

#define L7TAP_UDP_PORT_VXLAN 4789
#define L7TAP_UDP_PORT_GENEVE 6081
#define L7TAP_VXLAN_FLAG_I 0x08
#define L7TAP_ETH_P_TEB 0x6558 /* transparent Ethernet bridging */
#define L7TAP_ETH_P_PPP_SES 0x8864
#define L7TAP_PPP_IP 0x0021
#define L7TAP_PPP_IPV6 0x0057
#define L7TAP_GRE_CSUM 0x8000
#define L7TAP_GRE_ROUTING 0x4000
#define L7TAP_GRE_KEY 0x2000
#define L7TAP_GRE_SEQ 0x1000
#define L7TAP_GRE_VERSION 0x0007
#define L7TAP_IPPROTO_GRE 47
#define L7TAP_IPPROTO_IPIP 4
#define L7TAP_IPPROTO_IPV6 41

/* Not a verdict: the parser goes on with the next, inner, header. */
#define L7TAP_PARSE_NEXT (-1)

/* An 8-byte tunnel header (UDP's, VXLAN's, Geneve's, GRE's base and key). */
struct l7tap_encap_hdr {
	__u8 b[8];
};

/* Where the parser loads each header: one buffer, so that the stack holds
 * the largest of them once (the BPF program has little to spare). */
union l7tap_hdr_buf {
	struct l7tap_vlan_hdr vh;
	struct iphdr ip;
	struct ipv6hdr ip6;
	struct l7tap_ipv6_ext_hdr ext;
	struct tcphdr th;
	struct l7tap_encap_hdr encap;
};

/* Records the encapsulation just taken off; the outer addresses are those
 * the packet's IP header (already in pkt->key) had. */
static __always_inline void l7tap_set_tunnel(struct l7tap_packet *pkt, __u8 type, __u32 id,
					     __u8 has_id, int outer_ip)
{
	if (outer_ip) {
		__builtin_memcpy(pkt->tunnel.outer_saddr, pkt->key.saddr, 16);
		__builtin_memcpy(pkt->tunnel.outer_daddr, pkt->key.daddr, 16);
		pkt->tunnel.outer_family = pkt->key.family;
	} else {
		__builtin_memset(pkt->tunnel.outer_saddr, 0, 32);
		pkt->tunnel.outer_family = 0;
	}
	pkt->tunnel.id = id;
	pkt->tunnel.type = type;
	pkt->tunnel.has_id = has_id;
	pkt->tunnel.depth++;
}

/* An inner Ethernet header at *off: its EtherType, and the offset past it. */
static __always_inline int l7tap_inner_eth(void *ctx, const int kind, __u32 *off, __u16 *proto)
{
	__be16 h_proto;

	if (l7tap_env_load(ctx, kind, *off + 12, &h_proto, sizeof(h_proto)))
		return L7TAP_PARSE_TRUNCATED;
	*proto = bpf_ntohs(h_proto);
	*off += ETH_HLEN;
	return L7TAP_PARSE_NEXT;
}

/* The payload type of Geneve and GRE: Ethernet, IPv4 or IPv6. */
static __always_inline int l7tap_encap_payload(void *ctx, const int kind, __u32 *off, __u16 *proto,
					       __u16 type)
{
	if (type == L7TAP_ETH_P_TEB)
		return l7tap_inner_eth(ctx, kind, off, proto);
	if (type != ETH_P_IP && type != ETH_P_IPV6)
		return L7TAP_PARSE_NOT_TCP;
	*proto = type;
	return L7TAP_PARSE_NEXT;
}

/* A PPPoE session header (RFC 2516) and the PPP protocol at off. */
static __always_inline int l7tap_parse_pppoe(void *ctx, const int kind, __u32 *off, __u16 *proto,
					     struct l7tap_packet *pkt, union l7tap_hdr_buf *hb)
{
	struct l7tap_encap_hdr *h = &hb->encap;
	__u16 ppp;

	l7tap_set_tunnel(pkt, L7TAP_TUNNEL_PPPOE, 0, 0, 0);
	if (l7tap_env_load(ctx, kind, *off, h, sizeof(*h)))
		return L7TAP_PARSE_TRUNCATED;
	if (h->b[0] != 0x11 || h->b[1] != 0) /* version 1, type 1; code 0: session data */
		return L7TAP_PARSE_MALFORMED;
	ppp = (__u16)(h->b[6] << 8 | h->b[7]);
	if (ppp == L7TAP_PPP_IP)
		*proto = ETH_P_IP;
	else if (ppp == L7TAP_PPP_IPV6)
		*proto = ETH_P_IPV6;
	else
		return L7TAP_PARSE_NOT_IP; /* LCP, IPCP, ... */
	pkt->tunnel.id = (__u32)(h->b[2] << 8 | h->b[3]);
	pkt->tunnel.has_id = 1;
	*off += sizeof(*h);
	return L7TAP_PARSE_NEXT;
}

/* The tunnel whose header starts at *off, after an IP header whose protocol
 * is l4proto (not TCP): L7TAP_PARSE_NEXT with the inner header's EtherType
 * in *proto and its offset in *off, or the verdict. udp_dport: the UDP
 * destination port when the caller had it at hand (the frame's head), else
 * 0. */
static __always_inline int l7tap_parse_encap(void *ctx, const int kind, __u32 *off, __u16 *proto,
					     __u8 l4proto, __u16 udp_dport,
					     struct l7tap_packet *pkt, union l7tap_hdr_buf *hb)
{
	struct l7tap_encap_hdr *h = &hb->encap;

#if L7TAP_PARSE_TUNNELS & L7TAP_TUNNELS_UDP
	if (l4proto == IPPROTO_UDP) {
		if (!udp_dport) {
			/* Cut short: what it carries is unknown. */
			if (l7tap_env_load(ctx, kind, *off, h, sizeof(*h)))
				return L7TAP_PARSE_NOT_TCP;
			udp_dport = (__u16)(h->b[2] << 8 | h->b[3]);
		}
		if (L7TAP_PARSES_TUNNEL(L7TAP_TUNNEL_MASK_VXLAN) &&
		    udp_dport == L7TAP_UDP_PORT_VXLAN) {
			/* RFC 7348: flags (I: the VNI is valid), 24 reserved
			 * bits, the VNI, 8 reserved bits. Linux drops a VXLAN
			 * packet without I. */
			l7tap_set_tunnel(pkt, L7TAP_TUNNEL_VXLAN, 0, 0, 1);
			if (l7tap_env_load(ctx, kind, *off + 8, h, sizeof(*h)))
				return L7TAP_PARSE_TRUNCATED;
			if (!(h->b[0] & L7TAP_VXLAN_FLAG_I))
				return L7TAP_PARSE_MALFORMED;
			pkt->tunnel.id = (__u32)(h->b[4] << 16 | h->b[5] << 8 | h->b[6]);
			pkt->tunnel.has_id = 1;
			*off += 16;
			return l7tap_inner_eth(ctx, kind, off, proto);
		}
		if (L7TAP_PARSES_TUNNEL(L7TAP_TUNNEL_MASK_GENEVE) &&
		    udp_dport == L7TAP_UDP_PORT_GENEVE) {
			/* RFC 8926: version (2 bits), options length (6 bits,
			 * 4-byte words), flags, protocol type, VNI, reserved. */
			l7tap_set_tunnel(pkt, L7TAP_TUNNEL_GENEVE, 0, 0, 1);
			if (l7tap_env_load(ctx, kind, *off + 8, h, sizeof(*h)))
				return L7TAP_PARSE_TRUNCATED;
			if (h->b[0] >> 6)
				return L7TAP_PARSE_MALFORMED;
			pkt->tunnel.id = (__u32)(h->b[4] << 16 | h->b[5] << 8 | h->b[6]);
			pkt->tunnel.has_id = 1;
			*off += 16 + (h->b[0] & 0x3f) * 4;
			return l7tap_encap_payload(ctx, kind, off, proto,
						   (__u16)(h->b[2] << 8 | h->b[3]));
		}
		return L7TAP_PARSE_NOT_TCP;
	}
#endif
#if L7TAP_PARSE_TUNNELS & L7TAP_TUNNEL_MASK_GRE
	if (l4proto == L7TAP_IPPROTO_GRE) {
		__u16 flags, type;
		__u32 hlen = 4;

		/* RFC 2784/2890: C, R, K, S flags, version; the protocol
		 * type; then checksum and reserved, key, sequence number as
		 * the flags say. As Linux: version 0 only (1 is PPTP's), no
		 * routing (RFC 1701). */
		l7tap_set_tunnel(pkt, L7TAP_TUNNEL_GRE, 0, 0, 1);
		if (l7tap_env_load(ctx, kind, *off, h, sizeof(*h)))
			return L7TAP_PARSE_TRUNCATED;
		flags = (__u16)(h->b[0] << 8 | h->b[1]);
		type = (__u16)(h->b[2] << 8 | h->b[3]);
		if (flags & (L7TAP_GRE_ROUTING | L7TAP_GRE_VERSION))
			return L7TAP_PARSE_NOT_TCP;
		if (flags & L7TAP_GRE_CSUM)
			hlen += 4;
		if (flags & L7TAP_GRE_KEY) {
			if (l7tap_env_load(ctx, kind, *off + hlen, h, 4))
				return L7TAP_PARSE_TRUNCATED;
			pkt->tunnel.id = (__u32)h->b[0] << 24 | (__u32)h->b[1] << 16 |
					 (__u32)h->b[2] << 8 | h->b[3];
			pkt->tunnel.has_id = 1;
			hlen += 4;
		}
		if (flags & L7TAP_GRE_SEQ)
			hlen += 4;
		*off += hlen;
		return l7tap_encap_payload(ctx, kind, off, proto, type);
	}
#endif
#if L7TAP_PARSE_TUNNELS & L7TAP_TUNNELS_IP_IN_IP
	if (l4proto == L7TAP_IPPROTO_IPIP || l4proto == L7TAP_IPPROTO_IPV6) {
		const int inner6 = l4proto == L7TAP_IPPROTO_IPV6;
		__u8 type;

		if (pkt->key.family == 4)
			type = inner6 ? L7TAP_TUNNEL_6IN4 : L7TAP_TUNNEL_IPIP;
		else
			type = inner6 ? L7TAP_TUNNEL_6IN6 : L7TAP_TUNNEL_4IN6;
		if (!(L7TAP_PARSE_TUNNELS & (1u << type)))
			return L7TAP_PARSE_NOT_TCP;
		l7tap_set_tunnel(pkt, type, 0, 0, 1);
		*proto = inner6 ? ETH_P_IPV6 : ETH_P_IP;
		return L7TAP_PARSE_NEXT;
	}
#endif
	(void)ctx;
	(void)off;
	(void)proto;
	(void)udp_dport;
	(void)pkt;
	(void)h;
	(void)hb;
	return L7TAP_PARSE_NOT_TCP;
}

/* Where the passes after the first start (l7tap_env_parse_inner()). */
struct l7tap_parse_at {
	__u32 off;
	__u32 ip_end;
	__u32 len;
	__u16 proto;
	__u16 gso;
};

#ifdef L7TAP_PARSE_INNER_CALL
/* Parses a tunnel's inside: l7tap_parse_passes() from pass 1 (the kernel:
 * through a global function that the verifier checks once, instead of with
 * every path through the outer headers). Defined by the includer. */
static __always_inline int l7tap_env_parse_inner(void *ctx, const int kind,
						 struct l7tap_parse_at *at,
						 struct l7tap_packet *pkt);
#else
#define L7TAP_PARSE_INNER_CALL 0
/* Never called: the passes loop in line. */
static __always_inline int l7tap_env_parse_inner(void *ctx, const int kind,
						 struct l7tap_parse_at *at,
						 struct l7tap_packet *pkt)
{
	(void)ctx;
	(void)kind;
	(void)at;
	(void)pkt;
	return L7TAP_PARSE_MALFORMED;
}
#endif

/* Parses from offset off, where a header of EtherType proto (host order)
 * starts: VLAN tags, PPPoE, IPv4 or IPv6 (with extension headers), the
 * encapsulations above (and what they carry, from the top), TCP. head: the
 * frame's first L7TAP_FRAME_HEAD_LEN bytes when have_head. ip_end: where an
 * outer IP header says its datagram ends (0: unknown); first: the pass
 * (encapsulation depth) this is; call_inner: hand the passes after this one
 * to l7tap_env_parse_inner(). */
static __always_inline int l7tap_parse_passes(void *ctx, const int kind, __u32 off, __u16 proto,
					      __u32 len, __u32 caplen, int gso,
					      struct l7tap_packet *pkt,
					      const struct l7tap_frame_head *head, int have_head,
					      __u32 ip_end, const int first, const int call_inner)
{
	int tcp_in_head = 0;
	union l7tap_hdr_buf hb;
	__u32 doff;
	__u8 l4proto;

	/* One pass per IP layer: the outermost, then each tunnel's. */
	L7TAP_UNROLL
	for (int depth = first; depth <= L7TAP_MAX_ENCAP; depth++) {
		L7TAP_UNROLL
		for (int i = 0; i < L7TAP_MAX_VLAN_TAGS; i++) {
			if (proto != ETH_P_8021Q && proto != ETH_P_8021AD &&
			    proto != L7TAP_ETH_P_QINQ_OLD)
				break;
			if (l7tap_env_load(ctx, kind, off, &hb.vh, sizeof(hb.vh)))
				return L7TAP_PARSE_TRUNCATED;
			proto = bpf_ntohs(hb.vh.encapsulated_proto);
			off += sizeof(hb.vh);
		}

#if L7TAP_PARSE_TUNNELS & L7TAP_TUNNEL_MASK_PPPOE
		if (proto == L7TAP_ETH_P_PPP_SES) {
			int r = l7tap_parse_pppoe(ctx, kind, &off, &proto, pkt, &hb);

			if (r != L7TAP_PARSE_NEXT)
				return r;
		}
#endif

		if (proto == ETH_P_IP) {
			__u32 ihl;

			if (have_head && off == ETH_HLEN)
				hb.ip = head->l3.v4.ip;
			else if (l7tap_env_load(ctx, kind, off, &hb.ip, sizeof(hb.ip)))
				return L7TAP_PARSE_TRUNCATED;
			ihl = hb.ip.ihl * 4;
			tcp_in_head = have_head && off == ETH_HLEN && ihl == sizeof(hb.ip);
			if (hb.ip.version != 4 || ihl < sizeof(hb.ip))
				return L7TAP_PARSE_MALFORMED;
			/* tot_len 0 (BIG TCP): unknown. A tunnel's inner
			 * datagram may not end after the outer one. */
			if (hb.ip.tot_len) {
				if (bpf_ntohs(hb.ip.tot_len) < ihl)
					return L7TAP_PARSE_MALFORMED;
				if (!ip_end || off + bpf_ntohs(hb.ip.tot_len) < ip_end)
					ip_end = off + bpf_ntohs(hb.ip.tot_len);
			}
			pkt->key.family = 4;
			if (hb.ip.frag_off & bpf_htons(L7TAP_IP_MF | L7TAP_IP_OFFSET)) {
				pkt->frag_off = (__u16)off;
				return L7TAP_PARSE_FRAGMENT;
			}
			pkt->addr_off = off + 12;
			l7tap_set_ipv4(pkt->key.saddr, &hb.ip.saddr);
			l7tap_set_ipv4(pkt->key.daddr, &hb.ip.daddr);
			l4proto = hb.ip.protocol;
			off += ihl;
		} else if (proto == ETH_P_IPV6) {
			__u32 ip_off = off;

			if (have_head && off == ETH_HLEN)
				hb.ip6 = head->l3.ip6;
			else if (l7tap_env_load(ctx, kind, off, &hb.ip6, sizeof(hb.ip6)))
				return L7TAP_PARSE_TRUNCATED;
			if (hb.ip6.version != 6)
				return L7TAP_PARSE_MALFORMED;
			pkt->addr_off = off + 8;
			off += sizeof(hb.ip6);
			/* payload_len 0 (jumbogram, BIG TCP): unknown. */
			if (hb.ip6.payload_len &&
			    (!ip_end || off + bpf_ntohs(hb.ip6.payload_len) < ip_end))
				ip_end = off + bpf_ntohs(hb.ip6.payload_len);
			__builtin_memcpy(pkt->key.saddr, &hb.ip6.saddr, 16);
			__builtin_memcpy(pkt->key.daddr, &hb.ip6.daddr, 16);
			pkt->key.family = 6;
			l4proto = hb.ip6.nexthdr;

			L7TAP_UNROLL
			for (int i = 0; i < L7TAP_MAX_IPV6_EXT_HEADERS; i++) {
				if (l4proto == IPPROTO_TCP)
					break;
				if (l4proto == IPPROTO_FRAGMENT) {
					pkt->frag_off = (__u16)ip_off;
					return L7TAP_PARSE_FRAGMENT;
				}
				if (l4proto != IPPROTO_HOPOPTS && l4proto != IPPROTO_ROUTING &&
				    l4proto != IPPROTO_DSTOPTS && l4proto != IPPROTO_AH)
					break; /* the upper layer, or a tunnel */
				if (l7tap_env_load(ctx, kind, off, &hb.ext, sizeof(hb.ext)))
					return L7TAP_PARSE_TRUNCATED;
				/* AH counts 4-byte words less two, the others
				 * 8-byte words less one. */
				if (l4proto == IPPROTO_AH)
					off += (hb.ext.hdrlen + 2) * 4;
				else
					off += (hb.ext.hdrlen + 1) * 8;
				l4proto = hb.ext.nexthdr;
			}
			if (l4proto != IPPROTO_TCP &&
			    (l4proto == IPPROTO_HOPOPTS || l4proto == IPPROTO_ROUTING ||
			     l4proto == IPPROTO_DSTOPTS || l4proto == IPPROTO_AH ||
			     l4proto == IPPROTO_FRAGMENT))
				return L7TAP_PARSE_MALFORMED; /* too many extension headers */
		} else {
			return L7TAP_PARSE_NOT_IP;
		}

		if (l4proto == IPPROTO_TCP)
			break;
		if (!L7TAP_PARSE_TUNNELS || depth == L7TAP_MAX_ENCAP)
			return L7TAP_PARSE_NOT_TCP;
		{
			/* The head holds the UDP header where it holds TCP's. */
			const __u16 udp_dport = tcp_in_head ? bpf_ntohs(head->l3.v4.th.dest) : 0;
			int r;

			tcp_in_head = 0;
			r = l7tap_parse_encap(ctx, kind, &off, &proto, l4proto, udp_dport, pkt,
					      &hb);
			if (r != L7TAP_PARSE_NEXT)
				return r;
		}
		if (L7TAP_PARSE_INNER_CALL && call_inner) {
			struct l7tap_parse_at at = {
			    .off = off, .ip_end = ip_end, .len = len, .proto = proto, .gso = !!gso};

			return l7tap_env_parse_inner(ctx, kind, &at, pkt);
		}
	}

	if (tcp_in_head)
		hb.th = head->l3.v4.th;
	else if (l7tap_env_load(ctx, kind, off, &hb.th, sizeof(hb.th)))
		return L7TAP_PARSE_TRUNCATED;
	doff = hb.th.doff;
	if (doff < 5)
		return L7TAP_PARSE_MALFORMED;
	pkt->tcp_off = off;
	off += doff * 4;
	if (off > len || (ip_end && ip_end < off))
		return L7TAP_PARSE_MALFORMED;
	if (off > caplen)
		return L7TAP_PARSE_TRUNCATED; /* TCP options cut by the snap length */

	pkt->payload_off = off;
	pkt->payload_len = len - off;
	if (ip_end && ip_end < len && !gso)
		pkt->payload_len = ip_end - off;
	pkt->key.sport = bpf_ntohs(hb.th.source);
	pkt->key.dport = bpf_ntohs(hb.th.dest);
	pkt->seq = bpf_ntohl(hb.th.seq);
	pkt->ack = bpf_ntohl(hb.th.ack_seq);
	pkt->window = bpf_ntohs(hb.th.window);
	pkt->flags = ((__u8 *)&hb.th)[13];
	return L7TAP_PARSE_TCP;
}

static __always_inline int l7tap_parse_headers(void *ctx, const int kind, __u32 off, __u16 proto,
					       __u32 len, __u32 caplen, int gso,
					       struct l7tap_packet *pkt,
					       const struct l7tap_frame_head *head, int have_head)
{
	return l7tap_parse_passes(ctx, kind, off, proto, len, caplen, gso, pkt, head, have_head, 0,
				  0, 1);
}

/* A tunnel's inside, from l7tap_env_parse_inner(): the kernel's whole frame
 * is loadable (len is caplen). */
static __always_inline int l7tap_parse_inner(void *ctx, const int kind,
					     const struct l7tap_parse_at *at,
					     struct l7tap_packet *pkt)
{
	return l7tap_parse_passes(ctx, kind, at->off, at->proto, at->len, at->len, at->gso, pkt, 0,
				  0, at->ip_end, 1, 0);
}

static __always_inline int l7tap_parse_from(void *ctx, const int kind, __u32 off, __u16 proto,
					    __u32 len, __u32 caplen, int gso,
					    struct l7tap_packet *pkt)
{
	return l7tap_parse_headers(ctx, kind, off, proto, len, caplen, gso, pkt, 0, 0);
}

/* Parses an Ethernet frame. head: room for the frame's head, which stays
 * there when the function returns 1 in *have_head (the kernel's pairing of
 * a packet's two runs reads the addresses and TCP header from it). */
static __always_inline int l7tap_parse_eth_head(void *ctx, const int kind, __u32 len, __u32 caplen,
						int gso, struct l7tap_packet *pkt,
						struct l7tap_frame_head *head, int *have_head)
{
	__be16 h_proto;

	*have_head = l7tap_load_head(ctx, kind, caplen, head);
	if (*have_head)
		__builtin_memcpy(&h_proto, head->eth + 12, sizeof(h_proto));
	else if (l7tap_env_load(ctx, kind, 12, &h_proto, sizeof(h_proto)))
		return L7TAP_PARSE_TRUNCATED;
	return l7tap_parse_headers(ctx, kind, ETH_HLEN, bpf_ntohs(h_proto), len, caplen, gso, pkt,
				   head, *have_head);
}

static __always_inline int l7tap_parse_eth(void *ctx, const int kind, __u32 len, __u32 caplen,
					   int gso, struct l7tap_packet *pkt)
{
	struct l7tap_frame_head head;
	int have_head;

	return l7tap_parse_eth_head(ctx, kind, len, caplen, gso, pkt, &head, &have_head);
}

#endif /* L7TAP_PACKET_PARSE_H */
