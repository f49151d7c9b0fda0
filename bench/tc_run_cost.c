// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The TC program's owner-run cost without a test bed's noise: loads each
 * l7tap BPF object given (a build's tc/l7tap_bpf_skel/l7tap_tc.bpf.o) with
 * its default configuration, opens one IPv4 flow on ifindex 1 (lo) with a
 * SYN, then runs one 100-byte-payload segment of it through l7tap_ingress
 * and l7tap_egress with BPF_PROG_TEST_RUN, 5000 runs per batch, objects
 * interleaved batch by batch, the ring buffer drained between batches
 * (outside the timed runs). Prints the median ns per run of 200 batches.
 * Both runs are the owner's (the egress one is not a paired second run:
 * its ingress_ifindex is 0). Root.
 *   cc -O2 -Wall -Wextra -o /tmp/tc_run_cost bench/tc_run_cost.c -lbpf
 *   taskset -c 1 /tmp/tc_run_cost BEFORE.bpf.o AFTER.bpf.o
 */
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCHES 200
#define RUNS 5000
#define PAYLOAD 100

struct prog {
	int in, out;
	struct ring_buffer *rb;
};

static int drop(void *ctx, void *data, size_t size)
{
	(void)ctx, (void)data, (void)size;
	return 0;
}

/* 10.0.0.1:40000 -> 10.0.0.2:8080, flags, plen payload bytes. */
static void build(unsigned char *f, int plen, unsigned char flags)
{
	unsigned char *ip = f + 14, *th = ip + 20;
	int tot = 40 + plen;

	memset(f, 0, 54 + plen);
	f[12] = 0x08;
	ip[0] = 0x45;
	ip[2] = tot >> 8;
	ip[3] = tot & 255;
	ip[8] = 64;
	ip[9] = 6;
	ip[12] = 10, ip[15] = 1, ip[16] = 10, ip[19] = 2;
	th[0] = 40000 >> 8, th[1] = 40000 & 255, th[2] = 8080 >> 8, th[3] = 8080 & 255;
	th[7] = 100, th[11] = 1, th[12] = 5 << 4, th[13] = flags, th[14] = th[15] = 0xff;
	for (int i = 0; i < plen; i++)
		f[54 + i] = 'a' + i % 26;
}

static double run(const struct prog *p, int egress, unsigned char *f, int len, int repeat)
{
	struct __sk_buff ctx = {.ifindex = 1, .ingress_ifindex = egress ? 0 : 1};
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = f, .data_size_in = len, .ctx_in = &ctx,
		    .ctx_size_in = sizeof(ctx), .repeat = repeat);

	if (bpf_prog_test_run_opts(egress ? p->out : p->in, &o)) {
		perror("BPF_PROG_TEST_RUN");
		exit(1);
	}
	ring_buffer__consume(p->rb);
	return o.duration;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	static unsigned char seg[54 + PAYLOAD], syn[54];
	static double ns[16][2][BATCHES];
	struct prog p[16];
	int n = argc - 1;

	if (n < 1 || n > 16) {
		fprintf(stderr, "usage: tc_run_cost L7TAP_TC.bpf.o... (up to 16)\n");
		return 2;
	}
	build(seg, PAYLOAD, 0x18);
	build(syn, 0, 0x02);
	for (int i = 0; i < n; i++) {
		struct bpf_object *o = bpf_object__open_file(argv[i + 1], NULL);

		if (!o || bpf_object__load(o)) {
			fprintf(stderr, "tc_run_cost: cannot load %s\n", argv[i + 1]);
			return 1;
		}
		p[i].in = bpf_program__fd(bpf_object__find_program_by_name(o, "l7tap_ingress"));
		p[i].out = bpf_program__fd(bpf_object__find_program_by_name(o, "l7tap_egress"));
		p[i].rb = ring_buffer__new(bpf_map__fd(bpf_object__find_map_by_name(o, "events")),
					   drop, NULL, NULL);
		if (!p[i].rb) {
			perror("ring_buffer__new");
			return 1;
		}
		run(&p[i], 0, syn, sizeof(syn), 1);
	}
	for (int b = 0; b < BATCHES; b++)
		for (int i = 0; i < n; i++)
			for (int e = 0; e < 2; e++)
				ns[i][e][b] = run(&p[i], e, seg, sizeof(seg), RUNS);
	for (int i = 0; i < n; i++) {
		qsort(ns[i][0], BATCHES, sizeof(double), cmp);
		qsort(ns[i][1], BATCHES, sizeof(double), cmp);
		printf("%s\tingress owner %.0f ns/run\tegress owner %.0f ns/run\n", argv[i + 1],
		       ns[i][0][BATCHES / 2], ns[i][1][BATCHES / 2]);
	}
	return 0;
}
