// A config file: a YAML map of option names to values, read into settings
// without knowing what the options mean (daemon/cli_options applies them,
// with the same checks as the flags). Every error is one line naming the
// file and, where there is one, the line and the key.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace l7tap::config {

struct ConfigLimits {
  /// A config file is a few dozen lines; anything this large is a mistake
  /// (the wrong file), and yaml-cpp holds the whole tree in memory.
  static constexpr size_t kMaxFileBytes = 1 << 20;
  /// Settings in one file: more than there are options, never reached by a
  /// file that only names options.
  static constexpr size_t kMaxSettings = 256;
  /// Values of one list; each option's own bound is lower (cli_options).
  static constexpr size_t kMaxListValues = 1024;
};

/// One key of the file and its value(s), as text.
struct Setting {
  std::string key;
  size_t line = 0;  ///< 1-based, of the key
  /// Written as a YAML sequence (`iface: [a, b]`), not a single scalar.
  bool list = false;
  std::vector<std::string> values;
  std::vector<size_t> value_lines;  ///< 1-based, of each value
};

struct ConfigFile {
  std::string name;  ///< the path, as messages name it
  std::vector<Setting> settings;
};

/// Reads and parses `path`; false with `error` set ("PATH: ...",
/// "PATH:LINE: KEY: ...") when it cannot be read or is not a map of
/// option names to scalars or lists of scalars.
bool readConfigFile(const std::string& path, ConfigFile& out, std::string& error);

/// Parses `text` as the contents of a file called `name`.
bool parseConfigText(std::string_view text, const std::string& name, ConfigFile& out,
                     std::string& error);

/// "NAME:LINE: KEY: MESSAGE": an error about one setting (or one of its
/// values, at `line`).
std::string settingError(const ConfigFile& file, const Setting& setting, size_t line,
                         const std::string& message);

}  // namespace l7tap::config
