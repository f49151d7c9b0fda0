// Reads the packets of a pcap or pcapng file, one at a time.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <span>
#include <string>
#include <vector>

struct pcap;  // libpcap's pcap_t

namespace l7tap {

/// A whole capture in memory, for benchmarks and tests that replay the same
/// packets many times without file reading in the measurement.
struct LoadedCapture {
  int dlt = 0;
  std::vector<std::vector<uint8_t>> frames;
  std::vector<uint32_t> wire_len;  ///< each frame's length on the wire
  std::vector<uint64_t> ts_ns;
  uint64_t bytes = 0;
};
/// Reads every packet of `path`; false (with `error`) if it cannot be opened.
bool loadCapture(const std::string& path, LoadedCapture& out, std::string& error);

/// One packet as read: `data` is borrowed until the next call.
struct CapturedFrame {
  std::span<const uint8_t> data;
  uint32_t wire_len = 0;
  uint64_t ts_ns = 0;
};

class PcapSource {
 public:
  PcapSource() = default;
  ~PcapSource();
  PcapSource(const PcapSource&) = delete;
  PcapSource& operator=(const PcapSource&) = delete;

  /// Opens `path` (pcap or pcapng, any supported link type). On failure
  /// returns false and sets `error` to one line naming the problem.
  bool open(const std::string& path, std::string& error);
  /// The file's link type (a DLT_ value).
  int linkType() const { return dlt_; }
  /// The next packet: 1, or 0 at the end of the file, or -1 on a read error
  /// (for example a truncated file) with `error` set.
  int next(CapturedFrame& frame, std::string& error);
  /// How far the reading got, and the file's size, in bytes.
  uint64_t offset() const;
  uint64_t size() const { return file_size_; }

 private:
  /// stdio buffer of the file libpcap reads (see open()), and of the
  /// classic pcap reader.
  static constexpr size_t kReadBufferBytes = 1 << 20;
  /// Largest record the classic reader takes itself (libpcap's sane
  /// maximum for the link types we decode); larger ones go to libpcap.
  static constexpr uint32_t kMaxOwnRecordBytes = 262144;
  /// nextOwn(): the record is libpcap's to read (or to reject).
  static constexpr int kToLibpcap = 2;

  void startOwnReader(std::FILE* f);
  int nextOwn(CapturedFrame& frame);
  bool fill(size_t n);

  ::pcap* pcap_ = nullptr;
  std::unique_ptr<char[]> read_buffer_;  // outlives pcap_ (closed in ~PcapSource)
  int dlt_ = 0;
  uint64_t file_size_ = 0;
  // The classic pcap reader: records parsed straight from large reads of
  // the file, as libpcap would return them, without its two freads and
  // copy per packet. Anything it does not take is handed to libpcap.
  bool own_ = false;
  bool swapped_ = false;
  bool nanos_ = false;
  int fd_ = -1;  // the FILE's descriptor, owned by libpcap
  uint32_t max_caplen_ = 0;
  std::unique_ptr<uint8_t[]> own_buffer_;
  uint64_t buffer_offset_ = 0;  // file offset of own_buffer_[0]
  size_t buffer_len_ = 0;
  size_t buffer_pos_ = 0;
};

}  // namespace l7tap
