/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What every TLS program shares (OpenSSL's, Go's): the ring of
 * struct l7tap_tls_event, the per-stream sequence state, the socket each TLS
 * session is on, the pid filter, the counters, and the emitters.
 *
 * An object that includes this header defines the maps below; a second
 * object (Go's) shares them with the first through bpf_map__reuse_fd before
 * its load, so one ring, one seq state and one set of counters serve both.
 * The map names are part of that contract: tls_events, tls_streams,
 * tls_sockets, tls_pids, tls_counters.
 *
 * Events are built in place in the ring (bpf_ringbuf_reserve), never in a
 * per-CPU scratch buffer: uprobe programs run preemptible, and a task
 * preempted between filling a shared buffer and copying it out would find
 * another task's bytes under its own header.
 *
 * The socket under an fd comes from bpf_common/socket_of_fd.bpf.h, shared
 * with the function uprobes (apptrace/).
 */
#ifndef L7TAP_TLS_COMMON_BPF_H
#define L7TAP_TLS_COMMON_BPF_H

#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <linux/types.h>

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "bpf_common/socket_of_fd.bpf.h"
#include "uprobes/bpf/tls_abi.h"
#include "uprobes/bpf/tls_counters.h"

/* Streams are (tgid, conn, direction); sockets are (tgid, conn). LRU: a
 * session that ends without SSL_free (a process killed) ages out. */
#define L7TAP_TLS_STREAM_ENTRIES 65536
#define L7TAP_TLS_SOCKET_ENTRIES 32768
#define L7TAP_TLS_PID_ENTRIES 1024

/* Set by the loader before load: nonzero traces only the tgids in tls_pids. */
const volatile __u32 l7tap_tls_filter_pids = 0;
/* Set by the loader: wake the reader once this much is queued; 0: every
 * event. Below it the daemon's drain timer reads the ring, as on the TC
 * path: a wake-up per event cost ~13 us per SSL call here (the reader's
 * wake-up IPI), more than the two uprobe hits of the call together. */
const volatile __u32 l7tap_tls_wakeup_bytes = 0;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, L7TAP_TLS_DEFAULT_RING_BYTES); /* resized by the loader */
} tls_events SEC(".maps");

struct l7tap_tls_stream_key {
	__u64 conn_id;
	__u32 tgid;
	__u32 direction;
};

struct l7tap_tls_stream {
	__u64 next_offset;
	__u32 next_seq;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, L7TAP_TLS_STREAM_ENTRIES);
	__type(key, struct l7tap_tls_stream_key);
	__type(value, struct l7tap_tls_stream);
} tls_streams SEC(".maps");

struct l7tap_tls_sock_key {
	__u64 conn_id;
	__u32 tgid;
	__u32 pad;
};

/* Evidence for the socket of an SSL object on memory BIOs (openssl.bpf.c):
 * the socket its thread received on just before reading, and the one it
 * sent on just after writing. */
#define L7TAP_TLS_GUESS_RECV 1
#define L7TAP_TLS_GUESS_SEND 2

/* What is known of the socket under one TLS session. */
struct l7tap_tls_sock {
	struct l7tap_flow_key key;	 /* local -> remote, valid when tuple_known */
	struct l7tap_flow_key guess_key; /* the socket the evidence so far names */
	__s32 fd;			 /* -1 until a probe saw it */
	__s32 guess_fd;			 /* valid when guess_kinds != 0 */
	__u8 tuple_known;
	__u8 role;	    /* enum l7tap_tls_role */
	__u8 guess_kinds;   /* L7TAP_TLS_GUESS_* seen for guess_fd */
	__u8 guess_refused; /* evidence named two sockets: never guessed again */
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, L7TAP_TLS_SOCKET_ENTRIES);
	__type(key, struct l7tap_tls_sock_key);
	__type(value, struct l7tap_tls_sock);
} tls_sockets SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, L7TAP_TLS_PID_ENTRIES);
	__type(key, __u32);
	__type(value, __u8);
} tls_pids SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, L7TAP_TLS_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} tls_counters SEC(".maps");

