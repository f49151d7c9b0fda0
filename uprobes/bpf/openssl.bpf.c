// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * TLS plaintext of OpenSSL (1.1, 3) and BoringSSL, shared or linked in
 * statically: uprobes on SSL_write/SSL_read and their _ex forms save the
 * buffer per thread at entry, and the return copies what was really moved.
 *
 * Which socket an SSL object is on: SSL_set_fd when the program uses it,
 * and otherwise the fd of the read/write syscalls OpenSSL makes inside a
 * data or handshake call, seen at sys_enter. The raw tracepoint is used
 * rather than syscalls:sys_enter_* because it needs no tracefs mount (often
 * absent in containers) and costs less per syscall; it fires for every
 * syscall on the node, so it first compares the syscall number and then
 * looks the thread up, and leaves at once when the thread is not inside an
 * SSL call.
 */
#include "uprobes/bpf/tls_common.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define L7TAP_SSL_THREAD_ENTRIES 16384

/* A data call between its entry and its return. */
struct l7tap_ssl_call {
	__u64 ssl;
	__u64 buf;
	__u64 out; /* SSL_*_ex: the size_t* that receives the count; 0 otherwise */
	__u32 direction;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, L7TAP_SSL_THREAD_ENTRIES);
	__type(key, __u64); /* pid_tgid */
	__type(value, struct l7tap_ssl_call);
} ssl_calls SEC(".maps");

/* Per thread: the SSL object it is inside a call of (data or handshake),
 * whose syscalls meanwhile are on that SSL's socket; and, on threads that
 * called an SSL object whose socket is unknown, the evidence for it.
 *
 * An SSL object on a BIO pair (gRPC core's TSI) makes no syscall inside its
 * calls: the program receives ciphertext on the socket, feeds it to the BIO
 * and calls SSL_read, or calls SSL_write, takes the ciphertext from the BIO
 * and sends it, each on one thread. So the socket of such an object is
 * inferred from the last TCP socket the thread received on before an
 * SSL_read (recv_*), and the next one it sends on after an SSL_write
 * (pending_send). Handshake calls are no evidence: a client's first one has
 * received nothing, and one may produce nothing to send. One piece of
 * evidence can still be wrong (a deferred send, a receive for another
 * connection), so the socket is taken only once both kinds name the same
 * one, and never once two sockets were named.
 * Threads that never met such an object keep no entry between calls: the
 * sys_enter path stays one lookup that misses. */
struct l7tap_ssl_thread {
	__u64 ssl;	    /* inside a call of it; 0 between calls */
	__u64 pending_send; /* written, its ciphertext not yet sent; 0: none */
	__u64 recv_taken;   /* the SSL call that took recv_fd; 0: not yet */
	struct l7tap_flow_key recv_key;
	__s32 recv_fd; /* last TCP socket received on; -1: none */
	__u8 watch;    /* the thread met an SSL object without a socket */
	__u8 pad[3];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, L7TAP_SSL_THREAD_ENTRIES);
	__type(key, __u64); /* pid_tgid */
	__type(value, struct l7tap_ssl_thread);
} ssl_active SEC(".maps");

static __always_inline int l7tap_ssl_fd_unknown(__u64 ssl)
{
	struct l7tap_tls_sock *s = l7tap_tls_sock_get(bpf_get_current_pid_tgid() >> 32, ssl, 0);

	return !s || (s->fd < 0 && !s->guess_refused);
}

static __always_inline int l7tap_flow_key_eq(const struct l7tap_flow_key *a,
					     const struct l7tap_flow_key *b)
{
	const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;

	return x[0] == y[0] && x[1] == y[1] && x[2] == y[2] && x[3] == y[3] && x[4] == y[4];
}

/* One piece of evidence (kind) that fd-less SSL object ssl is on the TCP
 * socket fd whose tuple is key. */
static __always_inline void l7tap_ssl_evidence(__u64 ssl, __s32 fd,
					       const struct l7tap_flow_key *key, __u8 kind)
{
	struct l7tap_tls_sock *s = l7tap_tls_sock_get(bpf_get_current_pid_tgid() >> 32, ssl, 1);

	if (!s || s->fd >= 0 || s->guess_refused)
		return;
	if (!s->guess_kinds) {
		s->guess_fd = fd;
		s->guess_key = *key;
	} else if (s->guess_fd != fd || !l7tap_flow_key_eq(&s->guess_key, key)) {
		s->guess_refused = 1;
		l7tap_tls_count(L7TAP_TLS_CNT_FD_AMBIGUOUS, 1);
		return;
	}
	s->guess_kinds |= kind;
	if (s->guess_kinds == (L7TAP_TLS_GUESS_RECV | L7TAP_TLS_GUESS_SEND)) {
		s->key = s->guess_key;
		s->fd = fd;
		s->tuple_known = 1;
		l7tap_tls_count(L7TAP_TLS_CNT_FD_INFERRED, 1);
	}
}

