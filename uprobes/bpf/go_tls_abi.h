/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What the loader tells the Go crypto/tls program about each Go binary it
 * attached: the struct offsets that lead from a *tls.Conn to its socket,
 * in the `go_binaries` array at the index that is its uprobes' cookie.
 * Shared by uprobes/bpf/go_tls.bpf.c and C++; fixed layout.
 */
#ifndef L7TAP_GO_TLS_ABI_H
#define L7TAP_GO_TLS_ABI_H

#include <linux/types.h>

/* Go executables (distinct files) with probes at the same time. */
#define L7TAP_GO_MAX_BINARIES 256

struct l7tap_go_offsets {
	__u64 conn_conn;      /* crypto/tls.Conn.conn (net.Conn: itab, data) */
	__u64 conn_is_client; /* crypto/tls.Conn.isClient */
	__u64 net_conn_fd;    /* net.TCPConn -> conn.fd (*net.netFD) */
	__u64 netfd_pfd;      /* net.netFD.pfd (internal/poll.FD) */
	__u64 pollfd_sysfd;   /* internal/poll.FD.Sysfd */
	__u64 tcpconn_itab;   /* go:itab.*net.TCPConn,net.Conn; 0: not checked */
};

#endif /* L7TAP_GO_TLS_ABI_H */
