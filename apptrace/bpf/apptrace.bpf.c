// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Function latency by uprobes (issue 14). A call starts at the entry uprobe
 * of a function (or a USDT start probe) and ends at its uretprobe (native
 * code), at a uprobe on one of its RET instructions (Go: uretprobes rewrite
 * the return address on a goroutine stack that Go moves, which crashes the
 * program), or at the USDT end probe. The uprobe's cookie is the function's
 * index: its config row, its histogram row, the `function` of its events.
 *
 * Calls in flight are kept per thread (native, USDT) or per goroutine (Go:
 * the g in R14, since a goroutine resumes on any thread) as a small stack,
 * so that a TCP syscall in the middle counts for every call it is inside
 * of (a handler and the query it makes), and a return whose inner returns
 * never came (longjmp, panic) drops those frames instead of mismatching.
 * Recursion is counted on the outermost frame of the function: only that
 * call is timed.
 *
 * A Go function whose stack check fails at its entry calls morestack, which
 * grows (moves) the stack and jumps back to the entry: the entry probe hits
 * twice for one call, and only one RET follows. Go frames are therefore told
 * apart by their depth in the goroutine's stack (stack.hi - SP, which a move
 * keeps) rather than by counting entries and returns. The one case this
 * gets wrong: a call that panics (no RET runs) and a call of the same
 * function at the same depth of the same goroutine next; they are reported
 * as one call. A probe after the stack-check prologue would not need the
 * rule.
 *
 * The TCP I/O comes from the sys_enter/sys_exit raw tracepoints (tracefs
 * is often not mounted, so no syscalls:* tracepoints). They fire for every
 * syscall of the node: a process that runs no traced function leaves after
 * the syscall number and one hash lookup.
 */
#include "apptrace/bpf/apptrace_abi.h"
#include "bpf_common/socket_of_fd.bpf.h"

/* usdt.bpf.h uses bool without including its header. */
#include <stdbool.h>

#include <bpf/usdt.bpf.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Threads and goroutines with calls in flight (an entry each, gone when
 * their last call returns). */
#define L7TAP_APP_THREAD_ENTRIES 8192
/* Calls in flight per thread or goroutine; deeper calls are not timed. */
#define L7TAP_APP_MAX_DEPTH 8
/* Processes that ran a traced function (their syscalls are looked at). */
#define L7TAP_APP_TGID_ENTRIES 4096
/* Threads inside a syscall of a traced process; last socket read per
 * thread or goroutine. */
#define L7TAP_APP_SYSCALL_ENTRIES 16384
#define L7TAP_APP_LAST_READ_ENTRIES 16384

#if defined(__TARGET_ARCH_x86)
#define L7TAP_APP_GO_G(regs) ((regs)->r14)
#elif defined(__TARGET_ARCH_arm64)
/* Not attached: the Go analysis refuses other architectures than amd64. */
#define L7TAP_APP_GO_G(regs) (((const struct user_pt_regs *)(regs))->regs[28])
#else
#error "Go's register ABI of this architecture is missing"
#endif

/* Set by the loader. */
const volatile __u32 l7tap_app_histograms = 0;	 /* 1: only exemplar events */
const volatile __u32 l7tap_app_emit_entries = 0; /* 1: an ENTER event per call */
/* Wake the reader once this much is queued; 0: every event (see
 * uprobes/bpf/tls_common.bpf.h for why a threshold). */
const volatile __u32 l7tap_app_wakeup_bytes = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, L7TAP_APP_DEFAULT_RING_BYTES); /* resized by the loader */
} app_events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, L7TAP_APP_MAX_FUNCTIONS);
	__type(key, __u32);
	__type(value, struct l7tap_app_function);
} app_functions SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, L7TAP_APP_MAX_FUNCTIONS);
	__type(key, __u32);
	__type(value, struct l7tap_app_stats);
} app_stats SEC(".maps");

/* Histogram mode: the slowest call of each function this interval (ns);
 * user space zeroes it at each interval. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, L7TAP_APP_MAX_FUNCTIONS);
	__type(key, __u32);
	__type(value, __u64);
} app_interval_max SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, L7TAP_APP_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} app_counters SEC(".maps");

struct l7tap_app_process {
	__u32 is_go; /* syscalls are keyed by goroutine (R14), not thread */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, L7TAP_APP_TGID_ENTRIES);
	__type(key, __u32);
	__type(value, struct l7tap_app_process);
} app_tgids SEC(".maps");

/* A thread (tid) or a goroutine (g) of a process. */
struct l7tap_app_key {
	__u64 key;
	__u32 tgid;
	__u32 pad;
};

