#include "daemon/pcap_source.h"

#include <pcap/pcap.h>
#include <sys/stat.h>

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

int PcapSource::next(CapturedFrame& frame, std::string& error) {
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
  std::FILE* f = pcap_file(pcap_);
  return f ? static_cast<uint64_t>(std::ftell(f)) : 0;
}

}  // namespace l7tap
