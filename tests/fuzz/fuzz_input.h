// Shared by the fuzz targets: reading fields from the fuzz input, splitting
// it into per-direction chunks as Zeek's fuzzers do, and handing it to code
// that reads files.
#pragma once

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>
#include <string_view>

namespace l7tap::fuzz {

/// The input as a file (a memfd), for code that takes a path: path() is
/// /proc/self/fd/N; empty when the memfd could not be made.
class InputFile {
 public:
  InputFile(const char* name, const uint8_t* data, size_t size)
      : fd_(memfd_create(name, MFD_CLOEXEC)) {
    for (size_t done = 0; fd_ >= 0 && done < size;) {
      const ssize_t n = write(fd_, data + done, size - done);
      if (n <= 0) break;
      done += static_cast<size_t>(n);
    }
  }
  ~InputFile() {
    if (fd_ >= 0) close(fd_);
  }
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;
  std::string path() const { return fd_ < 0 ? "" : "/proc/self/fd/" + std::to_string(fd_); }

 private:
  int fd_;
};

/// Consumes fixed-size fields from the front of the input; past the end
/// every field reads as zero, so any input is a valid one.
class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  uint8_t u8() { return static_cast<uint8_t>(take(1)); }
  uint16_t u16() { return static_cast<uint16_t>(take(2)); }
  uint32_t u32() { return static_cast<uint32_t>(take(4)); }
  bool empty() const { return pos_ >= size_; }
  std::span<const uint8_t> rest() const {
    return pos_ < size_ ? std::span<const uint8_t>(data_ + pos_, size_ - pos_)
                        : std::span<const uint8_t>();
  }

 private:
  uint64_t take(size_t n) {
    uint64_t v = 0;
    for (size_t i = 0; i < n; ++i, ++pos_) {
      v |= static_cast<uint64_t>(pos_ < size_ ? data_[pos_] : 0) << (8 * i);
    }
    return v;
  }
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

/// Chunks separated by kChunkMagic; each chunk's first byte says what it is
/// (see ChunkKind), the rest is its bytes.
inline constexpr std::string_view kChunkMagic = "\x01PKT";

enum ChunkBits : uint8_t {
  kChunkServer = 0x01,  ///< from the server (else the client)
  kChunkGap = 0x02,     ///< a gap: its length is the chunk's next 2 bytes (LE)
  kChunkEnd = 0x04,     ///< the direction ends (FIN; RST with kChunkGap)
};

/// Calls `f(control, bytes)` for every chunk of `input`.
template <class F>
void forEachChunk(std::span<const uint8_t> input, F&& f) {
  const auto* magic = reinterpret_cast<const uint8_t*>(kChunkMagic.data());
  size_t pos = 0;
  while (pos < input.size()) {
    const uint8_t* start = input.data() + pos;
    const size_t left = input.size() - pos;
    const void* hit = memmem(start, left, magic, kChunkMagic.size());
    const size_t len = hit ? static_cast<size_t>(static_cast<const uint8_t*>(hit) - start) : left;
    if (len > 0) f(start[0], std::span<const uint8_t>(start + 1, len - 1));
    pos += len + (hit ? kChunkMagic.size() : 0);
  }
}

}  // namespace l7tap::fuzz
