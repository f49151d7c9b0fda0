// The HPACK decoder as it was over nghttp2's inflater: the reference that
// HpackDecoder's own inflater must match field for field and error for
// error (hpack_equivalence_test.cc, tests/fuzz/fuzz_hpack.cc).
#pragma once

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <span>

#include "parsers/http2/hpack_decoder.h"

namespace l7tap::h2test {

class ReferenceHpackDecoder {
 public:
  ReferenceHpackDecoder() : inflater_(newInflater()) {}
  ~ReferenceHpackDecoder() { nghttp2_hd_inflate_del(inflater_); }
  ReferenceHpackDecoder(const ReferenceHpackDecoder&) = delete;
  ReferenceHpackDecoder& operator=(const ReferenceHpackDecoder&) = delete;

  bool feed(std::span<const uint8_t> fragment, HeaderFieldHandler& handler) {
    in_block_ = true;
    if (failed_) return false;
    const uint8_t* in = fragment.data();
    size_t left = fragment.size();
    while (left > 0) {
      nghttp2_nv nv;
      int flags = 0;
      ssize_t rv = nghttp2_hd_inflate_hd2(inflater_, &nv, &flags, in, left, 0);
      if (rv < 0) {
        fail();
        return false;
      }
      in += rv;
      left -= static_cast<size_t>(rv);
      if (flags & NGHTTP2_HD_INFLATE_EMIT) {
        emit(nv, handler);
      } else if (rv == 0) {
        break;
      }
    }
    return true;
  }

  bool endBlock(HeaderFieldHandler& handler) {
    bool ok = !failed_;
    if (ok) {
      static const uint8_t kNothing = 0;
      for (;;) {
        nghttp2_nv nv;
        int flags = 0;
        ssize_t rv = nghttp2_hd_inflate_hd2(inflater_, &nv, &flags, &kNothing, 0, 1);
        if (rv < 0) {
          ok = false;
          fail();
          break;
        }
        if (flags & NGHTTP2_HD_INFLATE_EMIT) emit(nv, handler);
        if (flags & NGHTTP2_HD_INFLATE_FINAL) {
          nghttp2_hd_inflate_end_headers(inflater_);
          if (!synchronised_) synchronised_ = !hasPlaceholder();
          break;
        }
        if (!(flags & NGHTTP2_HD_INFLATE_EMIT)) {
          ok = false;
          fail();
          break;
        }
      }
    }
    in_block_ = false;
    failed_ = false;
    applyPendingSize();
    return ok;
  }

  void resetUnknown() {
    seed();
    in_block_ = false;
    failed_ = false;
  }
  void setSettingsTableSize(uint32_t size) {
    settings_size_ = std::min(size, max_size_);
    size_pending_ = true;
    if (!in_block_) applyPendingSize();
  }
  void setMaxTableSize(uint32_t size) { max_size_ = size; }
  bool synchronised() const { return synchronised_; }
  uint32_t tableSize() const {
    return static_cast<uint32_t>(nghttp2_hd_inflate_get_max_dynamic_table_size(inflater_));
  }
  uint64_t seedings() const { return seedings_; }
  uint64_t unknownFields() const { return unknown_fields_; }
  size_t entries() const { return nghttp2_hd_inflate_get_num_table_entries(inflater_) - 61; }
  const nghttp2_nv* entry(size_t newest_first) const {
    return nghttp2_hd_inflate_get_table_entry(inflater_, 62 + newest_first);
  }

 private:
  static constexpr uint32_t kEntryOverhead = 32;
  static constexpr uint8_t kPlaceholder[3] = {0x40, 0x00, 0x00};

