#include "defrag/ip_defragmenter.h"

#include <algorithm>
#include <cstring>

namespace l7tap {

namespace {

constexpr uint8_t kHopByHop = 0;
constexpr uint8_t kRouting = 43;
constexpr uint8_t kFragmentHeader = 44;
constexpr uint8_t kDestinationOptions = 60;
// Extension headers looked through before the Fragment header; the
// kernel's parser (tc/packet_parse.h) gives up sooner.
constexpr int kMaxExtensionHeaders = 8;
constexpr size_t kIpv4HeaderLen = 20;
constexpr size_t kIpv6HeaderLen = 40;
constexpr size_t kFragmentHeaderLen = 8;
constexpr uint16_t kIpv4DontFragment = 0x4000;
constexpr uint16_t kIpv4MoreFragments = 0x2000;
constexpr uint16_t kIpv4OffsetMask = 0x1fff;
// IPv4's tot_len, IPv6's payload_len: 16 bits.
constexpr size_t kMaxLength = 65535;
// The largest datagram rebuilt: an IPv6 header and a full payload.
constexpr size_t kMaxDatagram = kIpv6HeaderLen + kMaxLength;

uint16_t load16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
uint32_t load32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) << 24 | static_cast<uint32_t>(p[1]) << 16 |
         static_cast<uint32_t>(p[2]) << 8 | p[3];
}
void store16(uint8_t* p, size_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}

uint64_t mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  return h;
}

}  // namespace

IpDefragmenter::IpDefragmenter(const DefragLimits& limits) : limits_(limits) {
  limits_.max_datagrams = std::max<size_t>(limits_.max_datagrams, 1);
  // One output buffer for the largest datagram: rebuilding never allocates.
  out_.reserve(kMaxDatagram);
}

IpDefragmenter::Parse IpDefragmenter::parseV4(std::span<const uint8_t> ip, Fragment& f) {
  if (ip.size() < kIpv4HeaderLen) return Parse::kTruncated;
  const size_t ihl = (ip[0] & 0x0f) * 4u;
  const size_t tot_len = load16(&ip[2]);
  // tot_len 0 is BIG TCP's "unknown", never a fragment.
  if (ihl < kIpv4HeaderLen || tot_len < ihl) return Parse::kMalformed;
  if (ip.size() < tot_len) return Parse::kTruncated;
  const uint16_t frag = load16(&ip[6]);
  f.key = {};
  std::memcpy(f.key.src, &ip[12], 4);
  std::memcpy(f.key.dst, &ip[16], 4);
  f.key.id = load16(&ip[4]);
  f.key.family = 4;
  f.key.protocol = ip[9];
  f.offset = (frag & kIpv4OffsetMask) * 8u;
  f.more = frag & kIpv4MoreFragments;
  f.header = ip.first(ihl);
  // Bytes past tot_len are link padding.
  f.payload = ip.subspan(ihl, tot_len - ihl);
  f.next_header = 0;
  f.nh_offset = 0;
  return Parse::kOk;
}

IpDefragmenter::Parse IpDefragmenter::parseV6(std::span<const uint8_t> ip, Fragment& f) {
  if (ip.size() < kIpv6HeaderLen) return Parse::kTruncated;
  const size_t payload_len = load16(&ip[4]);
  // 0 is a jumbogram's (RFC 2675): those are never fragmented.
  if (payload_len == 0) return Parse::kMalformed;
  const size_t end = kIpv6HeaderLen + payload_len;
  if (ip.size() < end) return Parse::kTruncated;
  // The Fragment header follows the unfragmentable part: hop-by-hop options,
  // routing, destination options meant for the routers on the way.
  uint8_t nh = ip[6];
  size_t nh_offset = 6;
  size_t off = kIpv6HeaderLen;
  for (int i = 0; i < kMaxExtensionHeaders && nh != kFragmentHeader; ++i) {
    if (nh != kHopByHop && nh != kRouting && nh != kDestinationOptions) return Parse::kMalformed;
    if (off + 2 > end) return Parse::kMalformed;
    nh_offset = off;
    nh = ip[off];
    off += (ip[off + 1] + 1u) * 8u;
  }
  if (nh != kFragmentHeader || off + kFragmentHeaderLen > end) return Parse::kMalformed;
  const uint16_t frag = load16(&ip[off + 2]);
  f.key = {};
  std::memcpy(f.key.src, &ip[8], 16);
  std::memcpy(f.key.dst, &ip[24], 16);
  f.key.id = load32(&ip[off + 4]);
  f.key.family = 6;
  f.offset = frag & 0xfff8u;
  f.more = frag & 1;
  f.header = ip.first(off);
  f.payload = ip.subspan(off + kFragmentHeaderLen, end - off - kFragmentHeaderLen);
  f.next_header = ip[off];
  f.nh_offset = static_cast<uint32_t>(nh_offset);
  return Parse::kOk;
}