/* Wake the reader only when this sample (plus the ring's 8-byte record
 * header) takes the queue across the threshold, as tc/l7tap.bpf.c does. */
static __always_inline __u64 l7tap_tls_wakeup_flags(__u64 sample_size)
{
	__u32 wakeup_bytes = l7tap_tls_wakeup_bytes;
	__u64 avail;

	if (!wakeup_bytes)
		return 0;
	avail = bpf_ringbuf_query(&tls_events, BPF_RB_AVAIL_DATA);
	if (avail >= wakeup_bytes && avail < (__u64)wakeup_bytes + sample_size + 8)
		return BPF_RB_FORCE_WAKEUP;
	return BPF_RB_NO_WAKEUP;
}

static __always_inline void l7tap_tls_count(__u32 idx, __u64 n)
{
	__u64 *v = bpf_map_lookup_elem(&tls_counters, &idx);

	if (v)
		*v += n;
}

static __always_inline int l7tap_tls_traced(__u32 tgid)
{
	if (!l7tap_tls_filter_pids)
		return 1;
	return bpf_map_lookup_elem(&tls_pids, &tgid) != NULL;
}

static __always_inline struct l7tap_tls_sock *l7tap_tls_sock_get(__u32 tgid, __u64 conn_id,
								 int create)
{
	struct l7tap_tls_sock_key k = {.conn_id = conn_id, .tgid = tgid};
	struct l7tap_tls_sock *s = bpf_map_lookup_elem(&tls_sockets, &k);
	struct l7tap_tls_sock init = {.fd = -1};

	if (s || !create)
		return s;
	if (bpf_map_update_elem(&tls_sockets, &k, &init, BPF_NOEXIST) &&
	    bpf_map_lookup_elem(&tls_sockets, &k) == NULL) {
		l7tap_tls_count(L7TAP_TLS_CNT_STATE_FULL, 1);
		return NULL;
	}
	return bpf_map_lookup_elem(&tls_sockets, &k);
}

/* The session conn_id of the current process is on fd: remember it, and
 * its tuple once the socket is connected. Cheap when nothing changed, since
 * the syscall hooks call it for every read/write inside a TLS call. */
static __always_inline void l7tap_tls_note_fd(__u64 conn_id, __s32 fd)
{
	struct l7tap_tls_sock *s = l7tap_tls_sock_get(bpf_get_current_pid_tgid() >> 32, conn_id, 1);
	struct l7tap_flow_key key;
	int r;

	if (!s || (s->fd == fd && s->tuple_known))
		return;
	r = l7tap_socket_tuple(fd, &key);
	if (r == L7TAP_TUPLE_NOT_TCP) {
		l7tap_tls_count(L7TAP_TLS_CNT_NOT_TCP, 1);
		return;
	}
	s->fd = fd;
	if (r == L7TAP_TUPLE_OK) {
		s->key = key;
		s->tuple_known = 1;
	} else {
		s->tuple_known = 0;
	}
}

static __always_inline void l7tap_tls_note_role(__u64 conn_id, __u8 role)
{
	struct l7tap_tls_sock *s = l7tap_tls_sock_get(bpf_get_current_pid_tgid() >> 32, conn_id, 1);

	if (s)
		s->role = role;
}

/* Fills what every event kind carries; the socket's part from `s` (may be
 * NULL). */
static __always_inline void l7tap_tls_fill(struct l7tap_tls_event *ev, __u8 kind, __u64 conn_id,
					   __u8 direction, __u8 library,
					   const struct l7tap_tls_sock *s)
{
	__u64 id = bpf_get_current_pid_tgid();

	ev->ts_ns = bpf_ktime_get_ns();
	ev->conn_id = conn_id;
	ev->stream_offset = 0;
	ev->seq = 0;
	ev->tgid = id >> 32;
	ev->tid = (__u32)id;
	ev->len = 0;
	ev->captured = 0;
	ev->netns_ino = l7tap_netns_ino();
	ev->reserved = 0;
	ev->kind = kind;
	ev->direction = direction;
	ev->library = library;
	__builtin_memset(ev->pad, 0, sizeof(ev->pad));
	if (s) {
		ev->fd = s->fd;
		ev->role = s->role;
		ev->tuple_known = s->tuple_known;
		ev->key = s->key;
	} else {
		ev->fd = -1;
		ev->role = L7TAP_TLS_ROLE_UNKNOWN;
		ev->tuple_known = 0;
		__builtin_memset(&ev->key, 0, sizeof(ev->key));
	}
	bpf_get_current_comm(ev->comm, sizeof(ev->comm));
}

