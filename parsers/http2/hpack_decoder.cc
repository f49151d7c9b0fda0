#include "parsers/http2/hpack_decoder.h"

#include <nghttp2/nghttp2.h>

#include <cstdlib>

namespace l7tap {

namespace {

// nghttp2 only fails to create an inflater when memory runs out; there is no
// data-path recovery from that.
nghttp2_hd_inflater* newInflater() {
  nghttp2_hd_inflater* inflater = nullptr;
  if (nghttp2_hd_inflate_new(&inflater) != 0) std::abort();
  return inflater;
}

std::string_view view(const uint8_t* p, size_t n) { return {reinterpret_cast<const char*>(p), n}; }

}  // namespace

HpackDecoder::HpackDecoder() : inflater_(newInflater()) {}

HpackDecoder::~HpackDecoder() { nghttp2_hd_inflate_del(inflater_); }

void HpackDecoder::replace() {
  nghttp2_hd_inflate_del(inflater_);
  inflater_ = newInflater();
  // A fresh inflater starts at the default size. Raising its limit to what the
  // receiver announced never forces a size update; lowering it would make the
  // next block fail unless it starts with one, and a larger table than the
  // encoder's is harmless (its extra, oldest entries are never referenced).
  if (settings_size_ > kDefaultTableSize) {
    nghttp2_hd_inflate_change_table_size(inflater_, settings_size_);
  }
  size_pending_ = false;
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
      failed_ = true;
      replace();
      return false;
    }
    in += rv;
    left -= static_cast<size_t>(rv);
    if (flags & NGHTTP2_HD_INFLATE_EMIT) {
      handler.onHeaderField(view(nv.name, nv.namelen), view(nv.value, nv.valuelen));
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
        replace();
        break;
      }
      if (flags & NGHTTP2_HD_INFLATE_EMIT) {
        handler.onHeaderField(view(nv.name, nv.namelen), view(nv.value, nv.valuelen));
      }
      if (flags & NGHTTP2_HD_INFLATE_FINAL) {
        nghttp2_hd_inflate_end_headers(inflater_);
        break;
      }
      if (!(flags & NGHTTP2_HD_INFLATE_EMIT)) {
        // Ended in the middle of a field.
        ok = false;
        replace();
        break;
      }
    }
  }
  in_block_ = false;
  failed_ = false;
  applyPendingSize();
  return ok;
}

void HpackDecoder::reset() {
  replace();
  in_block_ = false;
  failed_ = false;
}

void HpackDecoder::setSettingsTableSize(uint32_t size) {
  settings_size_ = size;
  size_pending_ = true;
  if (!in_block_) applyPendingSize();
}

}  // namespace l7tap
