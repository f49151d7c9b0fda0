// Runs every fuzz target's entry point on its committed seeds
// (corpus/<target>/) and regression inputs (regressions/<target>/), without
// libFuzzer: in the regular and the ASan build, an input that once crashed,
// hung or tripped a sanitizer keeps passing.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#define L7TAP_FUZZ_ENTRY(name) extern "C" int l7tap_fuzz_##name(const uint8_t*, size_t);
L7TAP_FUZZ_ENTRIES
#undef L7TAP_FUZZ_ENTRY

namespace {

namespace fs = std::filesystem;
using Entry = int (*)(const uint8_t*, size_t);

// Every regular file under dir (none when it does not exist), sorted.
std::vector<fs::path> inputs(const fs::path& dir) {
  std::vector<fs::path> out;
  if (!fs::is_directory(dir)) return out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file() && e.path().filename() != "README.md") out.push_back(e.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

size_t replayAll(const std::string& target, Entry entry) {
  size_t n = 0;
  for (const char* kind : {"corpus", "regressions"}) {
    for (const fs::path& p : inputs(fs::path(L7TAP_FUZZ_DIR) / kind / target)) {
      std::ifstream f(p, std::ios::binary);
      const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(f)),
                                       std::istreambuf_iterator<char>());
      SCOPED_TRACE(p.string());
      EXPECT_EQ(entry(bytes.data(), bytes.size()), 0);
      ++n;
    }
  }
  // The empty input too: every target must take it.
  EXPECT_EQ(entry(nullptr, 0), 0);
  return n;
}

#define L7TAP_FUZZ_ENTRY(name)                                 \
  TEST(FuzzReplay, name) {                                     \
    const size_t n = replayAll(#name, &l7tap_fuzz_##name);     \
    EXPECT_GT(n, 0u) << "no committed seed for target " #name; \
  }
L7TAP_FUZZ_ENTRIES
#undef L7TAP_FUZZ_ENTRY

}  // namespace
