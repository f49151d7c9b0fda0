/* A C program for the function target tests (tests/apptrace/
 * function_targets_test.cc): functions found by name and glob, and USDT
 * probes in both naming styles. `apptrace_native N` makes N rounds of
 * calls, for the test that counts uprobe hits at the resolved offsets. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/sdt.h>

__attribute__((noinline)) int handle_get(int x) { return x * 3 + 1; }

__attribute__((noinline)) int handle_put(int x) { return x > 10 ? x - 10 : x + 7; }

__attribute__((noinline)) int handle_delete(int x) { return x ^ 0x55; }

/* Two names for one address: one probe. */
int handle_remove(int x) __attribute__((alias("handle_delete")));

__attribute__((noinline)) static int helper(int x) { return x * x; }

int main(int argc, char **argv) {
	const int rounds = argc > 1 ? atoi(argv[1]) : 1;
	int sum = 0;
	for (int i = 0; i < rounds; i++) {
		STAP_PROBE1(l7tapt, request__start, i);
		/* Kept small: only the calls matter, and int overflow is undefined. */
		sum = (sum + handle_get(i) + handle_put(i) + handle_delete(i) + helper(i)) & 0xffff;
		STAP_PROBE1(l7tapt, request__end, sum);
		STAP_PROBE(l7tapt, work_begin);
		sum = (sum + handle_remove(sum)) & 0xffff;
		STAP_PROBE(l7tapt, work_finish);
	}
	printf("%d\n", sum);
	return 0;
}