/* Reserved sizes of data events (bytes after the header). The ring takes
 * constant sizes only, so a chunk goes into the smallest class that holds
 * it: a sample may end after unused bytes, readers go by `captured`. */
#define L7TAP_TLS_CLASS_S 256
#define L7TAP_TLS_CLASS_M 2048
#define L7TAP_TLS_CLASS_L L7TAP_TLS_MAX_CHUNK

/* One data event of `stands` bytes at the stream's current offset, of which
 * up to `cls` (a constant) are copied from `src`. 0 when the ring took it. */
static __always_inline int l7tap_tls_chunk(const __u32 cls, __u64 conn_id, __u8 direction,
					   __u8 library, const struct l7tap_tls_sock *s,
					   const struct l7tap_tls_stream *st, __u32 stands,
					   const void *src, __u64 n)
{
	struct l7tap_tls_event *ev =
	    bpf_ringbuf_reserve(&tls_events, L7TAP_TLS_EVENT_HEADER_SIZE + cls, 0);

	if (!ev)
		return -1;
	l7tap_tls_fill(ev, L7TAP_TLS_EVENT_DATA, conn_id, direction, library, s);
	ev->stream_offset = st->next_offset;
	ev->seq = st->next_seq;
	ev->len = stands;
	barrier_var(n);
	if (n > cls)
		n = cls;
	if (bpf_probe_read_user(ev->data, n, src) == 0) {
		ev->captured = n;
	} else {
		ev->captured = 0;
		l7tap_tls_count(L7TAP_TLS_CNT_READ_FAULTS, 1);
	}
	bpf_ringbuf_submit(ev, l7tap_tls_wakeup_flags(L7TAP_TLS_EVENT_HEADER_SIZE + cls));
	return 0;
}

/* `len` plaintext bytes at user address `buf` moved in `direction` on
 * session conn_id. Up to L7TAP_TLS_MAX_CHUNKS events of up to
 * L7TAP_TLS_MAX_CHUNK bytes; the last one also stands for whatever is left
 * (len > captured). The stream's seq and offset advance whether or not the
 * ring took the event, so a loss shows as a jump, never as shifted bytes. */
static __always_inline void l7tap_tls_emit_data(__u64 conn_id, __u8 direction, __u8 library,
						const void *buf, __u64 len)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct l7tap_tls_stream_key skey = {
	    .conn_id = conn_id, .tgid = tgid, .direction = direction};
	struct l7tap_tls_stream init = {};
	struct l7tap_tls_stream *st;
	struct l7tap_tls_sock *s;
	__u64 done = 0;

	if (len == 0)
		return;
	st = bpf_map_lookup_elem(&tls_streams, &skey);
	if (!st) {
		bpf_map_update_elem(&tls_streams, &skey, &init, BPF_NOEXIST);
		st = bpf_map_lookup_elem(&tls_streams, &skey);
		if (!st) {
			l7tap_tls_count(L7TAP_TLS_CNT_STATE_FULL, 1);
			return;
		}
	}
	s = l7tap_tls_sock_get(tgid, conn_id, 0);
	if (!s || !s->tuple_known)
		l7tap_tls_count(L7TAP_TLS_CNT_NO_SOCKET, 1);
	if (len > L7TAP_TLS_MAX_CHUNK)
		l7tap_tls_count(L7TAP_TLS_CNT_CHUNKED, 1);
	if (len > (__u64)L7TAP_TLS_MAX_CHUNK * L7TAP_TLS_MAX_CHUNKS)
		l7tap_tls_count(L7TAP_TLS_CNT_TRUNCATED, 1);

