#include "parsers/common/protocol.h"

#include <algorithm>

namespace l7tap {

namespace {

template <class List>
void insertRanked(List& list, typename List::value_type item) {
  const auto at = std::upper_bound(list.begin(), list.end(), item.rank,
                                   [](int rank, const auto& d) { return rank < d.rank; });
  list.insert(at, item);
}

}  // namespace

size_t ProtocolRegistry::add(std::unique_ptr<Protocol> protocol) {
  protocols_.push_back(std::move(protocol));
  return protocols_.size() - 1;
}

void ProtocolRegistry::addStartDetector(int rank, size_t protocol, StartDetector detector) {
  insertRanked(start_, {rank, protocol, detector});
}

void ProtocolRegistry::addBoundaryDetector(int rank, size_t protocol, BoundaryDetector detector) {
  insertRanked(boundary_, {rank, protocol, detector});
}

ProtocolRegistry::StartResult ProtocolRegistry::detectStart(std::span<const uint8_t> bytes,
                                                            const StartContext& ctx) const {
  StartResult out;
  for (const auto& d : start_) {
    const Detected found = d.fn(bytes, ctx);
    if (found.match == Match::kYes) return {Match::kYes, found.sender, d.protocol};
    if (found.match == Match::kNeedMore) out.match = Match::kNeedMore;
  }
  return out;
}

ProtocolRegistry::BoundaryResult ProtocolRegistry::findBoundary(
    std::span<const uint8_t> chunk, std::span<const uint8_t> held) const {
  for (const auto& d : boundary_) {
    const Boundary b = d.fn(chunk, held);
    if (b.found) return {b, d.protocol};
  }
  return {};
}

int ProtocolRegistry::upgradeTarget(std::string_view token) const {
  for (size_t i = 0; i < protocols_.size(); ++i) {
    if (protocols_[i]->takesUpgrade(token)) return static_cast<int>(i);
  }
  return -1;
}

}  // namespace l7tap