std::span<const uint8_t> IpDefragmenter::add(std::span<const uint8_t> ip, uint64_t ts_ns,
                                             uint64_t scope) {
  stats_.fragments++;
  Fragment f;
  Parse parsed = Parse::kMalformed;
  if (!ip.empty() && ip[0] >> 4 == 4) parsed = parseV4(ip, f);
  if (!ip.empty() && ip[0] >> 4 == 6) parsed = parseV6(ip, f);
  if (parsed == Parse::kTruncated) {
    stats_.truncated++;
    return {};
  }
  if (parsed == Parse::kMalformed) {
    stats_.malformed++;
    return {};
  }
  f.key.scope = scope;
  const size_t len = f.payload.size();
  const size_t end = f.offset + len;

  if (f.offset == 0 && !f.more) {
    // Not fragmented after all (an IPv6 atomic fragment, RFC 6946): the
    // kernel takes it alone, without touching a queue.
    return rebuild(f.key.family, f.header, f.payload, f.next_header, f.nh_offset);
  }

  sweepExpired(ts_ns);
  const uint64_t hash = hashKey(f.key);
  size_t at = find(f.key, hash);
  auto drop = [&](uint64_t& counter) {
    counter++;
    if (at != SIZE_MAX) release(at);
    return std::span<const uint8_t>();
  };

  // Linux kills the whole queue on an empty fragment (ip_frag_queue,
  // ip6_frag_queue: "end == offset").
  if (len == 0) return drop(stats_.malformed);
  // Non-last fragments carry multiples of 8 bytes (RFC 791, RFC 8200). IPv6
  // drops such a fragment; Linux's IPv4 trims it to a multiple of 8 instead,
  // which no sender produces: it is counted and dropped here too.
  if (f.more && len % 8 != 0) {
    stats_.malformed++;
    return {};
  }
  // Too long for the rebuilt length field: the datagram can never be
  // delivered (IPv4: ip_frag_reasm's oversize check; IPv6: ip6_frag_queue
  // rejects the fragment, the rest would time out).
  if ((f.key.family == 4 ? f.header.size() : 0) + end > kMaxLength) return drop(stats_.too_large);

  if (at == SIZE_MAX) at = allocate(f.key, hash, ts_ns);
  const size_t slot = active_[at];
  Entry& e = slots_[slot];

  // The last fragment fixes the length; bytes beyond it, or a second last
  // fragment that disagrees, corrupt the datagram (Linux: discard the queue).
  const uint32_t seen_end = e.runs.empty() ? 0 : e.runs.back().end;
  if (!f.more) {
    if (end < seen_end || (e.have_last && end != e.total)) return drop(stats_.malformed);
    e.have_last = true;
    e.total = static_cast<uint32_t>(end);
  } else if (e.have_last && end > e.total) {
    return drop(stats_.malformed);
  }

  // Overlaps, as inet_frag_queue_insert decides them: a fragment inside one
  // run of bytes already held is a duplicate (ignored, the queue kept); any
  // other overlap drops the whole datagram: RFC 5722 for IPv6, and Linux
  // since 4.19 (CVE-2018-5391, "FragmentSmack") for IPv4 too. Whatever the
  // overlap held, the pod saw no datagram.
  const auto offset = static_cast<uint32_t>(f.offset);
  auto run = e.runs.end();
  bool append = false;
  if (e.runs.empty() || seen_end < end) {
    if (offset < seen_end) return drop(stats_.overlaps_dropped);
    append = !e.runs.empty() && offset == seen_end;
  } else {
    run = std::upper_bound(e.runs.begin(), e.runs.end(), offset,
                           [](uint32_t o, const Run& r) { return o < r.end; });
    if (run != e.runs.end() && run->offset < end) {
      if (offset >= run->offset && end <= run->end) {
        stats_.duplicates++;
        return {};
      }
      return drop(stats_.overlaps_dropped);
    }
  }

  // Room first (this may evict others, never this entry), then the bytes.
  const size_t run_index = run - e.runs.begin();
  // Geometric growth: few reallocations while a large datagram arrives.
  const size_t want_data = std::max(end, e.have_last ? size_t{e.total} : 0);
  const size_t want_runs = e.runs.size() + (append ? 0 : 1);
  const bool room =
      (want_data <= e.data.capacity() ||
       reserve(e.data, std::max(want_data, std::min(kMaxLength, e.data.capacity() * 2)), slot)) &&
      (want_runs <= e.runs.capacity() ||
       reserve(e.runs, std::max<size_t>({want_runs, e.runs.capacity() * 2, 4}), slot)) &&
      (offset != 0 || reserve(e.header, f.header.size(), slot));
  // Evictions move entries in active_.
  if (at >= active_.size() || active_[at] != slot)
    at = std::find(active_.begin(), active_.end(), slot) - active_.begin();
  if (!room) return drop(stats_.evicted);
  if (append) {
    e.runs.back().end = static_cast<uint32_t>(end);
  } else {
    e.runs.insert(e.runs.begin() + static_cast<ptrdiff_t>(run_index),
                  Run{offset, static_cast<uint32_t>(end)});
  }
  if (e.data.size() < end) e.data.resize(end);
  std::memcpy(e.data.data() + offset, f.payload.data(), len);
  e.received += static_cast<uint32_t>(len);
  if (offset == 0) {
    // The first fragment's header is the datagram's (IPv4 options included:
    // only the first fragment carries them all).
    e.header.assign(f.header.begin(), f.header.end());
    e.have_first = true;
    e.next_header = f.next_header;
    e.nh_offset = f.nh_offset;
  }
  if (!e.have_first || !e.have_last || e.received != e.total) return {};

  const std::span<const uint8_t> out =
      rebuild(e.key.family, e.header, std::span(e.data).first(e.total), e.next_header, e.nh_offset);
  release(at);
  return out;
}

