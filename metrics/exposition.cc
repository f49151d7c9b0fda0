#include "metrics/exposition.h"

#include <charconv>
#include <cmath>
#include <vector>

#include "metrics/naming.h"

namespace l7tap::metrics {
namespace {

void appendNumber(std::string& out, double v, bool om_canonical) {
  if (std::isnan(v)) {
    out += "NaN";
    return;
  }
  if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
    return;
  }
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  std::string_view s(buf, static_cast<size_t>(end - buf));
  out += s;
  // OpenMetrics compares `le` values as strings in canonical form ("1.0").
  if (om_canonical && s.find_first_of(".eE") == std::string_view::npos) out += ".0";
}

void appendInteger(std::string& out, uint64_t v) {
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  out.append(buf, end);
}

// Length of the valid UTF-8 sequence at s[i], or 0.
size_t utf8Length(std::string_view s, size_t i) {
  auto b = static_cast<unsigned char>(s[i]);
  size_t n = b < 0x80 ? 1 : (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xe ? 3 : (b >> 3) == 0x1e ? 4 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return 0;
  }
  if (n == 2 && b < 0xc2) return 0;  // overlong
  return n;
}

void appendEscaped(std::string& out, std::string_view s, bool escape_quote) {
  for (size_t i = 0; i < s.size();) {
    char c = s[i];
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '"' && escape_quote) {
      out += "\\\"";
    } else if (size_t n = utf8Length(s, i); n > 1) {
      out.append(s.data() + i, n);
      i += n;
      continue;
    } else if (n == 1) {
      out += c;
    } else {
      out += "\xef\xbf\xbd";
    }
    ++i;
  }
}

// What a metric's series share, computed once per scrape.
struct FamilyText {
  std::string family;
  std::vector<std::string> label_names;  // Prometheus names
  std::vector<std::string> le;           // each bucket's `le="..."`, +Inf last
};

// `a="x",b="y"` (no braces): built once per series, reused by its lines.
void appendLabelBody(std::string& out, const FamilyText& f, const Series& s, bool overflow) {
  if (overflow) {
    out += prometheusLabelName(kOverflowLabelName);
    out += "=\"";
    out += kOverflowLabelValue;
    out += '"';
    return;
  }
  std::vector<std::string_view> values = s.labelValues();
  for (size_t i = 0; i < values.size(); ++i) {
    if (i > 0) out += ',';
    out += f.label_names[i];
    out += "=\"";
    appendEscaped(out, values[i], true);
    out += '"';
  }
}

// `name{body} ` or `name ` when there are no labels.
void appendName(std::string& out, const FamilyText& f, std::string_view suffix,
                std::string_view body) {
  out += f.family;
  out += suffix;
  if (!body.empty()) {
    out += '{';
    out += body;
    out += '}';
  }
  out += ' ';
}

void renderSeries(std::string& out, const Metric& m, const FamilyText& f, const Series& s,
                  bool overflow, std::string& body) {
  body.clear();
  appendLabelBody(body, f, s, overflow);
  switch (m.kind()) {
    case MetricKind::kCounter:
      appendName(out, f, "_total", body);
      appendInteger(out, s.value.load(std::memory_order_relaxed));
      out += '\n';
      break;
    case MetricKind::kGauge:
      appendName(out, f, "", body);
      appendNumber(out, s.gauge(), false);
      out += '\n';
      break;
    case MetricKind::kHistogram: {
      uint64_t cumulative = 0;
      for (size_t b = 0; b < f.le.size(); ++b) {
        cumulative += s.buckets[b].load(std::memory_order_relaxed);
        out += f.family;
        out += "_bucket{";
        out += body;
        if (!body.empty()) out += ',';
        out += f.le[b];
        out += "} ";
        appendInteger(out, cumulative);
        out += '\n';
      }
      appendName(out, f, "_sum", body);
      appendNumber(out, s.sum(), false);
      out += '\n';
      appendName(out, f, "_count", body);
      appendInteger(out, cumulative);
      out += '\n';
      break;
    }
  }
}

std::string_view typeName(MetricKind kind) {
  switch (kind) {
    case MetricKind::kCounter:
      return "counter";
    case MetricKind::kGauge:
      return "gauge";
    case MetricKind::kHistogram:
      return "histogram";
  }
  return "untyped";
}

}  // namespace

ExpositionFormat negotiateFormat(std::string_view accept_header) {
  return accept_header.find("application/openmetrics-text") != std::string_view::npos
             ? ExpositionFormat::kOpenMetrics
             : ExpositionFormat::kPrometheusText;
}

std::string_view contentType(ExpositionFormat format) {
  return format == ExpositionFormat::kOpenMetrics
             ? "application/openmetrics-text; version=1.0.0; charset=utf-8"
             : "text/plain; version=0.0.4; charset=utf-8";
}

std::string render(const MetricsRegistry& registry, ExpositionFormat format) {
  bool om = format == ExpositionFormat::kOpenMetrics;
  std::string out;
  registry.forEach([&](const Metric& m) {
    std::string family = prometheusFamilyName(m.spec(), m.kind());
    // 0.0.4 names a counter's family by its sample name, OpenMetrics without
    // the `_total` its samples carry.
    std::string meta_name = family;
    if (!om && m.kind() == MetricKind::kCounter) meta_name += "_total";
    out += "# HELP ";
    out += meta_name;
    out += ' ';
    // 0.0.4 escapes backslash and newline in HELP; OpenMetrics quotes too.
    appendEscaped(out, m.spec().help, om);
    out += "\n# TYPE ";
    out += meta_name;
    out += ' ';
    out += typeName(m.kind());
    out += '\n';
    std::string unit = prometheusUnit(m.spec().unit, m.kind());
    if (om && !unit.empty() && family.ends_with("_" + unit)) {
      out += "# UNIT ";
      out += family;
      out += ' ';
      out += unit;
      out += '\n';
    }
    FamilyText f{family, {}, {}};
    for (const std::string& name : m.spec().label_names) {
      f.label_names.push_back(prometheusLabelName(name));
    }
    if (m.kind() == MetricKind::kHistogram) {
      const std::vector<double>& bounds = m.spec().buckets;
      for (size_t b = 0; b <= bounds.size(); ++b) {
        std::string le = "le=\"";
        appendNumber(le, b < bounds.size() ? bounds[b] : INFINITY, om);
        le += '"';
        f.le.push_back(std::move(le));
      }
    }
    std::string body;
    size_t n = m.seriesCount();
    for (size_t i = 0; i < n; ++i) renderSeries(out, m, f, m.series(i), false, body);
    if (const Series* s = m.overflowSeries()) renderSeries(out, m, f, *s, true, body);
  });
  if (om) out += "# EOF\n";
  return out;
}

}  // namespace l7tap::metrics
