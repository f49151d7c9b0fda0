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

/* Syscall numbers that move a socket's bytes, fd first. */
#if defined(__TARGET_ARCH_x86)
#define L7TAP_NR_READ 0
#define L7TAP_NR_WRITE 1
#define L7TAP_NR_READV 19
#define L7TAP_NR_WRITEV 20
#define L7TAP_NR_SENDTO 44
#define L7TAP_NR_RECVFROM 45
#define L7TAP_NR_SENDMSG 46
#define L7TAP_NR_RECVMSG 47
#elif defined(__TARGET_ARCH_arm64)
#define L7TAP_NR_READ 63
#define L7TAP_NR_WRITE 64
#define L7TAP_NR_READV 65
#define L7TAP_NR_WRITEV 66
#define L7TAP_NR_SENDTO 206
#define L7TAP_NR_RECVFROM 207
#define L7TAP_NR_SENDMSG 211
#define L7TAP_NR_RECVMSG 212
#else
#error "syscall numbers of this architecture are missing"
#endif

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

/* The SSL object a thread is inside a call of (data or handshake): the
 * syscalls it makes meanwhile are on that SSL's socket. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, L7TAP_SSL_THREAD_ENTRIES);
	__type(key, __u64); /* pid_tgid */
	__type(value, __u64);
} ssl_active SEC(".maps");

static __always_inline int l7tap_ssl_enter(__u64 ssl)
{
	__u64 id = bpf_get_current_pid_tgid();

	if (!ssl || !l7tap_tls_traced(id >> 32))
		return 0;
	bpf_map_update_elem(&ssl_active, &id, &ssl, BPF_ANY);
	return 1;
}

static __always_inline void l7tap_ssl_data_enter(__u64 ssl, __u64 buf, __u64 out, __u32 direction)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct l7tap_ssl_call call = {.ssl = ssl, .buf = buf, .out = out, .direction = direction};

	if (!l7tap_ssl_enter(ssl))
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

	bpf_map_delete_elem(&ssl_active, &id);
	if (!call) {
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
	bpf_map_delete_elem(&ssl_calls, &id);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(l7tap_ssl_do_handshake, void *ssl)
{
	l7tap_ssl_enter((__u64)ssl);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(l7tap_ssl_connect, void *ssl)
{
	if (l7tap_ssl_enter((__u64)ssl))
		l7tap_tls_note_role((__u64)ssl, L7TAP_TLS_ROLE_CLIENT);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(l7tap_ssl_accept, void *ssl)
{
	if (l7tap_ssl_enter((__u64)ssl))
		l7tap_tls_note_role((__u64)ssl, L7TAP_TLS_ROLE_SERVER);
	return 0;
}

/* Return of SSL_do_handshake, SSL_connect, SSL_accept. */
SEC("uretprobe")
int BPF_KRETPROBE(l7tap_ssl_handshake_ret)
{
	__u64 id = bpf_get_current_pid_tgid();

	bpf_map_delete_elem(&ssl_active, &id);
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
	struct pt_regs *regs;
	__u64 id, *ssl;
	__u64 fd = 0;

	switch (ctx->args[1]) {
	case L7TAP_NR_READ:
	case L7TAP_NR_WRITE:
	case L7TAP_NR_READV:
	case L7TAP_NR_WRITEV:
	case L7TAP_NR_SENDTO:
	case L7TAP_NR_RECVFROM:
	case L7TAP_NR_SENDMSG:
	case L7TAP_NR_RECVMSG:
		break;
	default:
		return 0;
	}
	id = bpf_get_current_pid_tgid();
	ssl = bpf_map_lookup_elem(&ssl_active, &id);
	if (!ssl)
		return 0;
	regs = (struct pt_regs *)ctx->args[0];
#if defined(__TARGET_ARCH_x86)
	/* The uapi pt_regs has the kernel's layout on x86. */
	bpf_probe_read_kernel(&fd, sizeof(fd), &regs->rdi);
#else
	fd = PT_REGS_PARM1_CORE_SYSCALL(regs);
#endif
	l7tap_tls_note_fd(*ssl, (__s32)fd);
	return 0;
}

SEC("raw_tracepoint/sched_process_exec")
int l7tap_sched_exec(struct bpf_raw_tracepoint_args *ctx)
{
	if (l7tap_tls_traced(bpf_get_current_pid_tgid() >> 32))
		l7tap_tls_emit_exec();
	return 0;
}
