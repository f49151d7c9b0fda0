#include "daemon/pcap_source.h"

#include <pcap/pcap.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "daemon/packet_decoder.h"

namespace l7tap {

bool loadCapture(const std::string& path, LoadedCapture& out, std::string& error) {
  char errbuf[PCAP_ERRBUF_SIZE] = {};
  pcap_t* p =
      pcap_open_offline_with_tstamp_precision(path.c_str(), PCAP_TSTAMP_PRECISION_NANO, errbuf);
  if (!p) {
    error = errbuf;
    return false;
  }
  out.dlt = pcap_datalink(p);
  pcap_pkthdr* h;
  const u_char* d;
  while (pcap_next_ex(p, &h, &d) == 1) {
    out.frames.emplace_back(d, d + h->caplen);
    out.wire_len.push_back(h->len);
    out.ts_ns.push_back(static_cast<uint64_t>(h->ts.tv_sec) * 1000000000u +
                        static_cast<uint64_t>(h->ts.tv_usec));
    out.bytes += h->caplen;
  }
  pcap_close(p);
  return true;
}

PcapSource::~PcapSource() {
  if (pcap_) pcap_close(pcap_);
}

bool PcapSource::open(const std::string& path, std::string& error) {
  char errbuf[PCAP_ERRBUF_SIZE] = {};
  if (path == "-") {  // libpcap's name for standard input
    pcap_ =
        pcap_open_offline_with_tstamp_precision(path.c_str(), PCAP_TSTAMP_PRECISION_NANO, errbuf);
  } else {
    // libpcap reads a packet with two freads (record header, then data);
    // through stdio's default buffer (one block) that is a read(2) per few
    // packets. A large buffer makes it one per kReadBufferBytes.
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (f == nullptr) {
      error = path + ": " + std::strerror(errno);
      return false;
    }
    read_buffer_ = std::make_unique<char[]>(kReadBufferBytes);
    std::setvbuf(f, read_buffer_.get(), _IOFBF, kReadBufferBytes);
    pcap_ = pcap_fopen_offline_with_tstamp_precision(f, PCAP_TSTAMP_PRECISION_NANO, errbuf);
    if (!pcap_) std::fclose(f);  // libpcap closes it only once it took it
    if (pcap_) startOwnReader(f);
  }
  if (!pcap_) {
    error = errbuf;
    return false;
  }
  dlt_ = pcap_datalink(pcap_);
  if (!PacketDecoder::supports(dlt_)) {
    const char* name = pcap_datalink_val_to_name(dlt_);
    error = "unsupported link type " + std::to_string(dlt_) +
            (name ? std::string(" (") + name + ")" : "");
    return false;
  }
  struct stat st;
  if (stat(path.c_str(), &st) == 0) file_size_ = static_cast<uint64_t>(st.st_size);
  return true;
}

void PcapSource::startOwnReader(std::FILE* f) {
  // Classic pcap 2.4 only, on link types libpcap passes through unchanged
  // (its post-processing touches USB and NFLOG headers only); pcapng and
  // the rest stay with libpcap.
  switch (pcap_datalink(pcap_)) {
    case DLT_EN10MB:
    case DLT_LINUX_SLL:
    case DLT_LINUX_SLL2:
    case DLT_RAW:
    case DLT_IPV4:
    case DLT_IPV6:
      break;
    default:
      return;
  }
  if (pcap_major_version(pcap_) != 2 || pcap_minor_version(pcap_) != 4) return;
  const int fd = fileno(f);
  uint32_t magic = 0;
  if (fd < 0 || pread(fd, &magic, sizeof magic, 0) != static_cast<ssize_t>(sizeof magic)) return;
  constexpr uint32_t kMicros = 0xa1b2c3d4;
  constexpr uint32_t kNanos = 0xa1b23c4d;
  if (magic == kMicros || magic == kNanos) {
    swapped_ = false;
  } else if (magic == __builtin_bswap32(kMicros) || magic == __builtin_bswap32(kNanos)) {
    swapped_ = true;
    magic = __builtin_bswap32(magic);
  } else {
    return;
  }
  if (swapped_ != (pcap_is_swapped(pcap_) != 0)) return;
  nanos_ = magic == kNanos;
  const int snap = pcap_snapshot(pcap_);
  if (snap <= 0) return;
  max_caplen_ = std::min<uint32_t>(static_cast<uint32_t>(snap), kMaxOwnRecordBytes);
  fd_ = fd;
  own_buffer_ = std::make_unique<uint8_t[]>(kReadBufferBytes);
  buffer_offset_ = 24;  // the file header, read by libpcap
  own_ = true;
}

// At least `n` bytes from buffer_pos_ on in the buffer; false at the end of
// the file or on a read error (libpcap then reads and reports it).
bool PcapSource::fill(size_t n) {
  if (buffer_len_ - buffer_pos_ >= n) return true;
  std::memmove(own_buffer_.get(), own_buffer_.get() + buffer_pos_, buffer_len_ - buffer_pos_);
  buffer_offset_ += buffer_pos_;
  buffer_len_ -= buffer_pos_;
  buffer_pos_ = 0;
  while (buffer_len_ < n) {
    const ssize_t got = pread(fd_, own_buffer_.get() + buffer_len_, kReadBufferBytes - buffer_len_,
                              static_cast<off_t>(buffer_offset_ + buffer_len_));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return false;
    buffer_len_ += static_cast<size_t>(got);
  }
  return true;
}

int PcapSource::nextOwn(CapturedFrame& frame) {
  constexpr size_t kRecordHeader = 16;
  if (!fill(kRecordHeader)) {
    if (buffer_len_ == buffer_pos_ &&
        pread(fd_, own_buffer_.get(), 1, static_cast<off_t>(buffer_offset_ + buffer_len_)) == 0) {
      return 0;  // end of file between records
    }
    return kToLibpcap;
  }
  uint32_t h[4];
  std::memcpy(h, own_buffer_.get() + buffer_pos_, sizeof h);
  if (swapped_) {
    for (uint32_t& v : h) v = __builtin_bswap32(v);
  }
  const uint32_t caplen = h[2];
  if (caplen > max_caplen_ || caplen > h[3] || !fill(kRecordHeader + caplen)) return kToLibpcap;
  frame.data = {own_buffer_.get() + buffer_pos_ + kRecordHeader, caplen};
  frame.wire_len = h[3];
  frame.ts_ns = static_cast<uint64_t>(h[0]) * 1000000000u +
                static_cast<uint64_t>(h[1]) * (nanos_ ? 1u : 1000u);
  buffer_pos_ += kRecordHeader + caplen;
  return 1;
}

int PcapSource::next(CapturedFrame& frame, std::string& error) {
  if (own_) {
    const int rc = nextOwn(frame);
    if (rc != kToLibpcap) return rc;
    // From this record on libpcap reads, with its checks and its errors.
    own_ = false;
    if (std::fseek(pcap_file(pcap_), static_cast<long>(buffer_offset_ + buffer_pos_), SEEK_SET) !=
        0) {
      error = std::string("seek: ") + std::strerror(errno);
      return -1;
    }
  }
  pcap_pkthdr* header;
  const u_char* data;
  const int rc = pcap_next_ex(pcap_, &header, &data);
  if (rc == PCAP_ERROR_BREAK) return 0;  // end of file
  if (rc != 1) {
    error = pcap_geterr(pcap_);
    return -1;
  }
  frame.data = {data, header->caplen};
  frame.wire_len = header->len;
  // Opened with nanosecond precision: tv_usec holds nanoseconds.
  frame.ts_ns = static_cast<uint64_t>(header->ts.tv_sec) * 1000000000u +
                static_cast<uint64_t>(header->ts.tv_usec);
  return 1;
}

uint64_t PcapSource::offset() const {
  if (own_) return buffer_offset_ + buffer_pos_;
  std::FILE* f = pcap_file(pcap_);
  return f ? static_cast<uint64_t>(std::ftell(f)) : 0;
}

}  // namespace l7tap
