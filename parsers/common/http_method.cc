#include "parsers/common/http_method.h"

#include <algorithm>
#include <array>

namespace l7tap {
namespace {

constexpr std::array<std::string_view, 9> kKnownMethods = {
    "CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE"};

}  // namespace

bool isKnownHttpMethod(std::string_view method) {
  return std::find(kKnownMethods.begin(), kKnownMethods.end(), method) != kKnownMethods.end();
}

std::string_view httpMethodLabel(std::string_view method) {
  for (std::string_view known : kKnownMethods) {
    if (method == known) return known;
  }
  return "_OTHER";
}

}  // namespace l7tap
