#include "parsers/http2/hpack_decoder.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "parsers/http2/hpack_huffman.h"

namespace l7tap {

namespace {

// Entries 1-61 are RFC 7541's static table (appendix A); the dynamic table
// follows.
constexpr size_t kStaticEntries = 61;
struct StaticEntry {
  std::string_view name;
  std::string_view value;
};
constexpr StaticEntry kStaticTable[kStaticEntries] = {
    {":authority", ""},
    {":method", "GET"},
    {":method", "POST"},
    {":path", "/"},
    {":path", "/index.html"},
    {":scheme", "http"},
    {":scheme", "https"},
    {":status", "200"},
    {":status", "204"},
    {":status", "206"},
    {":status", "304"},
    {":status", "400"},
    {":status", "404"},
    {":status", "500"},
    {"accept-charset", ""},
    {"accept-encoding", "gzip, deflate"},
    {"accept-language", ""},
    {"accept-ranges", ""},
    {"accept", ""},
    {"access-control-allow-origin", ""},
    {"age", ""},
    {"allow", ""},
    {"authorization", ""},
    {"cache-control", ""},
    {"content-disposition", ""},
    {"content-encoding", ""},
    {"content-language", ""},
    {"content-length", ""},
    {"content-location", ""},
    {"content-range", ""},
    {"content-type", ""},
    {"cookie", ""},
    {"date", ""},
    {"etag", ""},
    {"expect", ""},
    {"expires", ""},
    {"from", ""},
    {"host", ""},
    {"if-match", ""},
    {"if-modified-since", ""},
    {"if-none-match", ""},
    {"if-range", ""},
    {"if-unmodified-since", ""},
    {"last-modified", ""},
    {"link", ""},
    {"location", ""},
    {"max-forwards", ""},
    {"proxy-authenticate", ""},
    {"proxy-authorization", ""},
    {"range", ""},
    {"referer", ""},
    {"refresh", ""},
    {"retry-after", ""},
    {"server", ""},
    {"set-cookie", ""},
    {"strict-transport-security", ""},
    {"transfer-encoding", ""},
    {"user-agent", ""},
    {"vary", ""},
    {"via", ""},
    {"www-authenticate", ""},
};

// RFC 7541 4.1: an entry's size is its name and value lengths plus 32.
constexpr uint32_t kEntryOverhead = 32;
// nghttp2's NGHTTP2_HD_MAX_NV: longer names or values are decode errors.
constexpr uint32_t kMaxStringBytes = 65536;

// Prefix integers as nghttp2 decodes them: errors are seen as soon as the
// bytes that cause them are (a partial value above `max`, a shift of 32 or
// more, an overflow of 32 bits). Returns the bytes taken, 0 when more are
// needed, -1 on error.
int readInt(const uint8_t* p, const uint8_t* end, int prefix, uint32_t max, uint32_t& out) {
  const uint32_t k = (1u << prefix) - 1;
  uint32_t n = *p & k;
  if (n < k) {
    if (n > max) return -1;
    out = n;
    return 1;
  }
  if (n > max) return -1;
  const uint8_t* q = p + 1;
  for (uint32_t shift = 0; q != end; ++q, shift += 7) {
    uint32_t add = *q & 0x7f;
    if (shift >= 32) return -1;
    if ((UINT32_MAX >> shift) < add) return -1;
    add <<= shift;
    if (UINT32_MAX - add < n) return -1;
    n += add;
    if (n > max) return -1;
    if ((*q & 0x80) == 0) {
      out = n;
      return static_cast<int>(q + 1 - p);
    }
  }
  return 0;
}

// Decoded Huffman strings live here during the handler call (one decoder
// runs at a time per thread); sized once for the longest string allowed.
char* huffmanScratch(int which) {
  thread_local std::vector<char> scratch[2];
  std::vector<char>& s = scratch[which];
  if (s.empty()) s.resize(hpack::maxHuffmanDecoded(kMaxStringBytes));
  return s.data();
}

// Recently decoded short Huffman strings, by their coded bytes: peers send
// the same values over and over (server, content-type, date within its
// second, etags), and a lookup costs a fraction of decoding. The decoding
// (and whether the string is valid) depends on the bytes only, so a hit is
// exact. One cache per string of a field (name, value), so that a field's
// two strings never evict each other.
class HuffmanCache {
 public:
  static constexpr size_t kMaxCoded = 48;

