#include "apptrace/histograms.h"

#include <algorithm>
#include <array>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <span>
#include <string_view>

#include "metrics/registry.h"
#include "parsers/common/record.h"

namespace l7tap {

namespace {

constexpr int kBuckets = L7TAP_APP_HIST_BUCKETS;
// The exported bounds are 2^kFirstBoundLog2 .. 2^kLastBoundLog2 ns.
constexpr int kFirstBoundLog2 = 10;
constexpr int kLastBoundLog2 = 35;
constexpr size_t kBounds = kLastBoundLog2 - kFirstBoundLog2 + 1;
constexpr size_t kBarWidth = 40;

// Bucket i counts [2^i, 2^(i+1)) ns; the last has no upper bound, and is
// given the next power of two so that a quantile in it is still a number.
uint64_t upperBoundNs(int bucket) { return uint64_t{1} << (bucket + 1); }

uint64_t since(uint64_t now, uint64_t before) { return now >= before ? now - before : 0; }

// Three significant digits in the largest unit that keeps the value >= 1:
// "512 ns", "1.02 us", "262 us", "2.10 ms", "34.4 s".
void appendDuration(std::string& out, double ns) {
  static constexpr const char* kUnits[] = {"ns", "us", "ms", "s"};
  size_t unit = 0;
  while (ns >= 1000 && unit + 1 < std::size(kUnits)) {
    ns /= 1000;
    ++unit;
  }
  char buf[32];
  const char* format = unit == 0 || ns >= 100 ? "%.0f %s" : ns >= 10 ? "%.1f %s" : "%.2f %s";
  out.append(buf, std::snprintf(buf, sizeof buf, format, ns, kUnits[unit]));
}

// "  [131 us, 262 us)": where bucket `i` is drawn.
std::string bucketLabel(int i) {
  std::string s = "  [";
  appendDuration(s, i == 0 ? 0.0 : static_cast<double>(uint64_t{1} << i));
  s.append(", ");
  if (i == kBuckets - 1) {
    s.append("+inf)");
  } else {
    appendDuration(s, static_cast<double>(upperBoundNs(i)));
    s.push_back(')');
  }
  return s;
}

// The busiest buckets of `d`, at most kMaxTableBuckets, in order of duration.
std::vector<int> busiestBuckets(const FunctionStats& d) {
  std::array<int, kBuckets> order;
  for (int i = 0; i < kBuckets; ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](int a, int b) { return d.buckets[a] > d.buckets[b]; });
  std::vector<int> shown;
  for (int i : order) {
    if (shown.size() == HistogramLimits::kMaxTableBuckets || d.buckets[i] == 0) break;
    shown.push_back(i);
  }
  std::sort(shown.begin(), shown.end());
  return shown;
}

std::string durationText(double ns, const char* prefix = "") {
  std::string s = prefix;
  appendDuration(s, ns);
  return s;
}

// `text` right-aligned in `width` columns (left-aligned with `left`).
void appendCell(std::string& out, std::string_view text, size_t width, bool left = false) {
  const size_t pad = text.size() < width ? width - text.size() : 0;
  if (!left) out.append(pad, ' ');
  out.append(text);
  if (left) out.append(pad, ' ');
}

struct Column {
  const char* title;
  size_t width;
};
constexpr Column kColumns[] = {{"calls", 10}, {"calls/s", 10}, {"p50", 10},
                               {"p90", 10},   {"p99", 10},     {"max", 10},
                               {"mean", 10},  {"sent", 11},    {"received", 11}};

}  // namespace

uint64_t FunctionInterval::quantileNs(double q) const {
  uint64_t total = 0;
  for (uint64_t n : delta.buckets) total += n;
  if (total == 0) return 0;
  q = std::clamp(q, 0.0, 1.0);
  const uint64_t rank = std::max<uint64_t>(1, static_cast<uint64_t>(std::ceil(q * total)));
  uint64_t seen = 0;
  for (int i = 0; i < kBuckets; ++i) {
    seen += delta.buckets[i];
    if (seen >= rank) return upperBoundNs(i);
  }
  return upperBoundNs(kBuckets - 1);
}

