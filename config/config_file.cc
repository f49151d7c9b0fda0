#include "config/config_file.h"

#include <yaml-cpp/yaml.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>

namespace l7tap::config {
namespace {

// yaml-cpp's marks are 0-based, and -1 where a node has no position.
size_t lineOf(const YAML::Mark& mark) { return mark.is_null() ? 0 : mark.line + 1; }

std::string at(const std::string& name, size_t line) {
  return line ? name + ":" + std::to_string(line) + ": " : name + ": ";
}

bool fail(std::string& error, const std::string& name, size_t line, const std::string& message) {
  error = at(name, line) + message;
  return false;
}

bool readSettings(const YAML::Node& root, const std::string& name, ConfigFile& out,
                  std::string& error) {
  // An empty file (or one of comments only) sets nothing.
  if (!root || root.IsNull()) return true;
  if (!root.IsMap()) {
    return fail(error, name, lineOf(root.Mark()),
                "a config file is a map of option names to values (key: value)");
  }
  for (auto it = root.begin(); it != root.end(); ++it) {
    const YAML::Node key = it->first;
    const YAML::Node value = it->second;
    const size_t line = lineOf(key.Mark());
    if (!key.IsScalar())
      return fail(error, name, line, "a key is an option name, not a list or map");
    Setting s;
    s.key = key.Scalar();
    s.line = line;
    const std::string where = s.key + ": ";
    // yaml-cpp keeps both pairs of a repeated key; which one wins would be
    // a guess.
    for (const Setting& seen : out.settings) {
      if (seen.key == s.key) {
        return fail(error, name, line,
                    where + "set twice (first on line " + std::to_string(seen.line) + ")");
      }
    }
    if (out.settings.size() >= ConfigLimits::kMaxSettings) {
      return fail(error, name, line,
                  "more than " + std::to_string(ConfigLimits::kMaxSettings) + " keys");
    }
    if (value.IsScalar()) {
      s.values.push_back(value.Scalar());
      s.value_lines.push_back(lineOf(value.Mark()) ? lineOf(value.Mark()) : line);
    } else if (value.IsSequence()) {
      s.list = true;
      if (value.size() > ConfigLimits::kMaxListValues) {
        return fail(
            error, name, line,
            where + "more than " + std::to_string(ConfigLimits::kMaxListValues) + " values");
      }
      for (auto item_it = value.begin(); item_it != value.end(); ++item_it) {
        const YAML::Node item = *item_it;
        const size_t item_line = lineOf(item.Mark()) ? lineOf(item.Mark()) : line;
        if (!item.IsScalar()) {
          return fail(error, name, item_line,
                      where + "a list of values, not of " +
                          (item.IsSequence() ? "lists"
                           : item.IsMap()    ? "maps"
                                             : "empty values"));
        }
        s.values.push_back(item.Scalar());
        s.value_lines.push_back(item_line);
      }
    } else if (value.IsMap()) {
      return fail(error, name, line, where + "a value or a list of values, not a map");
    } else {
      return fail(error, name, line, where + "no value");
    }
    out.settings.push_back(std::move(s));
  }
  return true;
}

}  // namespace

bool parseConfigText(std::string_view text, const std::string& name, ConfigFile& out,
                     std::string& error) {
  out.name = name;
  out.settings.clear();
  if (text.size() > ConfigLimits::kMaxFileBytes) {
    return fail(error, name, 0,
                "larger than " + std::to_string(ConfigLimits::kMaxFileBytes) + " bytes");
  }
  // yaml-cpp reports every problem by throwing; none leaves this function.
  try {
    return readSettings(YAML::Load(std::string(text)), name, out, error);
  } catch (const YAML::Exception& e) {
    return fail(error, name, lineOf(e.mark), "not valid YAML: " + e.msg);
  } catch (const std::exception& e) {
    return fail(error, name, 0, std::string("not valid YAML: ") + e.what());
  }
}

bool readConfigFile(const std::string& path, ConfigFile& out, std::string& error) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return fail(error, path, 0, std::strerror(errno));
  std::string text;
  char buf[65536];
  size_t n;
  // One byte past the limit is enough to say it is too large.
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0 && text.size() <= ConfigLimits::kMaxFileBytes)
    text.append(buf, n);
  const bool read_error = std::ferror(f) != 0;
  const int saved = errno;
  std::fclose(f);
  if (read_error) return fail(error, path, 0, std::strerror(saved));
  return parseConfigText(text, path, out, error);
}

std::string settingError(const ConfigFile& file, const Setting& setting, size_t line,
                         const std::string& message) {
  return at(file.name, line ? line : setting.line) + setting.key + ": " + message;
}

}  // namespace l7tap::config
