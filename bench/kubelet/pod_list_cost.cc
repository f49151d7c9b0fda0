// What the pod names cost: a generated pod list in the kubelet's shape
// (each pod as large as a real one, managed fields and all), parsed and
// indexed by the pod cache. Prints the list's size, the parse and refresh
// times (median of runs) and the memory the cache keeps.
//
//   build/bench/l7tap_pod_list_cost [PODS] [--write FILE]
#include <malloc.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "bench/kubelet/pod_json.h"
#include "kubelet/pod_cache.h"
#include "kubelet/pod_list.h"

namespace {

using namespace l7tap;

class Canned : public PodListSource {
 public:
  bool fetch(std::string& body, std::string&) override {
    body = text;
    return true;
  }
  std::string text;
};

long maxRssKb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;
}

template <typename F>
double medianMs(int runs, F&& f) {
  std::vector<double> ms;
  for (int r = 0; r < runs; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int pods = 1000;
  const char* write = nullptr;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--write") == 0 && i + 1 < argc) {
      write = argv[++i];
    } else {
      pods = std::atoi(argv[i]);
    }
  }
  Canned source;
  source.text = R"({"kind":"PodList","apiVersion":"v1","metadata":{},"items":[)";
  for (int i = 0; i < pods; ++i) source.text += (i ? "," : "") + bench::podJson(i);
  source.text += "]}";
  if (write != nullptr) std::ofstream(write) << source.text;

  KubeletLimits limits;
  PodList list;
  std::string error;
  const long rss_before = maxRssKb();
  const size_t heap_before = mallinfo2().uordblks;
  if (!parsePodList(source.text, limits, list, error)) {
    std::fprintf(stderr, "parse failed: %s\n", error.c_str());
    return 1;
  }
  const size_t heap_list = mallinfo2().uordblks - heap_before;
  const long rss_parse = maxRssKb() - rss_before;
  const double parse_ms = medianMs(11, [&] { parsePodList(source.text, limits, list, error); });
  list = PodList{};

  const size_t heap_cache_before = mallinfo2().uordblks;
  PodCache cache(source, limits);
  cache.refresh(1);
  const size_t heap_cache = mallinfo2().uordblks - heap_cache_before;
  uint64_t t = 2;
  const double refresh_ms = medianMs(11, [&] { cache.refresh(t++); });
  PodAddress a;
  parsePodAddress("10.1.0.7", a);
  const double lookup_ms = medianMs(11, [&] {
    for (int k = 0; k < 1000; ++k) {
      if (!cache.byAddress(a)) std::abort();
    }
  });

  std::printf("pods                  %d (kept %u)\n", pods, cache.stats().pods);
  std::printf("list size             %.1f MB (%.1f KB per pod)\n", source.text.size() / 1e6,
              source.text.size() / 1e3 / pods);
  std::printf("parse                 %.1f ms (median of 11)\n", parse_ms);
  std::printf("refresh (parse+index) %.1f ms (median of 11)\n", refresh_ms);
  std::printf("lookup by address     %.0f ns\n", lookup_ms * 1e6 / 1000);
  std::printf("heap of a parsed list %.2f MB\n", heap_list / 1e6);
  std::printf("heap the cache keeps  %.2f MB\n", heap_cache / 1e6);
  std::printf("peak RSS growth in the first parse %.1f MB\n", rss_parse / 1e3);
  return 0;
}
