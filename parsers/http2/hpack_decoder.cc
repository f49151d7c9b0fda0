#include "parsers/http2/hpack_decoder.h"

#include <nghttp2/nghttp2.h>

#include <algorithm>
#include <cstdlib>

namespace l7tap {

namespace {

// Entries 1-61 are RFC 7541's static table; the dynamic table follows.
constexpr size_t kStaticEntries = 61;
// RFC 7541 4.1: an entry's size is its name and value lengths plus 32.
constexpr uint32_t kEntryOverhead = 32;
// Literal with incremental indexing, new (empty) name, empty value: one
// 32-byte entry with an empty name, which no valid HTTP/2 field has.
constexpr uint8_t kPlaceholder[] = {0x40, 0x00, 0x00};

// nghttp2 only fails to create an inflater, or to insert an entry, when
// memory runs out; there is no data-path recovery from that.
nghttp2_hd_inflater* newInflater() {
  nghttp2_hd_inflater* inflater = nullptr;
  if (nghttp2_hd_inflate_new(&inflater) != 0) std::abort();
  return inflater;
}

void inflateOrAbort(nghttp2_hd_inflater* inflater, const uint8_t* in, size_t n, int final) {
  nghttp2_nv nv;
  int flags = 0;
  if (nghttp2_hd_inflate_hd2(inflater, &nv, &flags, in, n, final) != static_cast<ssize_t>(n)) {
    std::abort();
  }
}

// RFC 7541 6.3: dynamic table size update, a 5-bit prefix integer after 001.
size_t encodeSizeUpdate(uint32_t size, uint8_t (&out)[8]) {
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

std::string_view view(const uint8_t* p, size_t n) { return {reinterpret_cast<const char*>(p), n}; }

// An empty name is a placeholder's, or a literal's whose name was one.
void emit(const nghttp2_nv& nv, HeaderFieldHandler& handler, uint64_t& unknown_fields) {
  if (nv.namelen == 0) {
    ++unknown_fields;
    handler.onUnknownHeaderField();
    return;
  }
  handler.onHeaderField(view(nv.name, nv.namelen), view(nv.value, nv.valuelen));
}

}  // namespace

HpackDecoder::HpackDecoder() : inflater_(newInflater()) {}

HpackDecoder::~HpackDecoder() { nghttp2_hd_inflate_del(inflater_); }

uint32_t HpackDecoder::tableSize() const {
  return static_cast<uint32_t>(nghttp2_hd_inflate_get_max_dynamic_table_size(inflater_));
}

void HpackDecoder::seed() {
  // The encoder's table is as large as its last size update said (4096 when
  // none was seen); the lost bytes may have held another one, which a later
  // decode error reveals (min_seed_size_).
  const uint32_t size = std::min(std::max(tableSize(), min_seed_size_), kMaxSeedTableSize);
  nghttp2_hd_inflate_del(inflater_);
  inflater_ = newInflater();
  size_pending_ = false;
  ++seedings_;
  // The receiver's limit admits the seeded size and any update the encoder
  // may still send. Below 4096 the inflater then expects a size update,
  // which the seed block starts with.
  nghttp2_hd_inflate_change_table_size(inflater_, std::max(settings_size_, size));
  uint8_t update[8];
  inflateOrAbort(inflater_, update, encodeSizeUpdate(size, update), 0);
  for (uint32_t i = 0; i < size / kEntryOverhead; ++i) {
    inflateOrAbort(inflater_, kPlaceholder, sizeof kPlaceholder, 0);
  }
  inflateOrAbort(inflater_, kPlaceholder, 0, 1);
  nghttp2_hd_inflate_end_headers(inflater_);
  synchronised_ = !hasPlaceholder();  // a table of size 0 is known at once
}

bool HpackDecoder::hasPlaceholder() const {
  // Placeholders are older than every other entry: when the oldest is not
  // one, none is left. (An entry inserted since with an unknown name and an
  // empty value looks the same; it only delays synchronised().)
  const size_t oldest = nghttp2_hd_inflate_get_num_table_entries(inflater_);
  if (oldest <= kStaticEntries) return false;
  const nghttp2_nv* nv = nghttp2_hd_inflate_get_table_entry(inflater_, oldest);
  return nv != nullptr && nv->namelen == 0 && nv->valuelen == 0;
}

void HpackDecoder::applyPendingSize() {
  if (!size_pending_) return;
  size_pending_ = false;
  nghttp2_hd_inflate_change_table_size(inflater_, settings_size_);
}

bool HpackDecoder::feed(std::span<const uint8_t> fragment, HeaderFieldHandler& handler) {
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
      emit(nv, handler, unknown_fields_);
    } else if (rv == 0) {
      break;  // no progress; cannot happen with in_final == 0, but never spin
    }
  }
  return true;
}

bool HpackDecoder::endBlock(HeaderFieldHandler& handler) {
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
      if (flags & NGHTTP2_HD_INFLATE_EMIT) emit(nv, handler, unknown_fields_);
      if (flags & NGHTTP2_HD_INFLATE_FINAL) {
        nghttp2_hd_inflate_end_headers(inflater_);
        if (!synchronised_) synchronised_ = !hasPlaceholder();
        break;
      }
      if (!(flags & NGHTTP2_HD_INFLATE_EMIT)) {
        // Ended in the middle of a field.
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

void HpackDecoder::fail() {
  failed_ = true;
  // Most likely a reference beyond the seeded table: the encoder's table is
  // larger than assumed. Assume twice as much from now on.
  const uint64_t twice = 2 * uint64_t{tableSize()};
  min_seed_size_ = static_cast<uint32_t>(std::min<uint64_t>(
      std::max<uint64_t>({kDefaultTableSize, min_seed_size_, twice}), kMaxSeedTableSize));
  seed();
}

void HpackDecoder::resetUnknown() {
  seed();
  in_block_ = false;
  failed_ = false;
}

void HpackDecoder::setSettingsTableSize(uint32_t size) {
  settings_size_ = std::min(size, max_size_);
  size_pending_ = true;
  if (!in_block_) applyPendingSize();
}

}  // namespace l7tap
