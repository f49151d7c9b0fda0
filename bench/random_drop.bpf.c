// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Drops one packet in N with payload (tc egress, direct action) where it is
 * attached: bench/frame_walk.sh puts it on the server pod's own interface, so
 * the drops happen before l7tap's hook and TCP sends the bytes again later,
 * as when a veth's backlog overflows (this kernel has no netem): one skb in
 * 200 with more than 200 bytes, GSO skbs of up to 64 KB included.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>

#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("tc")
int random_drop(struct __sk_buff *skb)
{
	if (skb->len > 200 && bpf_get_prandom_u32() % 200 == 0)
		return TC_ACT_SHOT;
	return TC_ACT_OK;
}