struct l7tap_app_frame {
	__u64 start_ns;
	__u64 goid;
	__u64 stack_pos; /* Go: see l7tap_app_go_stack_pos(); 0 otherwise */
	struct l7tap_app_io io;
	struct l7tap_flow_key conn;
	__u32 tid;
	__u32 nested; /* native, USDT: recursive entries still open inside this call */
	__u16 function;
	__u8 flags;
	__u8 pad[5];
};

struct l7tap_app_thread {
	__u64 goid; /* Go: of the goroutine the frames belong to */
	__u32 depth;
	__u32 pad;
	struct l7tap_app_frame frames[L7TAP_APP_MAX_DEPTH];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, L7TAP_APP_THREAD_ENTRIES);
	__type(key, struct l7tap_app_key);
	__type(value, struct l7tap_app_thread);
} app_threads SEC(".maps");

/* A zeroed thread state to create entries from (too big for the stack). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct l7tap_app_thread);
} app_zero SEC(".maps");

/* A socket syscall between sys_enter and sys_exit. */
struct l7tap_app_syscall {
	__u64 key; /* tid or g at the entry */
	__u64 start_ns;
	__s32 fd;
	__u32 recv;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, L7TAP_APP_SYSCALL_ENTRIES);
	__type(key, __u64); /* pid_tgid */
	__type(value, struct l7tap_app_syscall);
} app_syscalls SEC(".maps");

/* The TCP socket a thread or goroutine last received on: a call that does
 * no I/O itself most likely serves the request read there. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, L7TAP_APP_LAST_READ_ENTRIES);
	__type(key, struct l7tap_app_key);
	__type(value, struct l7tap_flow_key);
} app_last_read SEC(".maps");

static __always_inline void l7tap_app_count(__u32 idx, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&app_counters, &idx);

	if (v)
		*v += n;
}

static __always_inline __u64 l7tap_app_wakeup_flags(__u64 sample_size)
{
	__u32 wakeup_bytes = l7tap_app_wakeup_bytes;
	__u64 avail;

	if (!wakeup_bytes)
		return 0;
	avail = bpf_ringbuf_query(&app_events, BPF_RB_AVAIL_DATA);
	if (avail >= wakeup_bytes && avail < (__u64)wakeup_bytes + sample_size + 8)
		return BPF_RB_FORCE_WAKEUP;
	return BPF_RB_NO_WAKEUP;
}

static __always_inline int l7tap_app_same_conn(const struct l7tap_flow_key *a,
					       const struct l7tap_flow_key *b)
{
	__u64 x[5], y[5];

	__builtin_memcpy(x, a, sizeof(x));
	__builtin_memcpy(y, b, sizeof(y));
	return x[0] == y[0] && x[1] == y[1] && x[2] == y[2] && x[3] == y[3] && x[4] == y[4];
}

/* floor(log2(v)), 0 for 0. */
static __always_inline __u32 l7tap_app_log2(__u64 v)
{
	__u32 r, shift;

	r = (v > 0xffffffffULL) << 5;
	v >>= r;
	shift = (v > 0xffff) << 4;
	v >>= shift;
	r |= shift;
	shift = (v > 0xff) << 3;
	v >>= shift;
	r |= shift;
	shift = (v > 0xf) << 2;
	v >>= shift;
	r |= shift;
	shift = (v > 0x3) << 1;
	v >>= shift;
	r |= shift;
	r |= (v >> 1);
	return r;
}

static __always_inline void l7tap_app_emit(__u8 kind, const struct l7tap_app_frame *f, __u32 tgid,
					   __u64 g, __u64 end_ns, __u8 extra_flags)
{
	struct l7tap_app_event *ev = bpf_ringbuf_reserve(&app_events, sizeof(*ev), 0);

	if (!ev) {
		l7tap_app_count(L7TAP_APP_CNT_LOST, 1);
		return;
	}
	ev->start_ns = f->start_ns;
	ev->end_ns = end_ns;
	ev->g = g;
	ev->goid = f->goid;
	ev->io = f->io;
	ev->tgid = tgid;
	ev->tid = f->tid;
	ev->netns_ino = l7tap_netns_ino();
	ev->function = f->function;
	ev->kind = kind;
	ev->flags = f->flags | extra_flags;
	ev->conn = f->conn;
	bpf_get_current_comm(ev->comm, sizeof(ev->comm));
	bpf_ringbuf_submit(ev, l7tap_app_wakeup_flags(sizeof(*ev)));
	l7tap_app_count(L7TAP_APP_CNT_EVENTS, 1);
}

