// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * TLS plaintext of Go crypto/tls (Go 1.17+, register ABI): the entry of
 * (*Conn).Write copies the plaintext it is given; the entry of (*Conn).Read
 * saves the receiver and the buffer, uprobes on each of its RET
 * instructions (found in user space by uprobes/go_binary) copy the n bytes
 * read, and the entry of (*Conn).Close ends the session. Never uretprobes: the kernel's return trampoline
 * rewrites the return address on the goroutine's stack, and Go moves and
 * copies stacks, which then crashes the program.
 *
 * A call is keyed by its goroutine (the g in R14), not its thread: the
 * goroutine may block in Read and resume on another thread. The fd comes
 * from *tls.Conn -> conn (net.Conn) -> *net.TCPConn -> fd -> pfd.Sysfd with
 * the offsets of the binary the probe is in, found by the uprobe's cookie.
 *
 * The maps of tls_common.bpf.h are shared with the OpenSSL object (the
 * loader reuses their fds before this object loads).
 */
#include "uprobes/bpf/tls_common.bpf.h"
#include "uprobes/bpf/go_tls_abi.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

#define L7TAP_GO_CALL_ENTRIES 16384

/* Go's internal ABI: first arguments and results, and the current g. */
#if defined(__TARGET_ARCH_x86)
#define L7TAP_GO_ARG1(ctx) ((ctx)->rax)
#define L7TAP_GO_ARG2(ctx) ((ctx)->rbx)
#define L7TAP_GO_ARG3(ctx) ((ctx)->rcx)
#define L7TAP_GO_G(ctx) ((ctx)->r14)
#elif defined(__TARGET_ARCH_arm64)
/* Not attached: uprobes/go_binary refuses other architectures than amd64. */
#define L7TAP_GO_REG(ctx, n) (((const struct user_pt_regs *)(ctx))->regs[n])
#define L7TAP_GO_ARG1(ctx) L7TAP_GO_REG(ctx, 0)
#define L7TAP_GO_ARG2(ctx) L7TAP_GO_REG(ctx, 1)
#define L7TAP_GO_ARG3(ctx) L7TAP_GO_REG(ctx, 2)
#define L7TAP_GO_G(ctx) L7TAP_GO_REG(ctx, 28)
#else
#error "Go's register ABI of this architecture is missing"
#endif

/* Offsets of each Go binary attached, by the cookie of its uprobes. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, L7TAP_GO_MAX_BINARIES);
	__type(key, __u32);
	__type(value, struct l7tap_go_offsets);
} go_binaries SEC(".maps");

struct l7tap_go_call_key {
	__u64 g;
	__u32 tgid;
	__u32 direction;
};

/* A Write or Read between its entry and one of its RETs. */
struct l7tap_go_call {
	__u64 conn;
	__u64 buf;
	__u64 len;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, L7TAP_GO_CALL_ENTRIES);
	__type(key, struct l7tap_go_call_key);
	__type(value, struct l7tap_go_call);
} go_calls SEC(".maps");

static __always_inline const struct l7tap_go_offsets *l7tap_go_offsets(struct pt_regs *ctx)
{
	__u32 index = (__u32)bpf_get_attach_cookie(ctx);

	return bpf_map_lookup_elem(&go_binaries, &index);
}

/* The socket and role of a session, once: after the tuple is known, the
 * user memory is not walked again. */
static __always_inline void l7tap_go_note_conn(__u32 tgid, __u64 conn,
					       const struct l7tap_go_offsets *off)
{
	struct l7tap_tls_sock *s = l7tap_tls_sock_get(tgid, conn, 0);
	__u64 iface[2] = {}; /* itab, data */
	__u64 netfd = 0;
	__s64 sysfd = -1;
	__u8 is_client = 0;

	if (s && s->tuple_known)
		return;
	if (bpf_probe_read_user(&is_client, sizeof(is_client), (void *)(conn + off->conn_is_client)) == 0)
		l7tap_tls_note_role(conn, is_client ? L7TAP_TLS_ROLE_CLIENT : L7TAP_TLS_ROLE_SERVER);
	if (bpf_probe_read_user(iface, sizeof(iface), (void *)(conn + off->conn_conn)) || !iface[1])
		return;
	if (off->tcpconn_itab && iface[0] != off->tcpconn_itab) {
		l7tap_tls_count(L7TAP_TLS_CNT_NOT_TCP, 1);
		return;
	}
	if (bpf_probe_read_user(&netfd, sizeof(netfd), (void *)(iface[1] + off->net_conn_fd)) ||
	    !netfd)
		return;
	if (bpf_probe_read_user(&sysfd, sizeof(sysfd),
				(void *)(netfd + off->netfd_pfd + off->pollfd_sysfd)) ||
	    sysfd < 0 || sysfd > 0x7fffffff)
		return;
	l7tap_tls_note_fd(conn, (__s32)sysfd);
}

