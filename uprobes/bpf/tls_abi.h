/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The kernel/user ABI of the TLS uprobes: the events the programs on
 * OpenSSL and Go crypto/tls write into their ring buffer. Included by the
 * BPF programs (C, uapi types only) and by C++; fixed layout, explicit
 * padding, sizes asserted on both sides, as tc/l7tap_abi.h.
 */
#ifndef L7TAP_TLS_ABI_H
#define L7TAP_TLS_ABI_H

#include <linux/types.h>

#include "tc/l7tap_abi.h"

/* Plaintext bytes one event carries. A call that moved more is cut into up
 * to L7TAP_TLS_MAX_CHUNKS events; what is left after them is reported as
 * not captured (`len` > `captured`), and the daemon turns it into a gap of
 * known length, as the TC path's window does. */
#define L7TAP_TLS_MAX_CHUNK 16384
#define L7TAP_TLS_MAX_CHUNKS 4
#define L7TAP_TLS_DEFAULT_RING_BYTES (8 << 20)

enum l7tap_tls_event_kind {
	L7TAP_TLS_EVENT_DATA = 1,  /* plaintext a TLS read or write moved */
	L7TAP_TLS_EVENT_CLOSE = 2, /* the TLS session ended (SSL_free, Conn.Close) */
	L7TAP_TLS_EVENT_EXEC = 3,  /* a process exec'd: look at its libraries */
};

/* Direction as the traced process sees it. */
enum l7tap_tls_direction {
	L7TAP_TLS_WRITE = 0, /* the process sent: local -> remote */
	L7TAP_TLS_READ = 1,  /* the process received: remote -> local */
};

enum l7tap_tls_library {
	L7TAP_TLS_LIB_OPENSSL = 1, /* OpenSSL 1.1/3 or BoringSSL, shared or static */
	L7TAP_TLS_LIB_GO = 2,	   /* Go crypto/tls */
};

/* Who the process is on the connection, when a probe saw it. */
enum l7tap_tls_role {
	L7TAP_TLS_ROLE_UNKNOWN = 0,
	L7TAP_TLS_ROLE_CLIENT = 1,
	L7TAP_TLS_ROLE_SERVER = 2,
};

/* L7TAP_TLS_EVENT_DATA and _CLOSE; _EXEC fills ts_ns, tgid, tid and comm
 * only. `captured` bytes of plaintext follow the header. */
struct l7tap_tls_event {
	__u64 ts_ns;	     /* CLOCK_MONOTONIC when the call returned */
	__u64 conn_id;	     /* the SSL* or *tls.Conn: one TLS session within tgid */
	__u64 stream_offset; /* bytes of this (conn_id, direction) before this event */
	__u32 seq;	     /* per (tgid, conn_id, direction), from 0; a jump is a lost event */
	__u32 tgid;
	__u32 tid;
	__u32 len;	 /* bytes from stream_offset this event stands for */
	__u32 captured;	 /* of which follow, <= L7TAP_TLS_MAX_CHUNK */
	__s32 fd;	 /* the socket, -1 when not yet known */
	__u32 netns_ino; /* of the process, for scope and identity */
	__u32 reserved;
	__u8 kind;	  /* enum l7tap_tls_event_kind */
	__u8 direction;	  /* enum l7tap_tls_direction */
	__u8 library;	  /* enum l7tap_tls_library */
	__u8 role;	  /* enum l7tap_tls_role */
	__u8 tuple_known; /* `key` was read from the socket */
	__u8 pad[3];
	/* The socket as the process sends: local -> remote (tc/l7tap_abi.h). */
	struct l7tap_flow_key key;
	char comm[16];
	__u8 data[L7TAP_TLS_MAX_CHUNK];
};

#define L7TAP_TLS_EVENT_HEADER_SIZE 120

L7TAP_STATIC_ASSERT(sizeof(struct l7tap_tls_event) ==
			L7TAP_TLS_EVENT_HEADER_SIZE + L7TAP_TLS_MAX_CHUNK,
		    "ABI: TLS event size");

#endif /* L7TAP_TLS_ABI_H */
