// HPACK decoding of one direction's header blocks over nghttp2's inflater.
// Kept small and separate so that a decoder which resynchronises its dynamic
// table exactly can replace it later.
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

 protected:
  ~HeaderFieldHandler() = default;
};

/// One direction's HPACK state (the peer encoder's dynamic table). Header
/// blocks are fed in fragments as they arrive; nothing is buffered here.
class HpackDecoder {
 public:
  /// RFC 7541's initial SETTINGS_HEADER_TABLE_SIZE.
  static constexpr uint32_t kDefaultTableSize = 4096;

  HpackDecoder();
  ~HpackDecoder();
  HpackDecoder(const HpackDecoder&) = delete;
  HpackDecoder& operator=(const HpackDecoder&) = delete;

  /// Part of the current header block. Returns false when the block failed
  /// to decode (now or earlier): the rest of the block is then ignored, and
  /// the inflater has been replaced, so its dynamic table is empty.
  bool feed(std::span<const uint8_t> fragment, HeaderFieldHandler& handler);
  /// The block ended (END_HEADERS). Returns false when the block failed.
  bool endBlock(HeaderFieldHandler& handler);
  /// The dynamic table is unknown (bytes lost, or the block was abandoned):
  /// drop the current block and start again with an empty table.
  void reset();
  /// SETTINGS_HEADER_TABLE_SIZE announced by the receiver of this direction,
  /// applied now or, inside a block, when the block ends.
  void setSettingsTableSize(uint32_t size);
  uint32_t settingsTableSize() const { return settings_size_; }
  bool inBlock() const { return in_block_; }

 private:
  void replace();
  void applyPendingSize();

  nghttp2_hd_inflater* inflater_ = nullptr;
  uint32_t settings_size_ = kDefaultTableSize;
  bool size_pending_ = false;
  bool in_block_ = false;
  bool failed_ = false;
};

}  // namespace l7tap