  // Null when the string is not valid Huffman.
  static const std::string_view* decode(int which, const uint8_t* in, size_t n) {
    thread_local HuffmanCache caches[2];
    return caches[which].lookup(in, n);
  }

 private:
  static constexpr size_t kSlots = 64;
  struct Slot {
    uint8_t coded_len = 0;  // 0: empty
    bool valid = false;
    uint8_t coded[kMaxCoded];
    char decoded[hpack::maxHuffmanDecoded(kMaxCoded)];
    std::string_view view;
  };

  static size_t hash(const uint8_t* in, size_t n) {
    constexpr uint64_t kMul = 0x9e3779b97f4a7c15;
    uint64_t h = n * kMul;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
      uint64_t w;
      std::memcpy(&w, in + i, 8);
      h = (h ^ w) * kMul;
    }
    uint64_t w = 0;
    std::memcpy(&w, in + i, n - i);
    h = (h ^ w) * kMul;
    return static_cast<size_t>(h >> 58);  // 64 slots
  }

  const std::string_view* lookup(const uint8_t* in, size_t n) {
    Slot& s = slots_[hash(in, n)];
    if (s.coded_len != n || std::memcmp(s.coded, in, n) != 0) {
      const long len = hpack::huffmanDecode(in, n, s.decoded);
      s.coded_len = static_cast<uint8_t>(n);
      std::memcpy(s.coded, in, n);
      s.valid = len >= 0;
      s.view = {s.decoded, s.valid ? static_cast<size_t>(len) : 0};
    }
    return s.valid ? &s.view : nullptr;
  }

  Slot slots_[kSlots];
};

// An empty name is a placeholder's, or a literal's whose name was one.
void emit(std::string_view name, std::string_view value, HeaderFieldHandler& handler,
          uint64_t& unknown_fields) {
  if (name.empty()) {
    ++unknown_fields;
    handler.onUnknownHeaderField();
    return;
  }
  handler.onHeaderField(name, value);
}

}  // namespace

// What step() made of the bytes at hand.
struct HpackDecoder::Step {
  enum Kind : uint8_t { kDone, kNeedMore, kError } kind;
  size_t n;  // kDone: bytes taken; kNeedMore: bytes the field is known to need
};

HpackDecoder::HpackDecoder() = default;

HpackDecoder::~HpackDecoder() = default;

uint32_t HpackDecoder::tableSize() const { return table_max_; }

void HpackDecoder::clearTable() {
  entries_.clear();
  first_ = 0;
  bytes_.clear();
  table_bytes_ = 0;
}

void HpackDecoder::evictTo(uint32_t max_bytes) {
  while (table_bytes_ > max_bytes && entryCount() > 0) {
    const Entry& e = entries_[first_++];
    table_bytes_ -= e.name_len + e.value_len + kEntryOverhead;
  }
  if (entryCount() == 0) clearTable();
}

int HpackDecoder::insert(std::string_view name, std::string_view value) {
  const uint64_t room = uint64_t{name.size()} + value.size() + kEntryOverhead;
  while (table_bytes_ + room > table_max_ && entryCount() > 0) {
    const Entry& e = entries_[first_++];
    table_bytes_ -= e.name_len + e.value_len + kEntryOverhead;
  }
  if (entryCount() == 0) clearTable();
  if (room > table_max_) return -1;
  // Evicted entries' bytes and slots are reclaimed once they are at least
  // as many as the live ones: amortised constant work per entry.
  if (first_ > 0 && first_ >= entryCount()) {
    entries_.erase(entries_.begin(), entries_.begin() + static_cast<ptrdiff_t>(first_));
    first_ = 0;
  }
  if (entryCount() > 0) {
    const size_t base = entries_[first_].off;
    if (base > 0 && base >= bytes_.size() - base) {
      bytes_.erase(bytes_.begin(), bytes_.begin() + static_cast<ptrdiff_t>(base));
      for (size_t i = first_; i < entries_.size(); ++i)
        entries_[i].off -= static_cast<uint32_t>(base);
    }
  }
  // resize and copy: vector's range insert is several times slower for
  // strings this short.
  const uint32_t off = static_cast<uint32_t>(bytes_.size());
  bytes_.resize(off + name.size() + value.size());
  if (!name.empty()) std::memcpy(bytes_.data() + off, name.data(), name.size());
  if (!value.empty()) std::memcpy(bytes_.data() + off + name.size(), value.data(), value.size());
  entries_.push_back(
      {off, static_cast<uint32_t>(name.size()), static_cast<uint32_t>(value.size())});
  table_bytes_ += static_cast<uint32_t>(room);
  return 0;
}

