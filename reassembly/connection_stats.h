// What reassembly knows about one TCP connection: its endpoints, the roles of
// its two sides, and its L4 statistics.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string_view>

#include "tc/l7tap_abi.h"

namespace l7tap {

/// The two directions of a connection. `kOrig` is the side that sent the SYN,
/// or, when the capture started mid-connection, the sender of the first
/// packet seen (roles can be corrected by the protocol, see `client_side`).
enum class Side : uint8_t { kOrig = 0, kResp = 1 };

constexpr Side opposite(Side s) { return s == Side::kOrig ? Side::kResp : Side::kOrig; }
constexpr int index(Side s) { return static_cast<int>(s); }

enum class EndKind : uint8_t { kFin, kRst };

/// Why a connection's record was written.
enum class CloseReason : uint8_t {
  kFin,         ///< both sides sent FIN
  kRst,         ///< a side sent RST
  kIdle,        ///< no packet for ReassemblyLimits::idle_timeout_ns
  kPortReuse,   ///< a new SYN on the same 5-tuple replaced it
  kEvicted,     ///< the table was full
  kEndOfInput,  ///< the capture or the daemon ended
};
const char* toString(CloseReason r);

/// What went wrong on one direction: most connections never retransmit or
/// lose a byte, so these live behind a pointer (DirectionStats) that the
/// first of them allocates, not in every tracked connection.
struct DirectionAnomalies {
  uint64_t retransmitted_segments = 0;
  uint64_t retransmitted_bytes = 0;
  uint64_t out_of_order_segments = 0;
  uint64_t conflicting_overlap_bytes = 0;
  uint64_t zero_window_events = 0;
  uint64_t missed_bytes = 0;  ///< bytes delivered downstream as gaps
  /// Of missed_bytes, those of sequence ranges no segment covered (events or
  /// packets lost), as opposed to the uncopied rest of segments that were seen.
  uint64_t hole_bytes = 0;
  uint64_t out_of_order_overflows = 0;  ///< holes given up because of the OOO bound
};

/// L4 counters of one direction.
struct DirectionStats {
  uint64_t packets = 0;
  uint64_t bytes = 0;  ///< TCP payload bytes on the wire (seq space)

  DirectionStats() = default;
  DirectionStats(const DirectionStats& o) : packets(o.packets), bytes(o.bytes) {
    if (o.anomalies_) anomalies_ = std::make_unique<DirectionAnomalies>(*o.anomalies_);
  }
  DirectionStats& operator=(const DirectionStats& o) {
    if (this != &o) *this = DirectionStats(o);
    return *this;
  }
  DirectionStats(DirectionStats&&) noexcept = default;
  DirectionStats& operator=(DirectionStats&&) noexcept = default;

  /// The anomaly counters, all zero when none was ever counted.
  const DirectionAnomalies& anomalies() const { return anomalies_ ? *anomalies_ : kNoAnomalies; }
  /// The anomaly counters to add to (allocated on first use).
  DirectionAnomalies& countAnomaly() {
    if (!anomalies_) anomalies_ = std::make_unique<DirectionAnomalies>();
    return *anomalies_;
  }

 private:
  static const DirectionAnomalies kNoAnomalies;
  std::unique_ptr<DirectionAnomalies> anomalies_;
};

/// Zeek-like connection history: one letter per event kind and side, in the
/// order of their first occurrence. Eight kinds (S H W D A F T R) in two cases
/// make at most 16 letters, kept inline; unused ones are NUL, so no length
/// is kept (16 bytes, not 17, in every tracked connection).
class ConnectionHistory {
 public:
  static constexpr size_t npos = std::string_view::npos;

  /// Appends `letter` unless it is already there.
  void add(char letter) {
    const std::string_view v = view();
    if (v.find(letter) == npos && v.size() < sizeof(letters_)) letters_[v.size()] = letter;
  }
  size_t find(char letter) const { return view().find(letter); }
  bool empty() const { return letters_[0] == '\0'; }
  size_t size() const { return view().size(); }
  std::string_view view() const {
    const void* end = std::memchr(letters_, '\0', sizeof(letters_));
    return {letters_,
            end ? static_cast<size_t>(static_cast<const char*>(end) - letters_) : sizeof(letters_)};
  }
  operator std::string_view() const { return view(); }
  friend bool operator==(const ConnectionHistory& h, std::string_view s) { return h.view() == s; }

