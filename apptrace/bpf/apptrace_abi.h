/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The kernel/user ABI of the function uprobes (apptrace/): the events the
 * programs write into their ring buffer and the histogram maps user space
 * reads. Included by the BPF program (C, uapi types only) and by C++; fixed
 * layout, explicit padding, sizes asserted on both sides, as tc/l7tap_abi.h.
 */
#ifndef L7TAP_APPTRACE_ABI_H
#define L7TAP_APPTRACE_ABI_H

#include <linux/types.h>

#include "tc/l7tap_abi.h"

/* Functions (or USDT pairs) one program can time: the index each attach
 * gives is the uprobes' cookie and the histograms' row. */
#define L7TAP_APP_MAX_FUNCTIONS 256
/* log2 latency buckets: bucket i counts calls of [2^i, 2^(i+1)) ns (bucket
 * 0 also 0 ns); the last one everything from 2^47 ns (39 hours) on. */
#define L7TAP_APP_HIST_BUCKETS 48
#define L7TAP_APP_DEFAULT_RING_BYTES (4 << 20)

enum l7tap_app_event_kind {
	L7TAP_APP_EVENT_CALL = 1,  /* a call returned (per-call mode, or an exemplar) */
	L7TAP_APP_EVENT_ENTER = 2, /* a call began: only when entries are asked for (linking) */
};

/* How a function is timed. */
enum l7tap_app_func_kind {
	L7TAP_APP_FUNC_NATIVE = 0, /* entry uprobe + uretprobe, keyed by thread */
	L7TAP_APP_FUNC_GO = 1,	   /* entry + a uprobe on each RET, keyed by goroutine (R14) */
	L7TAP_APP_FUNC_USDT = 2,   /* a start and an end USDT probe, keyed by thread */
};

/* l7tap_app_event.flags */
#define L7TAP_APP_F_CONN_KNOWN (1u << 0) /* `conn` names a TCP socket */
/* `conn` is the socket the thread/goroutine last read from before the call
 * (the request it serves), not one the call itself did I/O on. */
#define L7TAP_APP_F_CONN_BEFORE (1u << 1)
#define L7TAP_APP_F_MULTI_CONN (1u << 2) /* the call did I/O on more than one TCP socket */
#define L7TAP_APP_F_EXEMPLAR (1u << 3)	 /* histogram mode: the slowest call so far this interval */
#define L7TAP_APP_F_NESTED (1u << 4)	 /* recursion: only the outermost call is timed */

/* TCP I/O the thread (native, USDT) or goroutine (Go) did while the call ran,
 * seen at the syscall tracepoints (read/write/readv/writev/sendto/recvfrom/sendmsg/recvmsg). */
struct l7tap_app_io {
	__u64 bytes_sent;
	__u64 bytes_received;
	__u64 send_ns; /* time inside the syscalls that sent */
	__u64 recv_ns; /* time inside the syscalls that received */
	__u32 sends;   /* syscalls that sent bytes on a TCP socket */
	__u32 receives;
};

struct l7tap_app_event {
	__u64 start_ns;	 /* CLOCK_MONOTONIC at the entry (start probe) */
	__u64 end_ns;	 /* at the return (end probe); 0 for ENTER */
	__u64 g;	 /* Go: the runtime.g pointer (the key); 0 otherwise */
	__u64 goid;	 /* Go: runtime.g.goid when its offset is known; 0 otherwise */
	struct l7tap_app_io io;
	__u32 tgid;
	__u32 tid;	 /* at the entry */
	__u32 netns_ino; /* of the process: scope and identity */
	__u16 function;	 /* the index attach gave (the cookie) */
	__u8 kind;	 /* enum l7tap_app_event_kind */
	__u8 flags;	 /* L7TAP_APP_F_* */
	/* The socket as the process sends: local -> remote (tc/l7tap_abi.h);
	 * valid with L7TAP_APP_F_CONN_KNOWN. */
	struct l7tap_flow_key conn;
	char comm[16];
};

/* Per function, per CPU (BPF_MAP_TYPE_PERCPU_ARRAY "app_stats", key: the
 * function index): totals since load; user space keeps the previous read
 * and reports differences, so nothing is reset under a running program. */
struct l7tap_app_stats {
	__u64 calls;
	__u64 sum_ns;
	__u64 bytes_sent;
	__u64 bytes_received;
	__u64 buckets[L7TAP_APP_HIST_BUCKETS];
};

L7TAP_STATIC_ASSERT(sizeof(struct l7tap_app_io) == 40, "ABI: app io size");
L7TAP_STATIC_ASSERT(sizeof(struct l7tap_app_event) == 144, "ABI: app event size");
L7TAP_STATIC_ASSERT(sizeof(struct l7tap_app_stats) == 32 + 8 * L7TAP_APP_HIST_BUCKETS,
		    "ABI: app stats size");

#endif /* L7TAP_APPTRACE_ABI_H */
