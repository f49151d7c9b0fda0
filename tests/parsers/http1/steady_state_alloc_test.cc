// Proves the steady state of a keep-alive connection allocates nothing: the
// pending FIFO, record strings and llhttp state are all reused.
#include <gtest/gtest.h>

#include <cstdlib>
#include <new>
#include <string>

#include "parsers/http1/http1_parser.h"

namespace {
thread_local uint64_t g_allocations = 0;
}  // namespace

// Counting replacements of the global allocation functions (this test binary only).
void* operator new(std::size_t size) {
  ++g_allocations;
  if (void* p = std::malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace l7tap {
namespace {

class CountingSink : public ExchangeSink {
 public:
  void onExchange(const Record& record) override {
    ++count;
    body_bytes += static_cast<const HttpRecord&>(record).response_body_bytes;
  }
  uint64_t count = 0;
  uint64_t body_bytes = 0;
};

std::span<const uint8_t> bytesOf(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

TEST(Http1SteadyState, KeepAliveExchangesDoNotAllocate) {
  CountingSink sink;
  Http1Parser parser(sink);
  const std::string requests =
      "GET /api/items?page=2&sort=desc HTTP/1.1\r\nHost: shop.example.com\r\n"
      "User-Agent: Mozilla/5.0 (X11; Linux x86_64) a long enough agent string\r\n\r\n"
      "POST /api/cart HTTP/1.1\r\nHost: shop.example.com\r\n"
      "Content-Type: application/json; charset=utf-8\r\nContent-Length: 11\r\n\r\n{\"id\":1234}";
  const std::string responses =
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 4\r\n\r\n[{}]"
      "HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n";
  uint64_t ts = 0;
  auto round = [&] {
    parser.onData(Role::kClient, bytesOf(requests), ++ts);
    parser.onData(Role::kServer, bytesOf(responses).first(30), ++ts);
    parser.onData(Role::kServer, bytesOf(responses).subspan(30), ++ts);
  };
  for (int i = 0; i < 3; ++i) round();  // slots and strings reach their size
  const uint64_t start = g_allocations;
  ASSERT_GT(start, 0u);  // the counting hook is live
  for (int i = 0; i < 100; ++i) round();
  EXPECT_EQ(g_allocations - start, 0u);
  EXPECT_EQ(sink.count, 2u * 103);
  EXPECT_EQ(sink.body_bytes, 6u * 103);
}

}  // namespace
}  // namespace l7tap
