// HPACK decoding of one direction's header blocks over nghttp2's inflater,
// including recovery when the peer encoder's dynamic table is not (or no
// longer) known: a connection joined mid-way, or bytes lost inside a header
// block.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

struct nghttp2_hd_inflater;

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
  /// Largest table seeded with placeholders: 2048 entries. nghttp2 keeps
  /// about 160 bytes of heap per entry: 20 KiB at the default size (as much
  /// as a real table of 128 minimal entries), 340 KiB at this bound; seeding
  /// takes about 11 us and 290 us. A larger encoder table still never
  /// decodes wrongly: references beyond the seeded entries are decode errors.
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
  /// encoder allowed a larger one would make nghttp2 keep about 160 bytes of
  /// heap per 3-byte entry it sends. A size update above it is a decode
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
  void seed();
  void fail();
  void applyPendingSize();
  bool hasPlaceholder() const;

  nghttp2_hd_inflater* inflater_ = nullptr;
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
