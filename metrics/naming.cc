#include "metrics/naming.h"

#include <array>

namespace l7tap::metrics {

std::string prometheusLabelName(std::string_view otel_name) {
  std::string out;
  out.reserve(otel_name.size() + 1);
  for (char c : otel_name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (ok) {
      if (out.empty() && c >= '0' && c <= '9') out.push_back('_');
      out.push_back(c);
    } else if (out.empty() || out.back() != '_') {
      out.push_back('_');
    }
  }
  if (out.empty()) out.push_back('_');
  return out;
}

std::string prometheusUnit(std::string_view ucum, MetricKind kind) {
  if (ucum.empty() || ucum.front() == '{') return "";
  if (ucum == "s") return "seconds";
  if (ucum == "ms") return "milliseconds";
  if (ucum == "us") return "microseconds";
  if (ucum == "By") return "bytes";
  if (ucum == "KiBy") return "kibibytes";
  if (ucum == "MiBy") return "mebibytes";
  if (ucum == "1") return kind == MetricKind::kGauge ? "ratio" : "";
  std::string out = prometheusLabelName(ucum);
  while (!out.empty() && out.front() == '_') out.erase(0, 1);
  while (!out.empty() && out.back() == '_') out.pop_back();
  return out;
}

std::string prometheusFamilyName(const MetricSpec& spec, MetricKind kind) {
  std::string name = prometheusLabelName(spec.name);
  // A counter named `..._total` in OTel would otherwise end in `_total_total`.
  if (kind == MetricKind::kCounter && name.ends_with("_total")) name.resize(name.size() - 6);
  std::string unit = prometheusUnit(spec.unit, kind);
  if (!unit.empty() && !name.ends_with("_" + unit)) name += "_" + unit;
  return name;
}

}  // namespace l7tap::metrics
