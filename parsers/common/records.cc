#include "parsers/common/records.h"

namespace l7tap {

bool appendBounded(std::string& dst, std::string_view src, size_t max) {
  if (dst.size() >= max) return src.empty();
  size_t room = max - dst.size();
  if (src.size() <= room) {
    dst.append(src);
    return true;
  }
  dst.append(src.substr(0, room));
  return false;
}

}  // namespace l7tap