/* Entry of any SSL call; `reads`: SSL_read or SSL_read_ex. */
static __always_inline int l7tap_ssl_enter(__u64 ssl, int reads)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct l7tap_ssl_thread init = {.ssl = ssl, .recv_fd = -1};
	struct l7tap_ssl_thread *t;
	int unknown;

	if (!ssl || !l7tap_tls_traced(id >> 32))
		return 0;
	unknown = l7tap_ssl_fd_unknown(ssl);
	t = bpf_map_lookup_elem(&ssl_active, &id);
	if (!t) {
		init.watch = unknown;
		bpf_map_update_elem(&ssl_active, &id, &init, BPF_ANY);
		return 1;
	}
	t->ssl = ssl;
	t->watch |= unknown;
	/* A receive is evidence for the first SSL call after it only: later
	 * calls may be of other objects fed from elsewhere. */
	if (t->recv_fd >= 0 && !t->recv_taken) {
		t->recv_taken = ssl;
		if (unknown && reads)
			l7tap_ssl_evidence(ssl, t->recv_fd, &t->recv_key, L7TAP_TLS_GUESS_RECV);
	}
	return 1;
}

#define L7TAP_SSL_LEFT_READ 0
#define L7TAP_SSL_LEFT_WROTE 1	   /* SSL_write that wrote */
#define L7TAP_SSL_LEFT_HANDSHAKE 2 /* may have produced ciphertext too */

/* Return of any SSL call of `ssl` (0: unknown). */
static __always_inline void l7tap_ssl_leave(__u64 id, __u64 ssl, int how)
{
	struct l7tap_ssl_thread *t = bpf_map_lookup_elem(&ssl_active, &id);

	if (!t)
		return;
	t->ssl = 0;
	/* Two objects with ciphertext to send before one send: that send
	 * is evidence for neither. */
	if (how != L7TAP_SSL_LEFT_READ && t->pending_send && t->pending_send != ssl)
		t->pending_send = (__u64)-1;
	if (ssl && how == L7TAP_SSL_LEFT_WROTE && l7tap_ssl_fd_unknown(ssl)) {
		if (!t->pending_send)
			t->pending_send = ssl;
		return;
	}
	/* A thread whose syscalls all happen inside SSL calls (a socket
	 * BIO) never received between calls: once its object is known it
	 * goes back to the one failed lookup per syscall. */
	if (!t->watch || (!t->pending_send && t->recv_fd < 0 && !l7tap_ssl_fd_unknown(ssl)))
		bpf_map_delete_elem(&ssl_active, &id);
}

static __always_inline void l7tap_ssl_data_enter(__u64 ssl, __u64 buf, __u64 out, __u32 direction)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct l7tap_ssl_call call = {.ssl = ssl, .buf = buf, .out = out, .direction = direction};

	if (!l7tap_ssl_enter(ssl, direction == L7TAP_TLS_READ))
		return;
	bpf_map_update_elem(&ssl_calls, &id, &call, BPF_ANY);
}