/* The key of the running call: the goroutine for Go, else the thread. */
static __always_inline __u64 l7tap_app_key_of(struct pt_regs *ctx, __u8 kind, __u64 pid_tgid)
{
	if (kind == L7TAP_APP_FUNC_GO)
		return L7TAP_APP_GO_G(ctx);
	return (__u32)pid_tgid;
}

/* Where a Go call is in its goroutine's stack: the distance from the
 * stack's top (g.stack.hi, at offset 8 of runtime.g since Go 1.0) to SP.
 * SP is the same at the entry and at the RET of one call (it points at the
 * return address), and a stack move keeps the distance. */
static __always_inline __u64 l7tap_app_go_stack_pos(struct pt_regs *ctx, __u64 g)
{
	__u64 hi = 0;

	if (bpf_probe_read_user(&hi, sizeof(hi), (void *)(g + 8)))
		return 0;
	return hi - PT_REGS_SP(ctx);
}

static __always_inline int l7tap_app_do_enter(struct pt_regs *ctx, __u32 function, __u8 kind)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct l7tap_app_key k = {.tgid = id >> 32};
	const struct l7tap_app_function *fn;
	struct l7tap_app_process *proc;
	struct l7tap_app_thread *st;
	struct l7tap_app_frame *f;
	struct l7tap_flow_key *last;
	__u64 goid = 0, pos = 0;
	__u32 zero = 0, d;

	if (function >= L7TAP_APP_MAX_FUNCTIONS)
		return 0;
	fn = bpf_map_lookup_elem(&app_functions, &function);
	if (!fn)
		return 0;
	if (kind != L7TAP_APP_FUNC_USDT)
		kind = fn->kind;
	k.key = l7tap_app_key_of(ctx, kind, id);
	if (!k.key)
		return 0;
	proc = bpf_map_lookup_elem(&app_tgids, &k.tgid);
	if (!proc) {
		struct l7tap_app_process p = {.is_go = kind == L7TAP_APP_FUNC_GO};

		bpf_map_update_elem(&app_tgids, &k.tgid, &p, BPF_NOEXIST);
	}
	if (kind == L7TAP_APP_FUNC_GO) {
		pos = l7tap_app_go_stack_pos(ctx, k.key);
		if (fn->goid_offset)
			bpf_probe_read_user(&goid, sizeof(goid), (void *)(k.key + fn->goid_offset));
	}

	st = bpf_map_lookup_elem(&app_threads, &k);
	if (!st) {
		void *init = bpf_map_lookup_elem(&app_zero, &zero);

		if (!init)
			return 0;
		bpf_map_update_elem(&app_threads, &k, init, BPF_NOEXIST);
		st = bpf_map_lookup_elem(&app_threads, &k);
		if (!st) {
			l7tap_app_count(L7TAP_APP_CNT_STATE_FULL, 1);
			return 0;
		}
		st->goid = goid;
	} else if (goid && st->goid != goid) {
		/* A g is reused by a new goroutine after the old one ended:
		 * frames left by a panic that unwound past their RETs. */
		l7tap_app_count(L7TAP_APP_CNT_STALE, st->depth);
		st->depth = 0;
		st->goid = goid;
	}

	d = st->depth;
	/* Go: a live call is always deeper in the stack than the calls it is
	 * inside of. Frames at this depth or deeper are calls a panic unwound
	 * past their RETs; the same function at the same depth is the entry
	 * run again by morestack (see the top of the file). */
	if (pos) {
#pragma unroll
		for (int i = 0; i < L7TAP_APP_MAX_DEPTH; i++) {
			if (i >= d)
				break;
			if (st->frames[i].stack_pos < pos)
				continue;
			if (st->frames[i].stack_pos == pos && st->frames[i].function == function)
				return 0;
			l7tap_app_count(L7TAP_APP_CNT_STALE, d - i);
			d = i;
			st->depth = d;
			break;
		}
	}
#pragma unroll
	for (int i = 0; i < L7TAP_APP_MAX_DEPTH; i++) {
		if (i >= d)
			break;
		if (st->frames[i].function == function) {
			st->frames[i].nested++;
			st->frames[i].flags |= L7TAP_APP_F_NESTED;
			l7tap_app_count(L7TAP_APP_CNT_NESTED, 1);
			return 0;
		}
	}
	if (d >= L7TAP_APP_MAX_DEPTH) {
		l7tap_app_count(L7TAP_APP_CNT_STATE_FULL, 1);
		return 0;
	}
	f = &st->frames[d & (L7TAP_APP_MAX_DEPTH - 1)];
	__builtin_memset(f, 0, sizeof(*f));
	f->goid = goid;
	f->stack_pos = pos;
	f->tid = (__u32)id;
	f->function = function;
	last = bpf_map_lookup_elem(&app_last_read, &k);
	if (last) {
		f->conn = *last;
		f->flags = L7TAP_APP_F_CONN_KNOWN | L7TAP_APP_F_CONN_BEFORE;
	}
	st->depth = d + 1;
	f->start_ns = bpf_ktime_get_ns();
	if (l7tap_app_emit_entries)
		l7tap_app_emit(L7TAP_APP_EVENT_ENTER, f, k.tgid,
			       kind == L7TAP_APP_FUNC_GO ? k.key : 0, 0, 0);
	return 0;
}