static __always_inline int l7tap_go_enter(struct pt_regs *ctx, __u32 direction)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	const struct l7tap_go_offsets *off;
	struct l7tap_go_call_key key = {.g = L7TAP_GO_G(ctx), .tgid = tgid, .direction = direction};
	struct l7tap_go_call call = {
		.conn = L7TAP_GO_ARG1(ctx),
		.buf = L7TAP_GO_ARG2(ctx),
		.len = L7TAP_GO_ARG3(ctx),
	};

	if (!call.conn || !key.g || !l7tap_tls_traced(tgid))
		return 0;
	off = l7tap_go_offsets(ctx);
	if (!off)
		return 0;
	l7tap_go_note_conn(tgid, call.conn, off);
	if (direction == L7TAP_TLS_WRITE) {
		/* Write's plaintext is all of b at its entry, and crypto/tls
		 * sends all of it unless the connection fails: reported here,
		 * not at a RET, because net/http writes and reads on goroutines
		 * of their own, and the writer's RET may run after the reader
		 * got the answer (the e2e saw answers before their requests). */
		struct l7tap_tls_sock *s = l7tap_tls_sock_get(tgid, call.conn, 0);

		/* No connected socket: Close ran on another goroutine before
		 * (HTTP/2 writes a frame while the connection closes) and the
		 * session's CLOSE is out; these bytes would open a phantom
		 * session. Counted as a call whose session state is gone. */
		if (!s || !s->tuple_known) {
			l7tap_tls_count(L7TAP_TLS_CNT_NO_ENTRY, 1);
			return 0;
		}
		l7tap_tls_emit_data(call.conn, direction, L7TAP_TLS_LIB_GO,
				    (const void *)call.buf, call.len);
		return 0;
	}
	bpf_map_update_elem(&go_calls, &key, &call, BPF_ANY);
	return 0;
}

static __always_inline int l7tap_go_return(struct pt_regs *ctx, __u32 direction)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct l7tap_go_call_key key = {.g = L7TAP_GO_G(ctx), .tgid = id >> 32,
					.direction = direction};
	struct l7tap_go_call *saved = bpf_map_lookup_elem(&go_calls, &key);
	struct l7tap_go_call call;
	__s64 n = (__s64)L7TAP_GO_ARG1(ctx); /* n int; the error is in ARG2/ARG3 */

	if (!saved) {
		if (l7tap_tls_traced(key.tgid))
			l7tap_tls_count(L7TAP_TLS_CNT_NO_ENTRY, 1);
		return 0;
	}
	call = *saved;
	bpf_map_delete_elem(&go_calls, &key);
	if (n <= 0)
		return 0;
	if ((__u64)n > call.len)
		n = call.len; /* never beyond the buffer the call was given */
	/* The entry made the session's socket state; without it, Close ran on
	 * another goroutine meanwhile (HTTP/2 writes a frame while the
	 * connection closes) and the session's CLOSE event is out: these bytes
	 * would open a phantom session. Counted with the returns whose entry
	 * is gone. */
	if (!l7tap_tls_sock_get(key.tgid, call.conn, 0)) {
		l7tap_tls_count(L7TAP_TLS_CNT_NO_ENTRY, 1);
		return 0;
	}
	l7tap_tls_emit_data(call.conn, direction, L7TAP_TLS_LIB_GO, (const void *)call.buf, n);
	return 0;
}

SEC("uprobe")
int l7tap_go_write_enter(struct pt_regs *ctx)
{
	return l7tap_go_enter(ctx, L7TAP_TLS_WRITE);
}

SEC("uprobe")
int l7tap_go_read_enter(struct pt_regs *ctx)
{
	return l7tap_go_enter(ctx, L7TAP_TLS_READ);
}

SEC("uprobe")
int l7tap_go_read_return(struct pt_regs *ctx)
{
	return l7tap_go_return(ctx, L7TAP_TLS_READ);
}

SEC("uprobe")
int l7tap_go_close_enter(struct pt_regs *ctx)
{
	__u64 conn = L7TAP_GO_ARG1(ctx);

	if (!conn || !l7tap_tls_traced(bpf_get_current_pid_tgid() >> 32))
		return 0;
	l7tap_tls_emit_close(conn, L7TAP_TLS_LIB_GO);
	return 0;
}
