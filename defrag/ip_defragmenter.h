// IP fragment reassembly for replay: fragments of IPv4 and IPv6 datagrams in,
// whole datagrams out, by the rules of the receiving Linux host (what the pod
// saw), with a bounded table and a timeout in capture time.
//
// Hand-written: no Debian library reassembles IP fragments on user-space byte
// buffers (libnids does, but is unmaintained and owns the capture loop; the
// kernel's code is not a library).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace l7tap {

struct DefragLimits {
  size_t max_datagrams = 1024;           ///< datagrams in flight
  size_t max_bytes = 8 << 20;            ///< buffer memory, reused buffers included
  uint64_t timeout_ns = 30'000'000'000;  ///< Linux's ipfrag_time, from the first fragment
};

struct DefragStats {
  uint64_t fragments = 0;         ///< fragments given to add()
  uint64_t reassembled = 0;       ///< datagrams rebuilt (IPv6 atomic fragments included)
  uint64_t duplicates = 0;        ///< fragments ignored: their bytes were already there
  uint64_t timed_out = 0;         ///< datagrams dropped: incomplete after the timeout
  uint64_t evicted = 0;           ///< datagrams dropped: table or memory bound reached
  uint64_t overlaps_dropped = 0;  ///< datagrams dropped: a fragment overlapped another
  uint64_t too_large = 0;         ///< datagrams dropped: longer than 65535 bytes
  uint64_t malformed = 0;  ///< fragments (or, on conflicting ends, datagrams) dropped: bad headers
  uint64_t truncated = 0;  ///< fragments dropped: the capture cut their bytes short
};

class IpDefragmenter {
 public:
  explicit IpDefragmenter(const DefragLimits& limits = {});

  /// `ip` starts at the fragment's IP header (IPv4, or IPv6 with a Fragment
  /// extension header after zero or more hop-by-hop, routing and destination
  /// options headers). `scope` keeps apart datagrams that share addresses and
  /// id but not a network (for example two tunnels' inner packets); 0 when
  /// there is one. Returns the rebuilt datagram (valid until the next call)
  /// when this fragment completes one, else an empty span.
  std::span<const uint8_t> add(std::span<const uint8_t> ip, uint64_t ts_ns, uint64_t scope = 0);

  /// Forgets every datagram waiting for fragments (the end of a capture:
  /// the next one is another network's); returns how many. Buffers are kept.
  size_t clear();

  const DefragStats& stats() const { return stats_; }
  /// Datagrams waiting for fragments.
  size_t pending() const { return active_.size(); }
  /// Buffer bytes held (in flight and kept for reuse); at most max_bytes.
  size_t memoryBytes() const { return memory_; }

 private:
  struct Key {
    uint8_t src[16];
    uint8_t dst[16];
    uint64_t scope;
    uint32_t id;
    uint8_t family;    // 4 or 6
    uint8_t protocol;  // IPv4's protocol; 0 for IPv6 (not part of its key)
    bool operator==(const Key&) const = default;
  };
  // Received bytes [offset, end): fragments appended at the tail join the last
  // run, as the kernel's fragment runs do (inet_frag_queue_insert).
  struct Run {
    uint32_t offset;
    uint32_t end;
  };
  struct Entry {
    Key key;
    uint64_t first_ts;
    uint32_t received = 0;  // payload bytes held (no overlaps: completeness test)
    uint32_t total = 0;     // payload length, once the last fragment fixed it
    bool have_last = false;
    bool have_first = false;
    uint8_t next_header = 0;      // IPv6: the Fragment header's next header (first fragment's)
    uint32_t nh_offset = 0;       // IPv6: where the byte naming the Fragment header is, in `header`
    std::vector<uint8_t> header;  // the first fragment's: IPv4 header, IPv6 unfragmentable part
    std::vector<uint8_t> data;    // the fragmentable payload, at its offsets
    std::vector<Run> runs;        // sorted by offset, disjoint
  };
  // One fragment, as parsed from its headers.
  struct Fragment {
    Key key;
    uint32_t offset;                   // payload bytes
    std::span<const uint8_t> header;   // IPv4 header; IPv6 header and extension headers before
                                       // the Fragment header
    std::span<const uint8_t> payload;  // after the IPv4 header or the Fragment header
    bool more;
    uint8_t next_header;  // IPv6
    uint32_t nh_offset;   // IPv6
  };
  enum class Parse { kOk, kMalformed, kTruncated };

  static Parse parseV4(std::span<const uint8_t> ip, Fragment& f);
  static Parse parseV6(std::span<const uint8_t> ip, Fragment& f);
  static uint64_t hashKey(const Key& key);
  static size_t bytesHeld(const Entry& e);

  // Index in active_, SIZE_MAX when absent.
  size_t find(const Key& key, uint64_t hash) const;
  size_t allocate(const Key& key, uint64_t hash, uint64_t ts_ns);
  void release(size_t active_index);
  void sweepExpired(uint64_t ts_ns);
  // The datagram in flight longest, other than `keep_slot`'s; false if none.
  bool evictOldest(size_t keep_slot);
  // Frees the buffers of one datagram no longer in flight; false if none held any.
  bool freeSpare();
  // Grows `v`'s capacity to `n` within the memory bound, evicting other
  // datagrams if needed; false when even that is not enough.
  template <class T>
  bool reserve(std::vector<T>& v, size_t n, size_t keep_slot);
  std::span<const uint8_t> rebuild(uint8_t family, std::span<const uint8_t> header,
                                   std::span<const uint8_t> payload, uint8_t next_header,
                                   uint32_t nh_offset);

  DefragLimits limits_;
  DefragStats stats_;
  std::vector<Entry> slots_;           // every entry ever made; reused
  std::vector<uint32_t> free_;         // slots not in flight
  std::vector<uint32_t> active_;       // slots in flight, unordered
  std::vector<uint64_t> active_hash_;  // the key hash of active_[i], for a flat scan
  uint64_t oldest_ts_ = UINT64_MAX;    // at most the first_ts of every active entry
  size_t memory_ = 0;
  std::vector<uint8_t> out_;  // the last rebuilt datagram
};

}  // namespace l7tap