static __always_inline int l7tap_app_do_return(struct pt_regs *ctx, __u32 function, __u8 kind)
{
	__u64 end_ns = bpf_ktime_get_ns();
	__u64 id = bpf_get_current_pid_tgid();
	struct l7tap_app_key k = {.tgid = id >> 32};
	const struct l7tap_app_function *fn;
	struct l7tap_app_thread *st;
	struct l7tap_app_frame *f = NULL;
	struct l7tap_app_stats *stats;
	__u64 dur, *max;
	__u32 d, at = 0;

	if (function >= L7TAP_APP_MAX_FUNCTIONS)
		return 0;
	if (kind != L7TAP_APP_FUNC_USDT) {
		fn = bpf_map_lookup_elem(&app_functions, &function);
		if (!fn)
			return 0;
		kind = fn->kind;
	}
	k.key = l7tap_app_key_of(ctx, kind, id);
	st = bpf_map_lookup_elem(&app_threads, &k);
	if (!st) {
		l7tap_app_count(L7TAP_APP_CNT_NO_ENTRY, 1);
		return 0;
	}
	d = st->depth;
	/* The innermost frame of the function: frames above it are calls
	 * whose return never came. */
#pragma unroll
	for (int j = 0; j < L7TAP_APP_MAX_DEPTH; j++) {
		int i = (int)d - 1 - j;

		if (i < 0)
			break;
		if (st->frames[i & (L7TAP_APP_MAX_DEPTH - 1)].function == function) {
			f = &st->frames[i & (L7TAP_APP_MAX_DEPTH - 1)];
			at = i;
			break;
		}
	}
	if (!f) {
		l7tap_app_count(L7TAP_APP_CNT_NO_ENTRY, 1);
		return 0;
	}
	if (kind == L7TAP_APP_FUNC_GO) {
		/* A RET of a recursive call, not of the timed one. */
		if (f->stack_pos && f->stack_pos != l7tap_app_go_stack_pos(ctx, k.key))
			return 0;
	} else if (f->nested) {
		f->nested--;
		return 0;
	}
	if (d > at + 1)
		l7tap_app_count(L7TAP_APP_CNT_STALE, d - at - 1);

	dur = end_ns - f->start_ns;
	stats = bpf_map_lookup_elem(&app_stats, &function);
	if (stats) {
		__u32 b = l7tap_app_log2(dur);

		stats->calls++;
		stats->sum_ns += dur;
		stats->bytes_sent += f->io.bytes_sent;
		stats->bytes_received += f->io.bytes_received;
		if (b >= L7TAP_APP_HIST_BUCKETS)
			b = L7TAP_APP_HIST_BUCKETS - 1;
		stats->buckets[b]++;
	}
	if (!l7tap_app_histograms) {
		l7tap_app_emit(L7TAP_APP_EVENT_CALL, f, k.tgid,
			       kind == L7TAP_APP_FUNC_GO ? k.key : 0, end_ns, 0);
	} else {
		max = bpf_map_lookup_elem(&app_interval_max, &function);
		if (max && dur > *max) {
			*max = dur;
			l7tap_app_emit(L7TAP_APP_EVENT_CALL, f, k.tgid,
				       kind == L7TAP_APP_FUNC_GO ? k.key : 0, end_ns,
				       L7TAP_APP_F_EXEMPLAR);
		}
	}
	if (at == 0)
		bpf_map_delete_elem(&app_threads, &k);
	else
		st->depth = at;
	return 0;
}

SEC("uprobe")
int l7tap_app_enter(struct pt_regs *ctx)
{
	return l7tap_app_do_enter(ctx, (__u32)bpf_get_attach_cookie(ctx), L7TAP_APP_FUNC_NATIVE);
}

SEC("uretprobe")
int l7tap_app_return(struct pt_regs *ctx)
{
	return l7tap_app_do_return(ctx, (__u32)bpf_get_attach_cookie(ctx), L7TAP_APP_FUNC_NATIVE);
}

