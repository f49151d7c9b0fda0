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

/* Parses from offset off, where a header of EtherType proto (host order)
 * starts: VLAN tags, IPv4 or IPv6 (with extension headers), TCP. head: the
 * frame's first L7TAP_FRAME_HEAD_LEN bytes when have_head. */
static __always_inline int l7tap_parse_headers(void *ctx, const int kind, __u32 off, __u16 proto,
					       __u32 len, __u32 caplen, int gso,
					       struct l7tap_packet *pkt,
					       const struct l7tap_frame_head *head, int have_head)
{
	__u32 ip_end = 0; /* end of the IP datagram per its header, 0: unknown */
	int tcp_in_head = 0;
	struct tcphdr th;
	__u32 doff;
	__u8 l4proto;

	L7TAP_UNROLL
	for (int i = 0; i < L7TAP_MAX_VLAN_TAGS; i++) {
		struct l7tap_vlan_hdr vh;

		if (proto != ETH_P_8021Q && proto != ETH_P_8021AD && proto != L7TAP_ETH_P_QINQ_OLD)
			break;
		if (l7tap_env_load(ctx, kind, off, &vh, sizeof(vh)))
			return L7TAP_PARSE_TRUNCATED;
		proto = bpf_ntohs(vh.encapsulated_proto);
		off += sizeof(vh);
	}

	if (proto == ETH_P_IP) {
		struct iphdr iph;
		__u32 ihl;

		if (have_head && off == ETH_HLEN)
			iph = head->l3.v4.ip;
		else if (l7tap_env_load(ctx, kind, off, &iph, sizeof(iph)))
			return L7TAP_PARSE_TRUNCATED;
		ihl = iph.ihl * 4;
		tcp_in_head = have_head && off == ETH_HLEN && ihl == sizeof(iph);
		if (iph.version != 4 || ihl < sizeof(iph))
			return L7TAP_PARSE_MALFORMED;
		/* tot_len 0 (BIG TCP): unknown. */
		if (iph.tot_len) {
			if (bpf_ntohs(iph.tot_len) < ihl)
				return L7TAP_PARSE_MALFORMED;
			ip_end = off + bpf_ntohs(iph.tot_len);
		}
		if (iph.frag_off & bpf_htons(L7TAP_IP_MF | L7TAP_IP_OFFSET))
			return L7TAP_PARSE_FRAGMENT;
		if (iph.protocol != IPPROTO_TCP)
			return L7TAP_PARSE_NOT_TCP;
		pkt->addr_off = off + 12;
		l7tap_set_ipv4(pkt->key.saddr, &iph.saddr);
		l7tap_set_ipv4(pkt->key.daddr, &iph.daddr);
		pkt->key.family = 4;
		off += ihl;
	} else if (proto == ETH_P_IPV6) {
		struct ipv6hdr ip6;

		if (have_head && off == ETH_HLEN)
			ip6 = head->l3.ip6;
		else if (l7tap_env_load(ctx, kind, off, &ip6, sizeof(ip6)))
			return L7TAP_PARSE_TRUNCATED;
		if (ip6.version != 6)
			return L7TAP_PARSE_MALFORMED;
		pkt->addr_off = off + 8;
		off += sizeof(ip6);
		/* payload_len 0 (jumbogram, BIG TCP): unknown. */
		if (ip6.payload_len)
			ip_end = off + bpf_ntohs(ip6.payload_len);
		__builtin_memcpy(pkt->key.saddr, &ip6.saddr, 16);
		__builtin_memcpy(pkt->key.daddr, &ip6.daddr, 16);
		pkt->key.family = 6;
		l4proto = ip6.nexthdr;

		L7TAP_UNROLL
		for (int i = 0; i < L7TAP_MAX_IPV6_EXT_HEADERS; i++) {
			struct l7tap_ipv6_ext_hdr ext;

			if (l4proto == IPPROTO_TCP)
				break;
			if (l4proto == IPPROTO_FRAGMENT)
				return L7TAP_PARSE_FRAGMENT;
			if (l4proto != IPPROTO_HOPOPTS && l4proto != IPPROTO_ROUTING &&
			    l4proto != IPPROTO_DSTOPTS && l4proto != IPPROTO_AH)
				return L7TAP_PARSE_NOT_TCP;
			if (l7tap_env_load(ctx, kind, off, &ext, sizeof(ext)))
				return L7TAP_PARSE_TRUNCATED;
			/* AH counts 4-byte words less two, the others 8-byte
			 * words less one. */
			if (l4proto == IPPROTO_AH)
				off += (ext.hdrlen + 2) * 4;
			else
				off += (ext.hdrlen + 1) * 8;
			l4proto = ext.nexthdr;
		}
		if (l4proto != IPPROTO_TCP)
			return L7TAP_PARSE_MALFORMED; /* too many extension headers */
	} else {
		return L7TAP_PARSE_NOT_IP;
	}

	if (tcp_in_head)
		th = head->l3.v4.th;
	else if (l7tap_env_load(ctx, kind, off, &th, sizeof(th)))
		return L7TAP_PARSE_TRUNCATED;
	doff = th.doff;
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
	pkt->key.sport = bpf_ntohs(th.source);
	pkt->key.dport = bpf_ntohs(th.dest);
	pkt->seq = bpf_ntohl(th.seq);
	pkt->ack = bpf_ntohl(th.ack_seq);
	pkt->window = bpf_ntohs(th.window);
	pkt->flags = ((__u8 *)&th)[13];
	return L7TAP_PARSE_TCP;
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