 private:
  char letters_[16]{};
};

/// One connection, as reassembly tracks it. Endpoints are stored per side.
/// Members are ordered to pack: one is kept per tracked connection.
/// The encapsulation a connection's packets came in (the innermost; from
/// its first packet), with the outer addresses by Side: those of the packets
/// that side sent.
struct ConnectionTunnel {
  uint8_t type = L7TAP_TUNNEL_NONE;  ///< enum l7tap_tunnel_type
  uint8_t outer_family = 0;          ///< 4 or 6; 0: no outer IP (PPPoE)
  bool has_id = false;
  uint32_t id = 0;                          ///< VNI, GRE key, PPPoE session
  std::array<uint8_t, 16> outer_addr[2]{};  ///< indexed by Side, IPv4-mapped for IPv4
};

/// Owns a connection's ConnectionTunnel, if any: one pointer in every
/// connection, the tunnel only in tunnelled ones. Copies copy it.
class TunnelPtr {
 public:
  TunnelPtr() = default;
  TunnelPtr(const TunnelPtr& o) : p_(o.p_ ? std::make_unique<ConnectionTunnel>(*o.p_) : nullptr) {}
  TunnelPtr(TunnelPtr&&) noexcept = default;
  TunnelPtr& operator=(const TunnelPtr& o) {
    if (this != &o) p_ = o.p_ ? std::make_unique<ConnectionTunnel>(*o.p_) : nullptr;
    return *this;
  }
  TunnelPtr& operator=(TunnelPtr&&) noexcept = default;
  ConnectionTunnel& emplace() {
    p_ = std::make_unique<ConnectionTunnel>();
    return *p_;
  }
  const ConnectionTunnel* get() const { return p_.get(); }
  explicit operator bool() const { return p_ != nullptr; }

 private:
  std::unique_ptr<ConnectionTunnel> p_;
};

/// The name of a tunnel type in records ("vxlan", "gre", ...), or nullptr.
const char* tunnelTypeName(uint8_t type);

struct ConnectionInfo {
  uint64_t id = 0;  ///< unique within the process, stable per input
  uint32_t ifindex = 0;
  uint8_t family = 4;
  std::array<uint8_t, 16> addr[2]{};  ///< indexed by Side
  uint16_t port[2]{};                 ///< indexed by Side
  Side client_side = Side::kOrig;     ///< who sent the request (see `roles_known`)
  // Flags in one byte (bit-fields).
  bool roles_from_handshake : 1 = false;  ///< SYN seen: kOrig is the client
  bool roles_from_protocol : 1 = false;   ///< a parser decided client_side
  bool midstream : 1 = false;             ///< no SYN seen
  bool synack_seen : 1 = false;           ///< kResp answered the SYN (SYN+ACK)
  /// A source above TCP (TLS uprobes) also delivers this connection's
  /// plaintext: its session writes the connection's record, with what the
  /// segments' session knows (SNI, ALPN), so a connection has one record.
  bool has_plaintext : 1 = false;
  CloseReason close_reason = CloseReason::kEndOfInput;
  uint8_t tcp_flags_seen[2]{};  ///< OR of every TCP flag byte, per Side
  ConnectionHistory history;    ///< Zeek-like: capitals from kOrig
  uint64_t first_ts_ns = 0;
  uint64_t last_ts_ns = 0;
  uint64_t handshake_rtt_ns = 0;  ///< SYN to SYN-ACK, 0 if unknown
  DirectionStats stats[2];        ///< indexed by Side
  /// The kernel program's own counters of this connection: they count every
  /// packet the program saw, including those whose events were lost (full
  /// ring buffer) or never sent (L4-only flows). Indexed by Side.
  struct KernelCounts {
    uint64_t packets[2]{};
    uint64_t bytes[2]{};
    uint64_t retransmits[2]{};
    uint64_t zero_windows[2]{};
  };
  /// The kernel's counters when a live source could read them at close, else
  /// null. Set only while the final record is written (FlowTable::close owns
  /// them): they are read once, so they are not kept in every tracked
  /// connection for its whole life.
  const KernelCounts* kernel = nullptr;
  /// How the connection's packets came encapsulated; empty when bare.
  TunnelPtr tunnel;

  /// Zeek-like connection state (S0, S1, SF, REJ, RSTO, RSTR, OTH, ...).
  const char* state() const;
};

}  // namespace l7tap