  static nghttp2_hd_inflater* newInflater() {
    nghttp2_hd_inflater* inflater = nullptr;
    if (nghttp2_hd_inflate_new(&inflater) != 0) std::abort();
    return inflater;
  }
  static void inflateOrAbort(nghttp2_hd_inflater* inflater, const uint8_t* in, size_t n,
                             int final) {
    nghttp2_nv nv;
    int flags = 0;
    if (nghttp2_hd_inflate_hd2(inflater, &nv, &flags, in, n, final) != static_cast<ssize_t>(n)) {
      std::abort();
    }
  }
  static size_t encodeSizeUpdate(uint32_t size, uint8_t (&out)[8]) {
    size_t n = 0;
    if (size < 31) {
      out[n++] = static_cast<uint8_t>(0x20 | size);
      return n;
    }
    out[n++] = 0x3f;
    uint32_t rest = size - 31;
    while (rest >= 128) {
      out[n++] = static_cast<uint8_t>(0x80 | (rest & 0x7f));
      rest >>= 7;
    }
    out[n++] = static_cast<uint8_t>(rest);
    return n;
  }
  void emit(const nghttp2_nv& nv, HeaderFieldHandler& handler) {
    if (nv.namelen == 0) {
      ++unknown_fields_;
      handler.onUnknownHeaderField();
      return;
    }
    handler.onHeaderField({reinterpret_cast<const char*>(nv.name), nv.namelen},
                          {reinterpret_cast<const char*>(nv.value), nv.valuelen});
  }
  void seed() {
    const uint32_t size =
        std::min(std::max(tableSize(), min_seed_size_), HpackDecoder::kMaxSeedTableSize);
    nghttp2_hd_inflate_del(inflater_);
    inflater_ = newInflater();
    size_pending_ = false;
    ++seedings_;
    nghttp2_hd_inflate_change_table_size(inflater_, std::max(settings_size_, size));
    uint8_t update[8];
    inflateOrAbort(inflater_, update, encodeSizeUpdate(size, update), 0);
    for (uint32_t i = 0; i < size / kEntryOverhead; ++i) {
      inflateOrAbort(inflater_, kPlaceholder, sizeof kPlaceholder, 0);
    }
    inflateOrAbort(inflater_, kPlaceholder, 0, 1);
    nghttp2_hd_inflate_end_headers(inflater_);
    synchronised_ = !hasPlaceholder();
  }
  bool hasPlaceholder() const {
    const size_t oldest = nghttp2_hd_inflate_get_num_table_entries(inflater_);
    if (oldest <= 61) return false;
    const nghttp2_nv* nv = nghttp2_hd_inflate_get_table_entry(inflater_, oldest);
    return nv != nullptr && nv->namelen == 0 && nv->valuelen == 0;
  }
  void applyPendingSize() {
    if (!size_pending_) return;
    size_pending_ = false;
    nghttp2_hd_inflate_change_table_size(inflater_, settings_size_);
  }
  void fail() {
    failed_ = true;
    const uint64_t twice = 2 * uint64_t{tableSize()};
    min_seed_size_ = static_cast<uint32_t>(std::min<uint64_t>(
        std::max<uint64_t>({HpackDecoder::kDefaultTableSize, min_seed_size_, twice}),
        HpackDecoder::kMaxSeedTableSize));
    seed();
  }

  nghttp2_hd_inflater* inflater_ = nullptr;
  uint32_t settings_size_ = HpackDecoder::kDefaultTableSize;
  uint32_t max_size_ = UINT32_MAX;
  uint32_t min_seed_size_ = 0;
  uint64_t seedings_ = 0;
  uint64_t unknown_fields_ = 0;
  bool size_pending_ = false;
  bool in_block_ = false;
  bool failed_ = false;
  bool synchronised_ = true;
};

}  // namespace l7tap::h2test

#include <string>
#include <vector>

#include "parsers/http2/hpack_huffman.h"

namespace l7tap::h2test {

/// Records what a decoder emitted, as text.
class FieldLog final : public HeaderFieldHandler {
 public:
  void onHeaderField(std::string_view name, std::string_view value) override {
    log.append("F ").append(name).append(": ").append(value).append("\n");
  }
  void onUnknownHeaderField() override { log.append("U\n"); }
  std::string log;
};

/// Runs the same operations on HpackDecoder and the nghttp2 reference and
/// says where they first differ (empty: never). `script` is a sequence of
/// operations, each an opcode byte and its arguments (bytes that run out
/// read as zero):
///   0: feed the next N bytes (N: one byte) as a fragment
///   1: end the block
///   2: resetUnknown
///   3: setSettingsTableSize (4 bytes, big-endian)
class Differential {
 public:
  explicit Differential(uint32_t max_table) {
    ours_.setMaxTableSize(max_table);
    ref_.setMaxTableSize(max_table);
  }