void HpackDecoder::changeTableSize(uint32_t size) {
  // As nghttp2_hd_inflate_change_table_size: a size below the encoder's
  // current one must be acknowledged by a size update that starts the next
  // block, and no update may exceed the lowest size announced meanwhile.
  inflate_settings_max_ = size;
  if (table_max_ > size) {
    stage_ = Stage::kExpectSizeUpdate;
    min_size_update_ = std::min(min_size_update_, size);
    table_max_ = size;
    evictTo(table_max_);
  }
}

HpackDecoder::Step HpackDecoder::step(const uint8_t* p, const uint8_t* end,
                                      HeaderFieldHandler& handler) {
  const uint8_t b = *p;
  if (stage_ == Stage::kExpectSizeUpdate && (b & 0xe0) != 0x20) return {Step::kError, 0};
  if ((b & 0xe0) == 0x20) {
    // Dynamic table size update: only before the block's first field.
    if (stage_ == Stage::kFields) return {Step::kError, 0};
    uint32_t size = 0;
    const int r = readInt(p, end, 5, std::min(min_size_update_, inflate_settings_max_), size);
    if (r < 0) return {Step::kError, 0};
    if (r == 0) return {Step::kNeedMore, static_cast<size_t>(end - p) + 1};
    min_size_update_ = UINT32_MAX;
    table_max_ = size;
    evictTo(table_max_);
    stage_ = Stage::kStart;
    return {Step::kDone, static_cast<size_t>(r)};
  }
  const uint32_t max_index = static_cast<uint32_t>(kStaticEntries + entryCount());
  uint32_t index = 0;
  const uint8_t* q = p;
  if (b & 0x80) {
    const int r = readInt(p, end, 7, max_index, index);
    if (r < 0) return {Step::kError, 0};
    if (r == 0) return {Step::kNeedMore, static_cast<size_t>(end - p) + 1};
    if (index == 0) return {Step::kError, 0};
    stage_ = Stage::kFields;
    if (index <= kStaticEntries) {
      const StaticEntry& s = kStaticTable[index - 1];
      emit(s.name, s.value, handler, unknown_fields_);
    } else {
      const Entry& e = entry(index - 1 - kStaticEntries);
      emit(name(e), value(e), handler, unknown_fields_);
    }
    return {Step::kDone, static_cast<size_t>(r)};
  }
  const bool new_name = b == 0x40 || b == 0 || b == 0x10;
  const bool index_required = (b & 0x40) != 0;
  if (new_name) {
    ++q;
  } else {
    const int r = readInt(p, end, index_required ? 6 : 4, max_index, index);
    if (r < 0) return {Step::kError, 0};
    if (r == 0) return {Step::kNeedMore, static_cast<size_t>(end - p) + 1};
    if (index == 0) return {Step::kError, 0};
    q += r;
  }
  // Strings are decoded as soon as they are complete, and Huffman strings
  // checked for EOS as their bytes arrive: the errors nghttp2 finds then.
  std::string_view strings[2];
  for (int i = new_name ? 0 : 1; i < 2; ++i) {
    if (q == end) return {Step::kNeedMore, static_cast<size_t>(q - p) + 1};
    const bool huffman = (*q & 0x80) != 0;
    uint32_t len = 0;
    const int r = readInt(q, end, 7, kMaxStringBytes, len);
    if (r < 0) return {Step::kError, 0};
    if (r == 0) return {Step::kNeedMore, static_cast<size_t>(end - p) + 1};
    q += r;
    if (static_cast<size_t>(end - q) < len) {
      if (huffman && !hpack::huffmanPrefixValid(q, static_cast<size_t>(end - q))) {
        return {Step::kError, 0};
      }
      // Known length; the rest of the field is at least one more byte.
      return {Step::kNeedMore, static_cast<size_t>(q - p) + len + (i == 0 ? 1 : 0)};
    }
    if (huffman && len > 0 && len <= HuffmanCache::kMaxCoded) {
      const std::string_view* decoded = HuffmanCache::decode(i, q, len);
      if (decoded == nullptr) return {Step::kError, 0};
      strings[i] = *decoded;
    } else if (huffman) {
      char* out = huffmanScratch(i);
      const long n = hpack::huffmanDecode(q, len, out);
      if (n < 0) return {Step::kError, 0};
      strings[i] = {out, static_cast<size_t>(n)};
    } else {
      strings[i] = {reinterpret_cast<const char*>(q), len};
    }
    q += len;
  }
  if (!new_name) {
    if (index <= kStaticEntries) {
      strings[0] = kStaticTable[index - 1].name;
    } else {
      strings[0] = name(entry(index - 1 - kStaticEntries));
    }
  }
  stage_ = Stage::kFields;
  if (index_required) {
    // An entry's name must outlive the evictions the insertion makes.
    thread_local std::string name_copy;
    if (index > kStaticEntries) {
      name_copy.assign(strings[0]);
      strings[0] = name_copy;
    }
    insert(strings[0], strings[1]);
  }
  emit(strings[0], strings[1], handler, unknown_fields_);
  return {Step::kDone, static_cast<size_t>(q - p)};
}