/* On each RET of a Go function. */
SEC("uprobe")
int l7tap_app_go_return(struct pt_regs *ctx)
{
	return l7tap_app_do_return(ctx, (__u32)bpf_get_attach_cookie(ctx), L7TAP_APP_FUNC_GO);
}

SEC("usdt")
int l7tap_app_usdt_start(struct pt_regs *ctx)
{
	return l7tap_app_do_enter(ctx, (__u32)bpf_usdt_cookie(ctx), L7TAP_APP_FUNC_USDT);
}

SEC("usdt")
int l7tap_app_usdt_end(struct pt_regs *ctx)
{
	return l7tap_app_do_return(ctx, (__u32)bpf_usdt_cookie(ctx), L7TAP_APP_FUNC_USDT);
}

SEC("raw_tracepoint/sys_enter")
int l7tap_app_sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
	struct l7tap_app_process *proc;
	struct l7tap_app_syscall sc = {};
	struct l7tap_app_key k;
	struct pt_regs *regs;
	__u64 id;
	__u32 tgid;

	switch (ctx->args[1]) {
	case L7TAP_NR_READ:
	case L7TAP_NR_READV:
	case L7TAP_NR_RECVFROM:
	case L7TAP_NR_RECVMSG:
		sc.recv = 1;
		break;
	case L7TAP_NR_WRITE:
	case L7TAP_NR_WRITEV:
	case L7TAP_NR_SENDTO:
	case L7TAP_NR_SENDMSG:
		break;
	default:
		return 0;
	}
	id = bpf_get_current_pid_tgid();
	tgid = id >> 32;
	proc = bpf_map_lookup_elem(&app_tgids, &tgid);
	if (!proc)
		return 0;
	regs = (struct pt_regs *)ctx->args[0];
	if (proc->is_go)
		bpf_probe_read_kernel(&sc.key, sizeof(sc.key), &L7TAP_APP_GO_G(regs));
	else
		sc.key = (__u32)id;
	/* A send outside any call counts for nothing; a receive still names
	 * the request a later call serves. */
	k.key = sc.key;
	k.tgid = tgid;
	k.pad = 0;
	if (!sc.recv && !bpf_map_lookup_elem(&app_threads, &k))
		return 0;
	sc.fd = (__s32)l7tap_syscall_arg1(regs);
	sc.start_ns = bpf_ktime_get_ns();
	bpf_map_update_elem(&app_syscalls, &id, &sc, BPF_ANY);
	return 0;
}

SEC("raw_tracepoint/sys_exit")
int l7tap_app_sys_exit(struct bpf_raw_tracepoint_args *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct l7tap_app_syscall *p = bpf_map_lookup_elem(&app_syscalls, &id);
	struct l7tap_app_syscall sc;
	struct l7tap_app_thread *st;
	struct l7tap_flow_key conn;
	struct l7tap_app_key k;
	__s64 ret = (__s64)ctx->args[1];
	__u64 dur;
	__u32 d;

	if (!p)
		return 0;
	sc = *p;
	bpf_map_delete_elem(&app_syscalls, &id);
	if (ret <= 0)
		return 0;
	if (l7tap_socket_tuple(sc.fd, &conn) != L7TAP_TUPLE_OK)
		return 0;
	k.key = sc.key;
	k.tgid = id >> 32;
	k.pad = 0;
	if (sc.recv)
		bpf_map_update_elem(&app_last_read, &k, &conn, BPF_ANY);
	st = bpf_map_lookup_elem(&app_threads, &k);
	if (!st)
		return 0;
	dur = bpf_ktime_get_ns() - sc.start_ns;
	d = st->depth;
#pragma unroll
	for (int i = 0; i < L7TAP_APP_MAX_DEPTH; i++) {
		struct l7tap_app_frame *f = &st->frames[i];

		if (i >= d)
			break;
		if (sc.recv) {
			f->io.bytes_received += ret;
			f->io.recv_ns += dur;
			f->io.receives++;
		} else {
			f->io.bytes_sent += ret;
			f->io.send_ns += dur;
			f->io.sends++;
		}
		if (!(f->flags & L7TAP_APP_F_CONN_KNOWN) || (f->flags & L7TAP_APP_F_CONN_BEFORE)) {
			f->conn = conn;
			f->flags = (f->flags & ~L7TAP_APP_F_CONN_BEFORE) | L7TAP_APP_F_CONN_KNOWN;
		} else if (!l7tap_app_same_conn(&f->conn, &conn)) {
			f->flags |= L7TAP_APP_F_MULTI_CONN;
		}
	}
	if (d)
		l7tap_app_count(L7TAP_APP_CNT_IO_SYSCALLS, 1);
	return 0;
}