SEC("uprobe")
int BPF_KPROBE(l7tap_ssl_write, void *ssl, const void *buf, int num)
{
	l7tap_ssl_data_enter((__u64)ssl, (__u64)buf, 0, L7TAP_TLS_WRITE);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(l7tap_ssl_write_ex, void *ssl, const void *buf, __u64 num, __u64 *written)
{
	l7tap_ssl_data_enter((__u64)ssl, (__u64)buf, (__u64)written, L7TAP_TLS_WRITE);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(l7tap_ssl_read, void *ssl, void *buf, int num)
{
	l7tap_ssl_data_enter((__u64)ssl, (__u64)buf, 0, L7TAP_TLS_READ);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(l7tap_ssl_read_ex, void *ssl, void *buf, __u64 num, __u64 *readbytes)
{
	l7tap_ssl_data_enter((__u64)ssl, (__u64)buf, (__u64)readbytes, L7TAP_TLS_READ);
	return 0;
}

/* The return of all four: SSL_read/SSL_write return the count (> 0);
 * the _ex forms return 1 and store the count through their last argument. */
SEC("uretprobe")
int BPF_KRETPROBE(l7tap_ssl_data_ret, long ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct l7tap_ssl_call *call = bpf_map_lookup_elem(&ssl_calls, &id);
	__u64 len = 0;

	if (!call) {
		l7tap_ssl_leave(id, 0, L7TAP_SSL_LEFT_HANDSHAKE);
		if (l7tap_tls_traced(id >> 32))
			l7tap_tls_count(L7TAP_TLS_CNT_NO_ENTRY, 1);
		return 0;
	}
	if (call->out) {
		/* The count is on the caller's stack, so this read fails only
		 * on a broken caller; the bytes are then not accounted for at
		 * all, which the counter has to show. */
		if ((int)ret == 1 && bpf_probe_read_user(&len, sizeof(len), (void *)call->out)) {
			l7tap_tls_count(L7TAP_TLS_CNT_READ_FAULTS, 1);
			len = 0;
		}
		if ((int)ret != 1)
			len = 0;
	} else if ((int)ret > 0) {
		len = (__u32)(int)ret;
	}
	if (len)
		l7tap_tls_emit_data(call->ssl, call->direction, L7TAP_TLS_LIB_OPENSSL,
				    (const void *)call->buf, len);
	l7tap_ssl_leave(id, call->ssl,
			call->direction == L7TAP_TLS_READ ? L7TAP_SSL_LEFT_READ
			: len				  ? L7TAP_SSL_LEFT_WROTE
							  : L7TAP_SSL_LEFT_HANDSHAKE);
	bpf_map_delete_elem(&ssl_calls, &id);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(l7tap_ssl_do_handshake, void *ssl)
{
	l7tap_ssl_enter((__u64)ssl, 0);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(l7tap_ssl_connect, void *ssl)
{
	if (l7tap_ssl_enter((__u64)ssl, 0))
		l7tap_tls_note_role((__u64)ssl, L7TAP_TLS_ROLE_CLIENT);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(l7tap_ssl_accept, void *ssl)
{
	if (l7tap_ssl_enter((__u64)ssl, 0))
		l7tap_tls_note_role((__u64)ssl, L7TAP_TLS_ROLE_SERVER);
	return 0;
}

/* Return of SSL_do_handshake, SSL_connect, SSL_accept. */
SEC("uretprobe")
int BPF_KRETPROBE(l7tap_ssl_handshake_ret)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct l7tap_ssl_thread *t = bpf_map_lookup_elem(&ssl_active, &id);

	if (t)
		l7tap_ssl_leave(id, t->ssl, L7TAP_SSL_LEFT_HANDSHAKE);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(l7tap_ssl_set_connect_state, void *ssl)
{
	if (ssl && l7tap_tls_traced(bpf_get_current_pid_tgid() >> 32))
		l7tap_tls_note_role((__u64)ssl, L7TAP_TLS_ROLE_CLIENT);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(l7tap_ssl_set_accept_state, void *ssl)
{
	if (ssl && l7tap_tls_traced(bpf_get_current_pid_tgid() >> 32))
		l7tap_tls_note_role((__u64)ssl, L7TAP_TLS_ROLE_SERVER);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(l7tap_ssl_set_fd, void *ssl, int fd)
{
	if (ssl && fd >= 0 && l7tap_tls_traced(bpf_get_current_pid_tgid() >> 32))
		l7tap_tls_note_fd((__u64)ssl, fd);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(l7tap_ssl_free, void *ssl)
{
	if (ssl && l7tap_tls_traced(bpf_get_current_pid_tgid() >> 32))
		l7tap_tls_emit_close((__u64)ssl, L7TAP_TLS_LIB_OPENSSL);
	return 0;
}

SEC("raw_tracepoint/sys_enter")
int l7tap_sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
	struct l7tap_ssl_thread *t;
	struct l7tap_flow_key key;
	struct pt_regs *regs;
	__u64 id, fd = 0;
	int recv;

	switch (ctx->args[1]) {
	case L7TAP_NR_READ:
	case L7TAP_NR_READV:
	case L7TAP_NR_RECVFROM:
	case L7TAP_NR_RECVMSG:
		recv = 1;
		break;
	case L7TAP_NR_WRITE:
	case L7TAP_NR_WRITEV:
	case L7TAP_NR_SENDTO:
	case L7TAP_NR_SENDMSG:
		recv = 0;
		break;
	default:
		return 0;
	}
	id = bpf_get_current_pid_tgid();
	t = bpf_map_lookup_elem(&ssl_active, &id);
	if (!t)
		return 0;
	regs = (struct pt_regs *)ctx->args[0];
	fd = l7tap_syscall_arg1(regs);
	if (t->ssl) {
		l7tap_tls_note_fd(t->ssl, (__s32)fd);
		return 0;
	}
	/* Between calls, on a thread that met an SSL object without a
	 * socket: only TCP sockets are evidence (not the pipes, eventfds and
	 * logs a thread also reads and writes). */
	if (!t->watch || (!recv && !t->pending_send))
		return 0;
	if (l7tap_socket_tuple((__s32)fd, &key) != L7TAP_TUPLE_OK)
		return 0;
	if (recv) {
		t->recv_fd = (__s32)fd;
		t->recv_key = key;
		t->recv_taken = 0;
		return 0;
	}
	if (t->pending_send != (__u64)-1)
		l7tap_ssl_evidence(t->pending_send, (__s32)fd, &key, L7TAP_TLS_GUESS_SEND);
	t->pending_send = 0;
	return 0;
}

SEC("raw_tracepoint/sched_process_exec")
int l7tap_sched_exec(struct bpf_raw_tracepoint_args *ctx)
{
	if (l7tap_tls_traced(bpf_get_current_pid_tgid() >> 32))
		l7tap_tls_emit_exec();
	return 0;
}
