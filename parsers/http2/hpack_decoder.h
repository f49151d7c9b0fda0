// HPACK decoding of one direction's header blocks (RFC 7541), including
// recovery when the peer encoder's dynamic table is not (or no
// longer) known: a connection joined mid-way, or bytes lost inside a header
// block.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace l7tap {

/// Receives decoded header fields; views are valid during the call only.
class HeaderFieldHandler {
 public:
  virtual void onHeaderField(std::string_view name, std::string_view value) = 0;
  /// A field whose name is a dynamic-table entry that is not known (inserted
  /// before the capture started or during a gap). Which header it was is
  /// unknown, so its value belongs to no field and is not passed on.
  virtual void onUnknownHeaderField() = 0;

 protected:
  ~HeaderFieldHandler() = default;
};

/// One direction's HPACK state (the peer encoder's dynamic table). Header
/// blocks are fed in fragments as they arrive; nothing is buffered here.
///
/// Unknown table state (resetUnknown): the fresh inflater is seeded with
/// placeholder entries (empty name and value, 32 bytes each, the smallest
/// entry HPACK allows) that fill the assumed table size. HPACK indices count
/// from the newest entry and entries are evicted oldest first, so:
///  - an entry inserted after the seeding sits at the same index as in the
///    encoder's table (the placeholders are always the oldest entries);
///  - a reference to an entry from before lands on a placeholder (emitted as
///    onUnknownHeaderField) or, if the encoder's table is larger than
///    assumed, beyond the table: a decode error, after which the decoder
///    reseeds with a larger assumption. It can never land on a known entry:
///    while any entry from before remains in the encoder's table, every entry
///    inserted since is there too, newer than it, so its index is past every
///    entry this table knows;
///  - a literal whose name is a placeholder inserts an entry with an empty
///    name (unknown) and the literal value, which keeps later indices right;
///  - once no placeholder remains, every entry from before has been evicted
///    from the encoder's table too (placeholders are as small as any real
///    entry, so they go no later than real ones): synchronised() turns true.
///    This needs the assumed size to be at least the encoder's: it is the
///    last dynamic table size update seen, else 4096 (RFC 7541: the size
///    changes only by such updates), raised after a decode error.
/// Synchronised is not "every field exact": an encoder may keep copying a
/// name by index from the newest entry with that name (nghttp2 does, for
/// names outside the static table), so a name first taken from an entry
/// from before stays unknown as long as the chain lasts. Names in the static
/// table (every pseudo-header, user-agent, content-type, ...) are exact once
/// synchronised with encoders that index them statically (nghttp2, Go).
/// An empty header name never occurs in valid HTTP/2, so it always means
/// unknown.
class HpackDecoder {
 public:
  /// RFC 7541's initial SETTINGS_HEADER_TABLE_SIZE.
  static constexpr uint32_t kDefaultTableSize = 4096;
  /// Largest table seeded with placeholders: 2048 entries of 12 bytes each
  /// (24 KiB at this bound, 1.5 KiB at the default size). A larger encoder
  /// table still never decodes wrongly: references beyond the seeded entries
  /// are decode errors.
  static constexpr uint32_t kMaxSeedTableSize = 64 * 1024;

  /// A decoder for a connection seen from its start: the table is empty and
  /// known (synchronised()).
  HpackDecoder();
  ~HpackDecoder();
  HpackDecoder(const HpackDecoder&) = delete;
  HpackDecoder& operator=(const HpackDecoder&) = delete;