#pragma unroll
	for (int i = 0; i < L7TAP_TLS_MAX_CHUNKS; i++) {
		__u64 left = len - done;
		__u64 n = left < L7TAP_TLS_MAX_CHUNK ? left : L7TAP_TLS_MAX_CHUNK;
		/* A call beyond 4 GiB is not representable in `len`: the
		 * daemon sees the stream end early, as after a loss. */
		__u32 stands = i == L7TAP_TLS_MAX_CHUNKS - 1
				   ? (left > 0xffffffffULL ? 0xffffffffU : (__u32)left)
				   : n;
		const void *src = (const __u8 *)buf + done;
		int r;

		if (n <= L7TAP_TLS_CLASS_S)
			r = l7tap_tls_chunk(L7TAP_TLS_CLASS_S, conn_id, direction, library, s, st,
					    stands, src, n);
		else if (n <= L7TAP_TLS_CLASS_M)
			r = l7tap_tls_chunk(L7TAP_TLS_CLASS_M, conn_id, direction, library, s, st,
					    stands, src, n);
		else
			r = l7tap_tls_chunk(L7TAP_TLS_CLASS_L, conn_id, direction, library, s, st,
					    stands, src, n);
		if (r == 0) {
			l7tap_tls_count(L7TAP_TLS_CNT_EVENTS, 1);
		} else {
			l7tap_tls_count(L7TAP_TLS_CNT_LOST, 1);
			l7tap_tls_count(L7TAP_TLS_CNT_LOST_BYTES, stands);
		}
		st->next_offset += stands;
		st->next_seq++;
		done += stands;
		if (done >= len)
			break;
	}
}

/* An event without data (close, exec) into the ring; 0 when it went in. */
static __always_inline int l7tap_tls_emit_header(__u8 kind, __u64 conn_id, __u8 library,
						 const struct l7tap_tls_sock *s)
{
	struct l7tap_tls_event *ev =
	    bpf_ringbuf_reserve(&tls_events, L7TAP_TLS_EVENT_HEADER_SIZE, 0);

	if (!ev) {
		l7tap_tls_count(L7TAP_TLS_CNT_LOST, 1);
		return -1;
	}
	l7tap_tls_fill(ev, kind, conn_id, L7TAP_TLS_WRITE, library, s);
	bpf_ringbuf_submit(ev, l7tap_tls_wakeup_flags(L7TAP_TLS_EVENT_HEADER_SIZE));
	l7tap_tls_count(L7TAP_TLS_CNT_EVENTS, 1);
	return 0;
}

/* The session ended: one CLOSE event (when anything was known of it), and
 * its state forgotten so a new session at the same address starts afresh. */
static __always_inline void l7tap_tls_emit_close(__u64 conn_id, __u8 library)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct l7tap_tls_sock_key k = {.conn_id = conn_id, .tgid = tgid};
	struct l7tap_tls_stream_key wk = {
	    .conn_id = conn_id, .tgid = tgid, .direction = L7TAP_TLS_WRITE};
	struct l7tap_tls_stream_key rk = {
	    .conn_id = conn_id, .tgid = tgid, .direction = L7TAP_TLS_READ};
	struct l7tap_tls_sock *s = bpf_map_lookup_elem(&tls_sockets, &k);
	int known = s != NULL;

	if (bpf_map_delete_elem(&tls_streams, &wk) == 0)
		known = 1;
	if (bpf_map_delete_elem(&tls_streams, &rk) == 0)
		known = 1;
	if (!known)
		return;
	if (l7tap_tls_emit_header(L7TAP_TLS_EVENT_CLOSE, conn_id, library, s) == 0)
		l7tap_tls_count(L7TAP_TLS_CNT_CLOSES, 1);
	if (s)
		bpf_map_delete_elem(&tls_sockets, &k);
}

/* A process exec'd: user space looks at its new libraries. */
static __always_inline void l7tap_tls_emit_exec(void)
{
	if (l7tap_tls_emit_header(L7TAP_TLS_EVENT_EXEC, 0, 0, NULL) == 0)
		l7tap_tls_count(L7TAP_TLS_CNT_EXECS, 1);
}

#endif /* L7TAP_TLS_COMMON_BPF_H */