std::vector<FunctionInterval> intervalOf(const std::vector<std::string>& functions,
                                         const std::vector<FunctionStats>& before,
                                         const std::vector<FunctionStats>& now) {
  std::vector<FunctionInterval> rows(now.size());
  for (size_t i = 0; i < now.size(); ++i) {
    FunctionInterval& row = rows[i];
    row.function = i < functions.size() ? functions[i] : "#" + std::to_string(i);
    static const FunctionStats kZero{};
    const FunctionStats& b =
        i < before.size() && before[i].calls <= now[i].calls ? before[i] : kZero;
    const FunctionStats& n = now[i];
    row.delta.calls = since(n.calls, b.calls);
    row.delta.sum_ns = since(n.sum_ns, b.sum_ns);
    row.delta.bytes_sent = since(n.bytes_sent, b.bytes_sent);
    row.delta.bytes_received = since(n.bytes_received, b.bytes_received);
    for (int k = 0; k < kBuckets; ++k) row.delta.buckets[k] = since(n.buckets[k], b.buckets[k]);
  }
  return rows;
}

std::string formatHistogramTable(const std::vector<FunctionInterval>& rows, uint64_t interval_ns) {
  // Names are the traced binary's symbols: untrusted, made printable first
  // so that the widths are those of what is shown.
  // The first column holds them and the buckets' labels.
  std::vector<std::string> names(rows.size());
  std::vector<std::vector<int>> shown(rows.size());
  size_t name_width = std::string_view("function").size();
  for (size_t i = 0; i < rows.size(); ++i) {
    size_t budget = HistogramLimits::kMaxTableName;
    appendPrintableBounded(names[i], rows[i].function, budget);
    name_width = std::max(name_width, names[i].size());
    shown[i] = busiestBuckets(rows[i].delta);
    for (int b : shown[i]) name_width = std::max(name_width, bucketLabel(b).size());
  }
  std::string out;
  appendCell(out, "function", name_width, true);
  for (const Column& c : kColumns) {
    if (interval_ns == 0 && std::string_view(c.title) == "calls/s") continue;
    appendCell(out, c.title, c.width);
  }
  out.push_back('\n');

  for (size_t r = 0; r < rows.size(); ++r) {
    const FunctionInterval& row = rows[r];
    const FunctionStats& d = row.delta;
    appendCell(out, names[r], name_width, true);
    char buf[48];
    appendCell(out, {buf, static_cast<size_t>(std::snprintf(buf, sizeof buf, "%" PRIu64, d.calls))},
               kColumns[0].width);
    if (interval_ns) {
      const double rate = static_cast<double>(d.calls) * 1e9 / static_cast<double>(interval_ns);
      appendCell(out, {buf, static_cast<size_t>(std::snprintf(buf, sizeof buf, "%.1f", rate))},
                 kColumns[1].width);
    }
    int top = -1;
    for (int i = 0; i < kBuckets; ++i) {
      if (d.buckets[i]) top = i;
    }
    if (d.calls == 0 || top < 0) {
      for (size_t c = 2; c < std::size(kColumns); ++c) appendCell(out, "-", kColumns[c].width);
      out.push_back('\n');
      continue;
    }
    // Upper bounds of buckets: "<" says the value is below it.
    appendCell(out, durationText(static_cast<double>(row.quantileNs(0.50)), "<"),
               kColumns[2].width);
    appendCell(out, durationText(static_cast<double>(row.quantileNs(0.90)), "<"),
               kColumns[3].width);
    appendCell(out, durationText(static_cast<double>(row.quantileNs(0.99)), "<"),
               kColumns[4].width);
    appendCell(out, durationText(static_cast<double>(upperBoundNs(top)), "<"), kColumns[5].width);
    appendCell(out, durationText(static_cast<double>(d.sum_ns) / static_cast<double>(d.calls)),
               kColumns[6].width);
    std::string bytes;
    appendBytes(bytes, d.bytes_sent);
    appendCell(out, bytes, kColumns[7].width);
    bytes.clear();
    appendBytes(bytes, d.bytes_received);
    appendCell(out, bytes, kColumns[8].width);
    out.push_back('\n');

    // The busiest buckets, drawn in order of duration.
    uint64_t peak = 0;
    for (int i : shown[r]) peak = std::max(peak, d.buckets[i]);
    for (int i : shown[r]) {
      appendCell(out, bucketLabel(i), name_width, true);
      appendCell(
          out, {buf, static_cast<size_t>(std::snprintf(buf, sizeof buf, "%" PRIu64, d.buckets[i]))},
          kColumns[0].width);
      // At least one mark for a non-empty bucket, however small.
      const size_t marks =
          std::max<size_t>(1, static_cast<size_t>(static_cast<double>(d.buckets[i]) * kBarWidth /
                                                  static_cast<double>(peak)));
      out.append(" |");
      out.append(marks, '#');
      out.append(kBarWidth - marks, ' ');
      out.append("|\n");
    }
  }
  return out;
}