  std::string feed(std::span<const uint8_t> fragment) {
    FieldLog a, b;
    const bool ra = ours_.feed(fragment, a);
    const bool rb = ref_.feed(fragment, b);
    std::string diff = compare("feed", ra, rb, a, b);
    if (!diff.empty()) {
      static const char* kHex = "0123456789abcdef";
      diff += " fragment ";
      for (uint8_t c : fragment) diff.append({kHex[c >> 4], kHex[c & 15]});
    }
    return diff;
  }
  std::string endBlock() {
    FieldLog a, b;
    const bool ra = ours_.endBlock(a);
    const bool rb = ref_.endBlock(b);
    return compare("endBlock", ra, rb, a, b);
  }
  std::string resetUnknown() {
    ours_.resetUnknown();
    ref_.resetUnknown();
    FieldLog a, b;
    return compare("resetUnknown", true, true, a, b);
  }
  std::string setSettingsTableSize(uint32_t size) {
    ours_.setSettingsTableSize(size);
    ref_.setSettingsTableSize(size);
    FieldLog a, b;
    return compare("setSettingsTableSize", true, true, a, b);
  }
  std::string run(std::span<const uint8_t> script) {
    size_t at = 0;
    auto byte = [&]() -> uint8_t { return at < script.size() ? script[at++] : 0; };
    while (at < script.size()) {
      std::string diff;
      switch (byte() % 4) {
        case 0: {
          const size_t want = byte();  // before `at` is read below
          const size_t n = std::min(want, script.size() - at);
          diff = feed(script.subspan(at, n));
          at += n;
          break;
        }
        case 1:
          diff = endBlock();
          break;
        case 2:
          diff = resetUnknown();
          break;
        default: {
          uint32_t v = 0;
          for (int i = 0; i < 4; ++i) v = (v << 8) | byte();
          diff = setSettingsTableSize(v);
          break;
        }
      }
      if (!diff.empty()) return diff;
    }
    return {};
  }

  const ReferenceHpackDecoder& reference() const { return ref_; }

 private:
  std::string compare(const char* op, bool ra, bool rb, const FieldLog& a, const FieldLog& b) {
    ++ops_;

    std::string diff;
    if (ra != rb) diff += " result " + std::to_string(ra) + " vs " + std::to_string(rb);
    if (a.log != b.log) diff += " fields\n" + a.log + "vs\n" + b.log;
    if (ours_.synchronised() != ref_.synchronised()) diff += " synchronised";
    if (ours_.tableSize() != ref_.tableSize()) {
      diff += " tableSize " + std::to_string(ours_.tableSize()) + " vs " +
              std::to_string(ref_.tableSize());
    }
    if (ours_.seedings() != ref_.seedings()) diff += " seedings";
    if (ours_.unknownFields() != ref_.unknownFields()) diff += " unknownFields";
    if (diff.empty()) return {};
    return std::string(op) + " (operation " + std::to_string(ops_) + "):" + diff;
  }

  HpackDecoder ours_;
  ReferenceHpackDecoder ref_;
  uint64_t ops_ = 0;
};

/// Huffman-codes `s` (RFC 7541 5.2), padding with the most significant bits
/// of EOS.
inline std::vector<uint8_t> huffmanEncode(std::string_view s) {
  std::vector<uint8_t> out;
  uint64_t acc = 0;
  int bits = 0;
  for (unsigned char c : s) {
    const hpack::HuffmanCode code = hpack::huffmanCode(c);
    acc = (acc << code.length) | code.bits;
    bits += code.length;
    while (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<uint8_t>(acc >> bits));
    }
  }
  if (bits > 0) out.push_back(static_cast<uint8_t>((acc << (8 - bits)) | (0xff >> bits)));
  return out;
}

}  // namespace l7tap::h2test
