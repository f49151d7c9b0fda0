// The native side of the function-latency tests (tests/e2e/test_apptrace.py):
// a tiny HTTP/1.1 server, one thread per connection, keep-alive.
//
//   c_server ADDR PORT
//
// GET /user?sleep_ms=S&bytes=N: handle_request() sleeps S ms, then writes
// the whole response (headers and a body of exactly N bytes, a repeating
// alphabet) before it returns. Anything else: 404. handle_request is never
// inlined (its uretprobe must fire) and runs between the USDT probes
// l7tap_test:request__start and l7tap_test:request__done (<sys/sdt.h>), so
// that both ways of timing it see the same call. Prints "listening" once
// bound; on SIGTERM/SIGINT, "requests N" (the requests handled) and exits 0.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sdt.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { kMaxRequest = 8192, kMaxBody = 1 << 20 };

static atomic_long requests_done;

static int write_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static long query_param(const char* target, const char* name) {
  const char* q = strchr(target, '?');
  size_t len = strlen(name);
  while (q != NULL) {
    q++;
    if (strncmp(q, name, len) == 0 && q[len] == '=') return strtol(q + len + 1, NULL, 10);
    q = strchr(q, '&');
  }
  return 0;
}

// The traced function: its time is the sleep plus the write of the response.
__attribute__((noinline)) int handle_request(int fd, const char* target) {
  char head[256];
  int head_len;
  if (strncmp(target, "/user", 5) != 0 || (target[5] != '\0' && target[5] != '?')) {
    static const char kNotFound[] =
        "HTTP/1.1 404 Not Found\r\nContent-Length: 5\r\nContent-Type: text/plain\r\n\r\nnone\n";
    return write_all(fd, kNotFound, sizeof kNotFound - 1);
  }
  long sleep_ms = query_param(target, "sleep_ms");
  long n = query_param(target, "bytes");
  if (n < 0 || n > kMaxBody) n = 0;
  if (sleep_ms > 0) {
    struct timespec ts = {sleep_ms / 1000, (sleep_ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
  }
  head_len = snprintf(head, sizeof head,
                      "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                      "Content-Length: %ld\r\n\r\n",
                      n);
  char* body = malloc((size_t)n + 1);
  if (body == NULL) return -1;
  for (long i = 0; i < n; i++) body[i] = (char)('a' + i % 26);
  int rc = write_all(fd, head, (size_t)head_len);
  if (rc == 0) rc = write_all(fd, body, (size_t)n);
  free(body);
  atomic_fetch_add(&requests_done, 1);
  return rc;
}

static void* serve_connection(void* arg) {
  int fd = (int)(intptr_t)arg;
  char buf[kMaxRequest + 1];
  size_t have = 0;
  for (;;) {
    char* end = NULL;
    buf[have] = '\0';
    while ((end = strstr(buf, "\r\n\r\n")) == NULL) {
      if (have == kMaxRequest) goto done;  // a request line and headers this large: not ours
      ssize_t r = read(fd, buf + have, kMaxRequest - have);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) goto done;
      have += (size_t)r;
      buf[have] = '\0';
    }
    // "GET TARGET HTTP/1.1": the target, NUL-terminated in place.
    char* target = strchr(buf, ' ');
    char* target_end = target ? strchr(target + 1, ' ') : NULL;
    if (target == NULL || target_end == NULL || target_end > end) goto done;
    *target_end = '\0';
    int id = fd;
    DTRACE_PROBE1(l7tap_test, request__start, id);
    int rc = handle_request(fd, target + 1);
    DTRACE_PROBE2(l7tap_test, request__done, id, rc);
    if (rc != 0) goto done;
    // GET only: no bodies. Keep what follows (a pipelined request).
    size_t used = (size_t)(end + 4 - buf);
    memmove(buf, buf + used, have - used);
    have -= used;
  }
done:
  close(fd);
  return NULL;
}

static void* accept_loop(void* arg) {
  int ls = (int)(intptr_t)arg;
  int one = 1;
  for (;;) {
    int fd = accept(ls, NULL, NULL);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      perror("c_server: accept");
      exit(1);
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    pthread_t t;
    if (pthread_create(&t, NULL, serve_connection, (void*)(intptr_t)fd) != 0) {
      close(fd);
      continue;
    }
    pthread_detach(t);
  }
  return NULL;
}

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: c_server ADDR PORT\n");
    return 2;
  }
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2]))};
  if (inet_pton(AF_INET, argv[1], &sa.sin_addr) != 1) {
    fprintf(stderr, "c_server: bad address %s\n", argv[1]);
    return 2;
  }
  int one = 1;
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  if (ls < 0 || setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      bind(ls, (struct sockaddr*)&sa, sizeof sa) != 0 || listen(ls, 128) != 0) {
    perror("c_server: listen");
    return 1;
  }
  // The signals are taken by sigwait in this thread, not by a handler:
  // every thread started from here on blocks them.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, NULL);
  signal(SIGPIPE, SIG_IGN);
  pthread_t acceptor;
  if (pthread_create(&acceptor, NULL, accept_loop, (void*)(intptr_t)ls) != 0) {
    perror("c_server: thread");
    return 1;
  }
  printf("listening on %s:%s pid %d\n", argv[1], argv[2], getpid());
  fflush(stdout);
  int sig;
  sigwait(&stop, &sig);
  printf("requests %ld\n", atomic_load(&requests_done));
  return 0;
}
