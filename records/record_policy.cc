#include "records/record_policy.h"

#include <typeinfo>

namespace l7tap {
namespace {

constexpr uint64_t kSampleScale = 1000000000;  // 10^kMaxSampleDecimals
static_assert(RecordPolicyLimits::kMaxSampleDecimals == 9);

bool allDigits(std::string_view s) {
  if (s.empty()) return false;
  for (const char c : s) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// Digits only, at most 19 of them (no overflow of uint64_t).
bool parseDigits(std::string_view s, uint64_t& out) {
  if (!allDigits(s) || s.size() > 19) return false;
  out = 0;
  for (const char c : s) out = out * 10 + static_cast<uint64_t>(c - '0');
  return true;
}

bool parseDuration(std::string_view s, uint64_t& ns) {
  static constexpr struct {
    std::string_view suffix;
    uint64_t ns;
  } kUnits[] = {{"ns", 1}, {"us", 1000}, {"ms", 1000000}, {"s", 1000000000}};
  for (const auto& unit : kUnits) {
    if (s.size() <= unit.suffix.size() || !s.ends_with(unit.suffix)) continue;
    const std::string_view number = s.substr(0, s.size() - unit.suffix.size());
    uint64_t v = 0;
    // "ms" also ends with "s": the number before a bare "s" must be digits.
    if (!parseDigits(number, v)) continue;
    if (v == 0 || v > RecordPolicyLimits::kMaxSlowNs / unit.ns) return false;
    ns = v * unit.ns;
    return true;
  }
  return false;
}

// 0 <= P <= 1 as a decimal: P * kSampleScale, exactly.
bool parseFraction(std::string_view s, uint64_t& scaled) {
  const size_t point = s.find('.');
  const std::string_view whole = s.substr(0, point);
  const std::string_view decimals =
      point == std::string_view::npos ? std::string_view() : s.substr(point + 1);
  if (whole != "0" && whole != "1") return false;
  if (point != std::string_view::npos &&
      (!allDigits(decimals) || decimals.size() > RecordPolicyLimits::kMaxSampleDecimals)) {
    return false;
  }
  uint64_t fraction = 0;
  for (size_t i = 0; i < RecordPolicyLimits::kMaxSampleDecimals; ++i) {
    fraction = fraction * 10 + (i < decimals.size() ? static_cast<uint64_t>(decimals[i] - '0') : 0);
  }
  scaled = (whole == "1" ? kSampleScale : 0) + fraction;
  return scaled <= kSampleScale;
}

uint64_t mix(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

std::string durationText(uint64_t ns) {
  static constexpr struct {
    const char* suffix;
    uint64_t ns;
  } kUnits[] = {{"s", 1000000000}, {"ms", 1000000}, {"us", 1000}};
  for (const auto& unit : kUnits) {
    if (ns % unit.ns == 0) return std::to_string(ns / unit.ns) + unit.suffix;
  }
  return std::to_string(ns) + "ns";
}

}  // namespace

bool parseRecordPolicy(std::string_view text, RecordPolicy& policy, std::string& error) {
  if (text.size() > RecordPolicyLimits::kMaxTextBytes) {
    error = "at most " + std::to_string(RecordPolicyLimits::kMaxTextBytes) + " bytes";
    return false;
  }
  if (text == "all") {
    policy = RecordPolicy{};
    return true;
  }
  RecordPolicy p;
  p.all = false;
  bool seen_errors = false, seen_slow = false, seen_sample = false;
  for (size_t pos = 0; pos <= text.size();) {
    const size_t comma = std::min(text.find(',', pos), text.size());
    const std::string_view rule = text.substr(pos, comma - pos);
    pos = comma + 1;
    const std::string shown(rule);
    if (rule == "errors") {
      if (seen_errors) {
        error = "'errors' given twice";
        return false;
      }
      seen_errors = p.errors = true;
    } else if (rule.starts_with("slow:")) {
      if (seen_slow) {
        error = "'slow' given twice";
        return false;
      }
      seen_slow = true;
      if (!parseDuration(rule.substr(5), p.slow_ns)) {
        error = "'" + shown + "': slow needs a duration, 1ns..86400s (250ms, 2s)";
        return false;
      }
    } else if (rule.starts_with("sample:")) {
      if (seen_sample) {
        error = "'sample' given twice";
        return false;
      }
      seen_sample = p.sample = true;
      uint64_t scaled = 0;
      if (!parseFraction(rule.substr(7), scaled)) {
        error = "'" + shown + "': sample needs a fraction 0..1 with at most 9 decimals (0.01)";
        return false;
      }
      p.sample_per_billion = scaled;
      p.sample_all = scaled == kSampleScale;
      p.sample_below = p.sample_all
                           ? 0
                           : static_cast<uint64_t>((static_cast<unsigned __int128>(scaled) << 64) /
                                                   kSampleScale);
    } else if (rule == "all") {
      error = "'all' cannot be combined with other rules";
      return false;
    } else {
      error = "'" + shown + "' is not all, errors, slow:DURATION or sample:P";
      return false;
    }
  }
  policy = p;
  return true;
}

std::string RecordPolicy::describe() const {
  if (all) return "all";
  std::string out;
  const auto add = [&out](const std::string& rule) { out += (out.empty() ? "" : ",") + rule; };
  if (errors) add("errors");
  if (slow_ns) add("slow:" + durationText(slow_ns));
  if (sample) {
    if (sample_all) {
      add("sample:1");
    } else {
      std::string digits = std::to_string(kSampleScale + sample_per_billion).substr(1);
      while (!digits.empty() && digits.back() == '0') digits.pop_back();
      add(digits.empty() ? "sample:0" : "sample:0." + digits);
    }
  }
  return out;
}

bool isErrorExchange(const ConnectionInfo& conn, const HttpRecord& record) {
  return record.status >= 500 || record.grpc_status > 0 ||
         (record.effectiveFlags(conn) & kErrorFlags) != 0;
}

uint64_t exchangeHash(const ConnectionInfo& conn, const HttpRecord& record) {
  // Pipelined HTTP/1 exchanges may share a request timestamp (one
  // segment); their responses' timestamps then tell them apart, mostly.
  // Each input times its own odd constant (independent multiplies, not a
  // chain of five mixes: the chain was a percent of the daemon's CPU per
  // exchange with sampling on), folded, then one full mix.
  const uint64_t a = conn.id * 0x9e3779b97f4a7c15ull ^ record.stream_id * 0xc2b2ae3d27d4eb4full;
  const uint64_t b = record.request_start_ns * 0xff51afd7ed558ccdull ^
                     record.response_start_ns * 0xc4ceb9fe1a85ec53ull ^
                     record.response_end_ns * 0xd6e8feb86659fd93ull;
  return mix(a ^ (b << 29 | b >> 35));
}

bool RecordPolicy::keeps(const ConnectionInfo& conn, const HttpRecord& record) const {
  if (keepsEverything()) return true;
  if (errors && isErrorExchange(conn, record)) return true;
  if (slow_ns && record.request_start_ns && record.response_end_ns >= record.request_start_ns &&
      record.response_end_ns - record.request_start_ns >= slow_ns) {
    return true;
  }
  return sample && exchangeHash(conn, record) < sample_below;
}

void RecordPolicySink::onRecord(const ConnectionInfo& conn, const Record& record) {
  const Record& inner = record.inner();
  if (typeid(inner) != typeid(HttpRecord)) {
    next_.onRecord(conn, record);
    return;
  }
  if (!policy_.keeps(conn, static_cast<const HttpRecord&>(inner))) {
    dropped_++;
    return;
  }
  kept_++;
  next_.onRecord(conn, record);
}

}  // namespace l7tap