bool HpackDecoder::feedBytes(const uint8_t* p, const uint8_t* end, HeaderFieldHandler& handler) {
  if (!partial_.empty()) {
    // Complete the field the last fragment ended in, taking no byte past it.
    for (;;) {
      const size_t take = std::min(need_ - partial_.size(), static_cast<size_t>(end - p));
      partial_.insert(partial_.end(), p, p + take);
      p += take;
      const Step s = step(partial_.data(), partial_.data() + partial_.size(), handler);
      if (s.kind == Step::kError) return false;
      if (s.kind == Step::kNeedMore) {
        need_ = s.n;
        if (p == end) return true;
        continue;
      }
      partial_.clear();
      if (partial_.capacity() > 4096) partial_.shrink_to_fit();
      break;
    }
  }
  while (p != end) {
    const Step s = step(p, end, handler);
    if (s.kind == Step::kError) return false;
    if (s.kind == Step::kNeedMore) {
      partial_.assign(p, end);
      need_ = s.n;
      return true;
    }
    p += s.n;
  }
  return true;
}

void HpackDecoder::seed() {
  // The encoder's table is as large as its last size update said (4096 when
  // none was seen); the lost bytes may have held another one, which a later
  // decode error reveals (min_seed_size_).
  const uint32_t size = std::min(std::max(tableSize(), min_seed_size_), kMaxSeedTableSize);
  ++seedings_;
  size_pending_ = false;
  // A fresh inflater whose receiver admits the seeded size and any update
  // the encoder may still send, after a size update to the seeded size.
  clearTable();
  partial_.clear();
  stage_ = Stage::kStart;
  inflate_settings_max_ = std::max(settings_size_, size);
  min_size_update_ = UINT32_MAX;
  table_max_ = size;
  // Placeholders: empty name and value, 32 bytes each.
  entries_.assign(size / kEntryOverhead, Entry{0, 0, 0});
  table_bytes_ = static_cast<uint32_t>(entries_.size()) * kEntryOverhead;
  synchronised_ = !hasPlaceholder();  // a table of size 0 is known at once
}

bool HpackDecoder::hasPlaceholder() const {
  // Placeholders are older than every other entry: when the oldest is not
  // one, none is left. (An entry inserted since with an unknown name and an
  // empty value looks the same; it only delays synchronised().)
  if (entryCount() == 0) return false;
  const Entry& oldest = entries_[first_];
  return oldest.name_len == 0 && oldest.value_len == 0;
}

void HpackDecoder::applyPendingSize() {
  if (!size_pending_) return;
  size_pending_ = false;
  changeTableSize(settings_size_);
}

bool HpackDecoder::feed(std::span<const uint8_t> fragment, HeaderFieldHandler& handler) {
  in_block_ = true;
  if (failed_) return false;
  if (!feedBytes(fragment.data(), fragment.data() + fragment.size(), handler)) {
    fail();
    return false;
  }
  return true;
}

bool HpackDecoder::endBlock(HeaderFieldHandler& handler) {
  (void)handler;  // every complete field was emitted as it was fed
  bool ok = !failed_;
  if (ok) {
    // The block may end between fields only, and not while a size update
    // is still expected.
    if (!partial_.empty() || stage_ == Stage::kExpectSizeUpdate) {
      ok = false;
      fail();
    } else {
      stage_ = Stage::kStart;
      if (!synchronised_) synchronised_ = !hasPlaceholder();
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
