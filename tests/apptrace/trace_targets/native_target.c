// What tests/apptrace/trace_program_test.cc traces in a C program: a
// function that sleeps then sends N bytes on a TCP socket, a recursive
// function, a USDT start/end pair, and a trivial function for the cost per
// call. It waits for a line on stdin before it starts, so that the probes
// are in when the first call runs.
//
//   native_target io PORT CALLS SLEEP_MS BYTES   work_io CALLS times on one connection
//   native_target recurse DEPTH                  recurse(DEPTH) once
//   native_target usdt CALLS SLEEP_MS            CALLS request start/done pairs
//   native_target loop CALLS                     trivial() CALLS times; prints ns per call
//   native_target serve PORT SLEEP_MS            reads a request on one connection, then
//                                                compute() (no I/O), then relay() to both
//   native_target writes CALLS                   1-byte writes to /dev/null; prints ns per write
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sdt.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0) {
  }
}

__attribute__((noinline, used)) int work_io(int fd, int ms, size_t bytes) {
  static char buf[65536];
  size_t done = 0;
  sleep_ms(ms);
  while (done < bytes) {
    size_t n = bytes - done < sizeof(buf) ? bytes - done : sizeof(buf);
    ssize_t w = write(fd, buf, n);
    if (w <= 0) return -1;
    done += (size_t)w;
  }
  return 0;
}

__attribute__((noinline, used)) int recurse(int depth) {
  if (depth <= 1) {
    sleep_ms(1);
    return 1;
  }
  int r = recurse(depth - 1) + 1;
  __asm__ volatile("" ::: "memory");  // not a tail call
  return r;
}

// Serves the request read before it: no I/O of its own.
__attribute__((noinline, used)) int compute(int ms) {
  sleep_ms(ms);
  return ms;
}

// I/O on two sockets.
__attribute__((noinline, used)) int relay(int a, int b, const char* what, size_t n) {
  return write(a, what, n) == (ssize_t)n && write(b, what, n) == (ssize_t)n ? 0 : -1;
}

__attribute__((noinline, used)) int trivial(int x) {
  __asm__ volatile("" ::: "memory");
  return x + 1;
}

static int connect_to(int port) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0 || connect(fd, (struct sockaddr*)&a, sizeof(a)) != 0) return -1;
  return fd;
}

static int local_port(int fd) {
  struct sockaddr_in local;
  socklen_t len = sizeof(local);
  getsockname(fd, (struct sockaddr*)&local, &len);
  return ntohs(local.sin_port);
}

static int wait_for_go(void) {
  char line[16];
  return fgets(line, sizeof(line), stdin) != NULL ? 0 : -1;
}

int main(int argc, char** argv) {
  if (argc < 3) return 2;
  if (strcmp(argv[1], "io") == 0 && argc == 6) {
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2]))};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr*)&a, sizeof(a)) != 0) return 1;
    struct sockaddr_in local;
    socklen_t len = sizeof(local);
    getsockname(fd, (struct sockaddr*)&local, &len);
    printf("%d\n", ntohs(local.sin_port));  // the test checks the call's tuple
    fflush(stdout);
    if (wait_for_go() != 0) return 1;
    for (int i = 0; i < atoi(argv[3]); i++) {
      if (work_io(fd, atoi(argv[4]), (size_t)atol(argv[5])) != 0) return 1;
    }
    close(fd);
    return 0;
  }
  if (strcmp(argv[1], "serve") == 0 && argc == 4) {
    int a = connect_to(atoi(argv[2]));
    if (a < 0) return 1;
    printf("%d\n", local_port(a));
    fflush(stdout);
    int b = connect_to(atoi(argv[2]));
    if (b < 0) return 1;
    printf("%d\n", local_port(b));
    fflush(stdout);
    if (wait_for_go() != 0) return 1;
    char request[5];
    size_t got = 0;
    while (got < sizeof(request)) {
      ssize_t n = read(a, request + got, sizeof(request) - got);
      if (n <= 0) return 1;
      got += (size_t)n;
    }
    if (compute(atoi(argv[3])) != atoi(argv[3])) return 1;
    if (relay(a, b, "0123456789", 10) != 0) return 1;
    close(a);
    close(b);
    return 0;
  }
  if (strcmp(argv[1], "recurse") == 0) {
    if (wait_for_go() != 0) return 1;
    return recurse(atoi(argv[2])) == atoi(argv[2]) ? 0 : 1;
  }
  if (strcmp(argv[1], "usdt") == 0 && argc == 4) {
    if (wait_for_go() != 0) return 1;
    for (int i = 0; i < atoi(argv[2]); i++) {
      DTRACE_PROBE1(l7tapt, request__start, i);
      sleep_ms(atoi(argv[3]));
      DTRACE_PROBE1(l7tapt, request__done, i);
    }
    return 0;
  }
  if (strcmp(argv[1], "loop") == 0) {
    if (wait_for_go() != 0) return 1;
    long calls = atol(argv[2]);
    struct timespec t0, t1;
    int acc = 0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; i < calls; i++) acc = trivial(acc);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ns = (double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec);
    printf("%.1f\n", ns / (double)calls);
    return acc == (int)calls ? 0 : 1;
  }
  if (strcmp(argv[1], "writes") == 0) {
    if (wait_for_go() != 0) return 1;
    long calls = atol(argv[2]);
    int fd = open("/dev/null", O_WRONLY);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (long i = 0; i < calls; i++) {
      if (write(fd, "x", 1) != 1) return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double ns = (double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec);
    printf("%.1f\n", ns / (double)calls);
    return 0;
  }
  return 2;
}
