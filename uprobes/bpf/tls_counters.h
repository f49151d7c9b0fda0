/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Indexes of the TLS programs' per-CPU counters (the `tls_counters` map of
 * tls_common.bpf.h), shared by the BPF programs and the loader.
 */
#ifndef L7TAP_TLS_COUNTERS_H
#define L7TAP_TLS_COUNTERS_H

enum l7tap_tls_counter {
	L7TAP_TLS_CNT_EVENTS = 0,   /* events written to the ring */
	L7TAP_TLS_CNT_LOST,	    /* events lost: ring full (seq jumps by one each) */
	L7TAP_TLS_CNT_LOST_BYTES,   /* `len` of the lost data events */
	L7TAP_TLS_CNT_CHUNKED,	    /* calls cut into more than one event */
	L7TAP_TLS_CNT_TRUNCATED,    /* calls longer than the chunks: bytes not captured */
	L7TAP_TLS_CNT_READ_FAULTS,  /* bpf_probe_read_user failed: data event without bytes */
	L7TAP_TLS_CNT_NO_SOCKET,    /* data events whose socket tuple was not known */
	L7TAP_TLS_CNT_NOT_TCP,	    /* fds of SSL calls that were not TCP sockets */
	L7TAP_TLS_CNT_NO_ENTRY,	    /* returns without their entry (attached mid-call) */
	L7TAP_TLS_CNT_STATE_FULL,   /* stream/socket state entries that could not be made */
	L7TAP_TLS_CNT_CLOSES,	    /* close events written */
	L7TAP_TLS_CNT_EXECS,	    /* exec events written */
	L7TAP_TLS_CNT_FD_INFERRED,  /* sockets of fd-less SSL objects inferred (memory BIOs) */
	L7TAP_TLS_CNT_FD_AMBIGUOUS, /* SSL objects whose evidence named two sockets: left unknown */
	L7TAP_TLS_CNT_MAX,
};

#endif /* L7TAP_TLS_COUNTERS_H */