std::span<const uint8_t> IpDefragmenter::rebuild(uint8_t family, std::span<const uint8_t> header,
                                                 std::span<const uint8_t> payload,
                                                 uint8_t next_header, uint32_t nh_offset) {
  const size_t size = header.size() + payload.size();
  if (family == 6 ? size - kIpv6HeaderLen > kMaxLength : size > kMaxLength) {
    stats_.too_large++;
    return {};
  }
  out_.resize(size);
  std::memcpy(out_.data(), header.data(), header.size());
  std::memcpy(out_.data() + header.size(), payload.data(), payload.size());
  if (family == 4) {
    store16(&out_[2], size);
    // MF and the offset cleared, DF kept. The header checksum is left as
    // the first fragment had it: nothing downstream checks it (the parser
    // does not, as the kernel's BPF program sees packets already checked).
    store16(&out_[6], load16(&out_[6]) & kIpv4DontFragment);
  } else {
    // The Fragment header is gone: the header before it names what followed it.
    out_[nh_offset] = next_header;
    store16(&out_[4], size - kIpv6HeaderLen);
  }
  stats_.reassembled++;
  return out_;
}

uint64_t IpDefragmenter::hashKey(const Key& key) {
  uint64_t h = key.scope;
  for (int i = 0; i < 16; i += 8) {
    uint64_t s, d;
    std::memcpy(&s, key.src + i, 8);
    std::memcpy(&d, key.dst + i, 8);
    h = mix(mix(h, s), d);
  }
  return mix(h, uint64_t{key.id} << 16 | uint64_t{key.family} << 8 | key.protocol);
}

