#include "apptrace/trace_config.h"

#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>

#include "apptrace/function_targets.h"

namespace l7tap {
namespace {

// yaml-cpp's marks are 0-based, and -1 where a node has no position.
size_t lineOf(const YAML::Node& node, size_t fallback) {
  const YAML::Mark mark = node.Mark();
  return mark.is_null() ? fallback : static_cast<size_t>(mark.line) + 1;
}

bool fail(std::string& error, const std::string& name, size_t line, const std::string& message) {
  error = (line ? name + ":" + std::to_string(line) + ": " : name + ": ") + message;
  return false;
}

std::string kindOf(const YAML::Node& node) {
  return node.IsSequence() ? "a list" : node.IsMap() ? "a map" : "nothing";
}

// A list of strings (a single string is taken as a list of one).
bool readList(const YAML::Node& value, const std::string& key, const std::string& name, size_t line,
              std::vector<std::string>& out, std::string& error) {
  if (value.IsScalar()) {
    out.push_back(value.Scalar());
  } else if (value.IsSequence()) {
    if (value.size() > TraceConfigLimits::kMaxPatterns) {
      return fail(error, name, line,
                  key + ": more than " + std::to_string(TraceConfigLimits::kMaxPatterns));
    }
    for (auto it = value.begin(); it != value.end(); ++it) {
      const YAML::Node item = *it;
      if (!item.IsScalar()) {
        return fail(error, name, lineOf(item, line),
                    key + ": a list of strings, not of " +
                        (item.IsSequence() ? "lists"
                         : item.IsMap()    ? "maps"
                                           : "empty values"));
      }
      out.push_back(item.Scalar());
    }
  } else {
    return fail(error, name, line, key + ": a string or a list of strings, not " + kindOf(value));
  }
  for (const std::string& v : out) {
    if (v.empty()) return fail(error, name, line, key + ": an empty value");
    if (v.size() > TraceConfigLimits::kMaxValueBytes) {
      return fail(error, name, line,
                  key + ": a value longer than " +
                      std::to_string(TraceConfigLimits::kMaxValueBytes) + " bytes");
    }
  }
  return true;
}

bool readEntry(const YAML::Node& node, const std::string& name, size_t line,
               TraceConfig::Entry& entry, std::string& error) {
  if (!node.IsMap()) {
    return fail(error, name, line,
                "traces: each entry is a map (executable, functions, usdt), not " +
                    (node.IsScalar() ? std::string("a string") : kindOf(node)));
  }
  entry.line = line;
  bool seen_executable = false, seen_functions = false, seen_usdt = false;
  for (auto it = node.begin(); it != node.end(); ++it) {
    const YAML::Node key = it->first;
    const YAML::Node value = it->second;
    const size_t key_line = lineOf(key, line);
    if (!key.IsScalar()) return fail(error, name, key_line, "traces: a key is a name");
    const std::string k = key.Scalar();
    bool* seen = k == "executable"  ? &seen_executable
                 : k == "functions" ? &seen_functions
                 : k == "usdt"      ? &seen_usdt
                                    : nullptr;
    if (seen == nullptr) {
      return fail(error, name, key_line,
                  k + ": unknown key (an entry has executable, functions, usdt)");
    }
    if (*seen) return fail(error, name, key_line, k + ": set twice");
    *seen = true;
    if (k == "executable") {
      if (!value.IsScalar() || value.Scalar().empty()) {
        return fail(error, name, key_line, "executable: a name or an absolute path");
      }
      entry.executable = value.Scalar();
      if (entry.executable.size() > TraceConfigLimits::kMaxValueBytes) {
        return fail(error, name, key_line, "executable: longer than the longest path");
      }
      if (entry.executable.front() != '/' && entry.executable.find('/') != std::string::npos) {
        return fail(
            error, name, key_line,
            "executable: '" + entry.executable + "' is neither a basename nor an absolute path");
      }
    } else if (!readList(value, k, name, key_line, k == "usdt" ? entry.usdt : entry.functions,
                         error)) {
      return false;
    }
    if (k == "usdt") {
      for (const std::string& spec : entry.usdt) {
        std::string provider, start, end, why;
        if (!parseUsdtSpec(spec, provider, start, end, why)) {
          return fail(error, name, key_line, "usdt: " + why);
        }
      }
    }
  }
  if (!seen_executable) return fail(error, name, line, "traces: an entry without executable");
  if (entry.functions.empty() && entry.usdt.empty()) {
    return fail(error, name, line,
                "traces: " + entry.executable + ": nothing to trace (no functions, no usdt)");
  }
  if (entry.functions.size() + entry.usdt.size() > TraceConfigLimits::kMaxPatterns) {
    return fail(error, name, line,
                "traces: " + entry.executable + ": more than " +
                    std::to_string(TraceConfigLimits::kMaxPatterns) + " functions and probes");
  }
  return true;
}

bool readTraceConfig(const YAML::Node& root, const std::string& name, TraceConfig& out,
                     std::string& error) {
  if (!root || root.IsNull()) return fail(error, name, 0, "empty: nothing to trace");
  if (!root.IsMap()) return fail(error, name, lineOf(root, 0), "a map with one key, traces");
  YAML::Node traces;
  size_t traces_line = 0;
  for (auto it = root.begin(); it != root.end(); ++it) {
    const size_t line = lineOf(it->first, 0);
    if (!it->first.IsScalar() || it->first.Scalar() != "traces") {
      return fail(error, name, line,
                  (it->first.IsScalar() ? it->first.Scalar() : std::string("a key")) +
                      ": unknown key (the file has one key, traces)");
    }
    if (traces_line) return fail(error, name, line, "traces: set twice");
    traces = it->second;
    traces_line = line;
  }
  if (!traces.IsSequence() || traces.size() == 0) {
    return fail(error, name, traces_line,
                "traces: a list of entries (executable, functions, usdt)");
  }
  if (traces.size() > TraceConfigLimits::kMaxEntries) {
    return fail(error, name, traces_line,
                "traces: more than " + std::to_string(TraceConfigLimits::kMaxEntries) + " entries");
  }
  for (auto it = traces.begin(); it != traces.end(); ++it) {
    const YAML::Node node = *it;
    TraceConfig::Entry entry;
    if (!readEntry(node, name, lineOf(node, traces_line), entry, error)) return false;
    out.traces.push_back(std::move(entry));
  }
  return true;
}

}  // namespace

bool parseTraceConfig(std::string_view text, const std::string& name, TraceConfig& out,
                      std::string& error) {
  out = TraceConfig{};
  if (text.size() > TraceConfigLimits::kMaxFileBytes) {
    return fail(error, name, 0,
                "larger than " + std::to_string(TraceConfigLimits::kMaxFileBytes) + " bytes");
  }
  // yaml-cpp reports every problem by throwing; none leaves this function.
  try {
    if (readTraceConfig(YAML::Load(std::string(text)), name, out, error)) return true;
  } catch (const YAML::Exception& e) {
    fail(error, name, e.mark.is_null() ? 0 : static_cast<size_t>(e.mark.line) + 1,
         "not valid YAML: " + e.msg);
  } catch (const std::exception& e) {
    fail(error, name, 0, std::string("not valid YAML: ") + e.what());
  }
  // Keys, values and yaml-cpp's messages are echoed: a quoted key may hold
  // a newline, the name of the file too.
  error = printableText(error);
  out = TraceConfig{};
  return false;
}

bool loadTraceConfig(const std::string& path, TraceConfig& out, std::string& error) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return fail(error, path, 0, std::strerror(errno));
  std::string text;
  char buf[16384];
  size_t n;
  // One byte past the limit is enough to say it is too large.
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0 &&
         text.size() <= TraceConfigLimits::kMaxFileBytes) {
    text.append(buf, n);
  }
  const bool read_error = std::ferror(f) != 0;
  const int saved = errno;
  std::fclose(f);
  if (read_error) return fail(error, path, 0, std::strerror(saved));
  return parseTraceConfig(text, path, out, error);
}

bool traceEntryMatches(const TraceConfig::Entry& entry, std::string_view exe_path) {
  // The link reads "PATH (deleted)" once the file was replaced (an upgrade
  // under a running process): still that program.
  constexpr std::string_view kDeleted = " (deleted)";
  if (exe_path.size() > kDeleted.size() && exe_path.ends_with(kDeleted)) {
    exe_path.remove_suffix(kDeleted.size());
  }
  if (!entry.executable.empty() && entry.executable.front() == '/') {
    return exe_path == entry.executable;
  }
  const size_t slash = exe_path.rfind('/');
  return (slash == std::string_view::npos ? exe_path : exe_path.substr(slash + 1)) ==
         entry.executable;
}

}  // namespace l7tap
