/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The canonical flow key: both directions of a TCP connection map to one
 * key, whose source (saddr, sport) is the endpoint that compares lower,
 * bytewise address then port. The kernel's maps are keyed by it, and user
 * space (reassembly, replay's capture, the kernel-map writer) uses the same
 * function, so the direction index 0/1 means the same everywhere: 0 is the
 * direction from the canonical source.
 */
#ifndef L7TAP_FLOW_KEY_H
#define L7TAP_FLOW_KEY_H

#include <linux/types.h>

#include "tc/l7tap_abi.h"

/* A 64-bit word of an address as a number, so that comparing numbers
 * compares bytes in address order. */
static inline __u64 l7tap_addr_word(const __u8 *p)
{
	__u64 w;

	__builtin_memcpy(&w, p, 8);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	w = __builtin_bswap64(w);
#endif
	return w;
}

/* Bytewise comparison of two 16-byte addresses (network order): <0, 0, >0.
 * Two word compares, not sixteen byte compares: it runs for every packet. */
static inline int l7tap_addr_cmp(const __u8 *a, const __u8 *b)
{
	__u64 x = l7tap_addr_word(a), y = l7tap_addr_word(b);

	if (x == y) {
		x = l7tap_addr_word(a + 8);
		y = l7tap_addr_word(b + 8);
	}
	if (x == y)
		return 0;
	return x < y ? -1 : 1;
}

/* Fills the canonical form of key (lower endpoint first, padding zeroed) and
 * returns the packet's direction index: 0 when it travels from the
 * canonical source. */
static inline __u32 l7tap_canonical(const struct l7tap_flow_key *key, struct l7tap_flow_key *ckey)
{
	int cmp = l7tap_addr_cmp(key->saddr, key->daddr);
	int from_low = cmp < 0 || (cmp == 0 && key->sport <= key->dport);

	__builtin_memcpy(ckey->saddr, from_low ? key->saddr : key->daddr, 16);
	__builtin_memcpy(ckey->daddr, from_low ? key->daddr : key->saddr, 16);
	ckey->sport = from_low ? key->sport : key->dport;
	ckey->dport = from_low ? key->dport : key->sport;
	ckey->family = key->family;
	__builtin_memset(ckey->pad, 0, sizeof(ckey->pad));
	return from_low ? 0 : 1;
}

#endif /* L7TAP_FLOW_KEY_H */