size_t IpDefragmenter::find(const Key& key, uint64_t hash) const {
  // A flat scan of hashes: the table is bounded and holds few datagrams in
  // practice; nothing to allocate per fragment, unlike a node-based map.
  for (size_t i = 0; i < active_hash_.size(); ++i) {
    if (active_hash_[i] == hash && slots_[active_[i]].key == key) return i;
  }
  return SIZE_MAX;
}

size_t IpDefragmenter::allocate(const Key& key, uint64_t hash, uint64_t ts_ns) {
  if (active_.size() >= limits_.max_datagrams && evictOldest(SIZE_MAX)) stats_.evicted++;
  uint32_t slot;
  if (!free_.empty()) {
    slot = free_.back();
    free_.pop_back();
  } else {
    slot = static_cast<uint32_t>(slots_.size());
    slots_.emplace_back();
  }
  Entry& e = slots_[slot];
  e.key = key;
  e.first_ts = ts_ns;
  e.received = 0;
  e.total = 0;
  e.have_last = false;
  e.have_first = false;
  e.header.clear();
  e.data.clear();
  e.runs.clear();
  active_.push_back(slot);
  active_hash_.push_back(hash);
  oldest_ts_ = std::min(oldest_ts_, ts_ns);
  return active_.size() - 1;
}

size_t IpDefragmenter::clear() {
  const size_t dropped = active_.size();
  while (!active_.empty()) release(active_.size() - 1);
  oldest_ts_ = UINT64_MAX;
  return dropped;
}

void IpDefragmenter::release(size_t active_index) {
  free_.push_back(active_[active_index]);
  active_[active_index] = active_.back();
  active_.pop_back();
  active_hash_[active_index] = active_hash_.back();
  active_hash_.pop_back();
}

void IpDefragmenter::sweepExpired(uint64_t ts_ns) {
  if (active_.empty() || ts_ns < oldest_ts_ || ts_ns - oldest_ts_ < limits_.timeout_ns) return;
  uint64_t oldest = UINT64_MAX;
  for (size_t i = 0; i < active_.size();) {
    const uint64_t first = slots_[active_[i]].first_ts;
    // Capture time going backwards (files replayed one after another)
    // expires nothing.
    if (ts_ns >= first && ts_ns - first >= limits_.timeout_ns) {
      stats_.timed_out++;
      release(i);
      continue;
    }
    oldest = std::min(oldest, first);
    ++i;
  }
  oldest_ts_ = oldest;
}

bool IpDefragmenter::evictOldest(size_t keep_slot) {
  size_t victim = SIZE_MAX;
  for (size_t i = 0; i < active_.size(); ++i) {
    if (active_[i] == keep_slot) continue;
    if (victim == SIZE_MAX || slots_[active_[i]].first_ts < slots_[active_[victim]].first_ts)
      victim = i;
  }
  if (victim == SIZE_MAX) return false;
  release(victim);
  return true;
}

bool IpDefragmenter::freeSpare() {
  for (auto it = free_.rbegin(); it != free_.rend(); ++it) {
    Entry& e = slots_[*it];
    const size_t held = bytesHeld(e);
    if (held == 0) continue;
    memory_ -= held;
    std::vector<uint8_t>().swap(e.header);
    std::vector<uint8_t>().swap(e.data);
    std::vector<Run>().swap(e.runs);
    return true;
  }
  return false;
}

size_t IpDefragmenter::bytesHeld(const Entry& e) {
  return e.header.capacity() + e.data.capacity() + e.runs.capacity() * sizeof(Run);
}

template <class T>
bool IpDefragmenter::reserve(std::vector<T>& v, size_t n, size_t keep_slot) {
  if (v.capacity() >= n) return true;
  const size_t grow = (n - v.capacity()) * sizeof(T);
  while (memory_ + grow > limits_.max_bytes) {
    if (freeSpare()) continue;
    if (!evictOldest(keep_slot)) return false;
    stats_.evicted++;
  }
  memory_ -= v.capacity() * sizeof(T);
  v.reserve(n);
  memory_ += v.capacity() * sizeof(T);
  return true;
}

}  // namespace l7tap
