/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The TCP socket under a file descriptor of the current task, read from the
 * kernel's structs, for the programs that see sockets only as fds in
 * syscalls and library calls: the TLS uprobes (uprobes/) and the function
 * uprobes (apptrace/). Also the syscall numbers that move a socket's bytes
 * and the fd argument of a syscall seen at the sys_enter raw tracepoint.
 *
 * Kernel structs are declared here with only the fields read, and CO-RE
 * relocates them against the running kernel's BTF: no generated vmlinux.h,
 * since the container build has no BTF of the node's kernel. The ___l7tap
 * flavour keeps them clear of any header that defines the real ones.
 */
#ifndef L7TAP_SOCKET_OF_FD_BPF_H
#define L7TAP_SOCKET_OF_FD_BPF_H

#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <linux/types.h>

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "tc/l7tap_abi.h"

#define L7TAP_AF_INET 2
#define L7TAP_AF_INET6 10
#define L7TAP_IPPROTO_TCP 6
#define L7TAP_SOCK_STREAM 1
#define L7TAP_S_IFMT 0170000
#define L7TAP_S_IFSOCK 0140000

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

/* The kernel's structs, only the fields read. */
struct in6_addr___l7tap {
	__u8 bytes[16];
};

struct sock_common___l7tap {
	__be32 skc_daddr;
	__be32 skc_rcv_saddr;
	__be16 skc_dport;
	__u16 skc_num; /* host order */
	unsigned short skc_family;
	struct in6_addr___l7tap skc_v6_daddr;
	struct in6_addr___l7tap skc_v6_rcv_saddr;
} __attribute__((preserve_access_index));

struct sock___l7tap {
	struct sock_common___l7tap __sk_common;
	__u16 sk_protocol;
} __attribute__((preserve_access_index));

struct file___l7tap;

struct socket___l7tap {
	short type;
	struct file___l7tap *file;
	struct sock___l7tap *sk;
} __attribute__((preserve_access_index));

struct inode___l7tap {
	unsigned short i_mode;
} __attribute__((preserve_access_index));

struct file___l7tap {
	struct inode___l7tap *f_inode;
	void *private_data;
} __attribute__((preserve_access_index));

struct fdtable___l7tap {
	unsigned int max_fds;
	struct file___l7tap **fd;
} __attribute__((preserve_access_index));

struct files_struct___l7tap {
	struct fdtable___l7tap *fdt;
} __attribute__((preserve_access_index));

struct ns_common___l7tap {
	unsigned int inum;
} __attribute__((preserve_access_index));

struct net___l7tap {
	struct ns_common___l7tap ns;
} __attribute__((preserve_access_index));

struct nsproxy___l7tap {
	struct net___l7tap *net_ns;
} __attribute__((preserve_access_index));

struct task_struct___l7tap {
	struct files_struct___l7tap *files;
	struct nsproxy___l7tap *nsproxy;
} __attribute__((preserve_access_index));

static __always_inline __u32 l7tap_netns_ino(void)
{
	struct task_struct___l7tap *task = (void *)bpf_get_current_task();

	return BPF_CORE_READ(task, nsproxy, net_ns, ns.inum);
}

/* Outcomes of l7tap_socket_tuple(). */
#define L7TAP_TUPLE_OK 0
#define L7TAP_TUPLE_NO_SOCKET 1 /* no such fd, not a socket, or not connected */
#define L7TAP_TUPLE_NOT_TCP 2

/* The 5-tuple of the current task's fd, as the task sends (local ->
 * remote), through task->files->fdt->fd[fd]->private_data (struct socket).
 * The inode's mode and the socket's back-pointer to its file both have to
 * agree before private_data is taken for a socket. */
static __always_inline int l7tap_socket_tuple(__s32 fd, struct l7tap_flow_key *key)
{
	struct task_struct___l7tap *task = (void *)bpf_get_current_task();
	struct fdtable___l7tap *fdt = BPF_CORE_READ(task, files, fdt);
	struct file___l7tap **files;
	struct file___l7tap *file = NULL;
	struct socket___l7tap *sock;
	struct sock___l7tap *sk;
	unsigned short mode, family;

	if (!fdt || fd < 0 || (__u32)fd >= BPF_CORE_READ(fdt, max_fds))
		return L7TAP_TUPLE_NO_SOCKET;
	files = BPF_CORE_READ(fdt, fd);
	if (bpf_probe_read_kernel(&file, sizeof(file), files + fd) || !file)
		return L7TAP_TUPLE_NO_SOCKET;
	mode = BPF_CORE_READ(file, f_inode, i_mode);
	if ((mode & L7TAP_S_IFMT) != L7TAP_S_IFSOCK)
		return L7TAP_TUPLE_NO_SOCKET;
	sock = BPF_CORE_READ(file, private_data);
	if (!sock || BPF_CORE_READ(sock, file) != file)
		return L7TAP_TUPLE_NO_SOCKET;
	sk = BPF_CORE_READ(sock, sk);
	if (!sk)
		return L7TAP_TUPLE_NO_SOCKET;
	if (BPF_CORE_READ(sock, type) != L7TAP_SOCK_STREAM ||
	    BPF_CORE_READ(sk, sk_protocol) != L7TAP_IPPROTO_TCP)
		return L7TAP_TUPLE_NOT_TCP;

	__builtin_memset(key, 0, sizeof(*key));
	family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (family == L7TAP_AF_INET) {
		__be32 s = BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr);
		__be32 d = BPF_CORE_READ(sk, __sk_common.skc_daddr);

		key->saddr[10] = 0xff;
		key->saddr[11] = 0xff;
		__builtin_memcpy(&key->saddr[12], &s, 4);
		key->daddr[10] = 0xff;
		key->daddr[11] = 0xff;
		__builtin_memcpy(&key->daddr[12], &d, 4);
		key->family = 4;
	} else if (family == L7TAP_AF_INET6) {
		BPF_CORE_READ_INTO(&key->saddr, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO(&key->daddr, sk, __sk_common.skc_v6_daddr);
		/* An IPv4 peer of a dual-stack socket: TC sees IPv4 packets,
		 * and the key must match theirs. */
		__u64 hi;
		__u32 mid;

		__builtin_memcpy(&hi, &key->daddr[0], 8);
		__builtin_memcpy(&mid, &key->daddr[8], 4);
		key->family = (hi == 0 && mid == bpf_htonl(0xffff)) ? 4 : 6;
	} else {
		return L7TAP_TUPLE_NOT_TCP;
	}
	key->sport = BPF_CORE_READ(sk, __sk_common.skc_num);
	key->dport = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	if (key->sport == 0 || key->dport == 0)
		return L7TAP_TUPLE_NO_SOCKET; /* not connected yet */
	return L7TAP_TUPLE_OK;
}

/* The first argument of a syscall (the fd of the ones above), from the
 * user registers the sys_enter raw tracepoint hands over (args[0]). */
static __always_inline __u64 l7tap_syscall_arg1(struct pt_regs *regs)
{
	__u64 v = 0;

#if defined(__TARGET_ARCH_x86)
	/* The uapi pt_regs has the kernel's layout on x86. */
	bpf_probe_read_kernel(&v, sizeof(v), &regs->rdi);
#else
	v = PT_REGS_PARM1_CORE_SYSCALL(regs);
#endif
	return v;
}

#endif /* L7TAP_SOCKET_OF_FD_BPF_H */