  /// Part of the current header block. Returns false when the block failed
  /// to decode (now or earlier): the rest of the block is then ignored, the
  /// table is treated as unknown (as after resetUnknown) and later seedings
  /// assume a larger table (the usual cause is a reference beyond the
  /// seeded table).
  bool feed(std::span<const uint8_t> fragment, HeaderFieldHandler& handler);
  /// The block ended (END_HEADERS). Returns false when the block failed.
  bool endBlock(HeaderFieldHandler& handler);
  /// The dynamic table is unknown (joined mid-way, bytes lost inside a
  /// header block, or the block was abandoned): drop the current block and
  /// seed a fresh table with placeholders, so that later blocks decode every
  /// field they can exactly and report the others as unknown.
  void resetUnknown();
  /// SETTINGS_HEADER_TABLE_SIZE announced by the receiver of this direction,
  /// applied now or, inside a block, when the block ends. At most
  /// maxTableSize().
  void setSettingsTableSize(uint32_t size);
  /// The largest table this decoder keeps, whatever the peers announce: an
  /// encoder allowed a larger one would make it keep 12 bytes per 3-byte
  /// entry it sends. A size update above it is a decode
  /// error (never a wrong field). Call before any block.
  void setMaxTableSize(uint32_t size) { max_size_ = size; }
  uint32_t maxTableSize() const { return max_size_; }
  uint32_t settingsTableSize() const { return settings_size_; }
  bool inBlock() const { return in_block_; }

  /// Every entry from before the last loss of the table has been evicted:
  /// no reference can reach one any more. Checked at block ends (and after a
  /// seeding); true from the start for a decoder that has never been reset.
  bool synchronised() const { return synchronised_; }
  /// The encoder's table size as far as known: the last dynamic table size
  /// update seen, or the size assumed when the table was last seeded.
  uint32_t tableSize() const;
  /// Times the table was seeded with placeholders (resetUnknown or errors).
  uint64_t seedings() const { return seedings_; }
  /// Fields reported through onUnknownHeaderField.
  uint64_t unknownFields() const { return unknown_fields_; }

 private:
  // One dynamic table entry: name and value are adjacent in bytes_.
  struct Entry {
    uint32_t off;
    uint32_t name_len;
    uint32_t value_len;
  };
  // Where the inflater is between fields (nghttp2's states of the same names).
  enum class Stage : uint8_t { kExpectSizeUpdate, kStart, kFields };
  struct Step;

  void seed();
  void fail();
  void applyPendingSize();
  bool hasPlaceholder() const;

  // The inflater. Its decisions (limits, what is an error and when) are
  // nghttp2 1.52's, which tests/parsers/http2/hpack_equivalence_test.cc
  // checks against nghttp2 itself; it exists because nghttp2 allocates for
  // every literal and dominated the h2c replay.
  Step step(const uint8_t* p, const uint8_t* end, HeaderFieldHandler& handler);
  bool feedBytes(const uint8_t* p, const uint8_t* end, HeaderFieldHandler& handler);
  void changeTableSize(uint32_t size);
  void clearTable();
  void evictTo(uint32_t max_bytes);
  // Inserts (name, value) (views that must not point into bytes_) and returns the
  // entry's index from the newest (0), or -1 when it was larger than the
  // whole table (which it then emptied).
  int insert(std::string_view name, std::string_view value);
  size_t entryCount() const { return entries_.size() - first_; }
  const Entry& entry(size_t newest_first) const {
    return entries_[entries_.size() - 1 - newest_first];
  }
  std::string_view name(const Entry& e) const { return {bytes_.data() + e.off, e.name_len}; }
  std::string_view value(const Entry& e) const {
    return {bytes_.data() + e.off + e.name_len, e.value_len};
  }

  std::vector<Entry> entries_;  // live from first_, oldest first
  size_t first_ = 0;
  std::vector<char> bytes_;  // live from entries_[first_].off
  uint32_t table_bytes_ = 0;
  uint32_t table_max_ = kDefaultTableSize;  // the encoder's table size
  uint32_t inflate_settings_max_ = kDefaultTableSize;
  uint32_t min_size_update_ = UINT32_MAX;  // lowest settings size since the last update
  Stage stage_ = Stage::kStart;
  // The bytes of a field that a fragment ended in; need_ is how many the
  // field is known to take.
  std::vector<uint8_t> partial_;
  size_t need_ = 0;

  uint32_t settings_size_ = kDefaultTableSize;
  uint32_t max_size_ = UINT32_MAX;
  // Seedings assume at least this size (raised after a decode error).
  uint32_t min_seed_size_ = 0;
  uint64_t seedings_ = 0;
  uint64_t unknown_fields_ = 0;
  bool size_pending_ = false;
  bool in_block_ = false;
  bool failed_ = false;
  bool synchronised_ = true;
};

}  // namespace l7tap