const std::vector<double>& functionDurationBounds() {
  static const std::vector<double> bounds = [] {
    std::vector<double> b;
    for (int e = kFirstBoundLog2; e <= kLastBoundLog2; ++e) {
      b.push_back(static_cast<double>(uint64_t{1} << e) / 1e9);
    }
    return b;
  }();
  return bounds;
}

HistogramExporter::HistogramExporter(metrics::MetricsRegistry& registry)
    : calls_(registry.counter({"l7tap.app.function.calls",
                               "{call}",
                               "Returns of the traced functions (l7tap trace, attach "
                               "--trace-config), counted in the kernel.",
                               {"code.function.name"},
                               {}})),
      duration_(registry.histogram({"l7tap.app.function.duration",
                                    "s",
                                    "Durations of the traced functions' calls, from entry to "
                                    "return, in log2 buckets counted in the kernel.",
                                    {"code.function.name"},
                                    functionDurationBounds()})),
      sent_(registry.counter({"l7tap.app.function.sent",
                              "By",
                              "TCP bytes the traced functions sent (their thread or goroutine, "
                              "while they ran).",
                              {"code.function.name"},
                              {}})),
      received_(registry.counter({"l7tap.app.function.received",
                                  "By",
                                  "TCP bytes the traced functions received (their thread or "
                                  "goroutine, while they ran).",
                                  {"code.function.name"},
                                  {}})) {}

void HistogramExporter::update(const std::vector<std::string>& functions,
                               const std::vector<FunctionStats>& totals) {
  static_assert(kLastBoundLog2 < kBuckets, "the last bound is a kernel bucket's");
  for (size_t i = 0; i < totals.size(); ++i) {
    const std::string unnamed = i < functions.size() ? std::string() : "#" + std::to_string(i);
    const std::string_view name = i < functions.size() ? std::string_view(functions[i]) : unnamed;
    const std::array<std::string_view, 1> labels{name};
    const FunctionStats& t = totals[i];
    // Kernel bucket i ends at 2^(i+1) ns: below the first bound, in the
    // first; past the last, in +Inf (the last count).
    std::array<uint64_t, kBounds + 1> counts{};
    for (int b = 0; b < kBuckets; ++b) {
      const int end_log2 = b + 1;
      const size_t slot = end_log2 <= kFirstBoundLog2 ? 0
                          : end_log2 <= kLastBoundLog2
                              ? static_cast<size_t>(end_log2 - kFirstBoundLog2)
                              : kBounds;
      counts[slot] += t.buckets[b];
    }
    calls_.setTotal(labels, t.calls);
    duration_.setHistogram(labels, counts, static_cast<double>(t.sum_ns) / 1e9);
    sent_.setTotal(labels, t.bytes_sent);
    received_.setTotal(labels, t.bytes_received);
  }
}

}  // namespace l7tap
