#include "daemon/pcap_source.h"

#include <pcap/pcap.h>
#include <sys/stat.h>

#include "tc/window_policy.h"

namespace l7tap {

namespace {
// Packets between two keep_going questions (a mask): often enough that a
// closed output ends a large replay at once, rarely enough to cost nothing.
constexpr uint64_t kKeepGoingEvery = 0x3ff;
}  // namespace

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
  pcap_ = pcap_open_offline_with_tstamp_precision(path.c_str(), PCAP_TSTAMP_PRECISION_NANO, errbuf);
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

bool PcapSource::replay(Pipeline& pipeline, CapturePolicy& policy, ReplayStats& stats,
                        std::string& error, const std::function<void(uint64_t, uint64_t)>& progress,
                        const std::function<bool()>& keep_going) {
  const PacketDecoder decoder(dlt_);
  pcap_pkthdr* header;
  const u_char* data;
  SegmentEvent segment;
  for (;;) {
    const int rc = pcap_next_ex(pcap_, &header, &data);
    if (rc == PCAP_ERROR_BREAK) return true;  // end of file
    if (rc != 1) {
      error = pcap_geterr(pcap_);
      return false;
    }
    stats.packets++;
    stats.captured_bytes += header->caplen;
    const DecodeResult result =
        decoder.decode({data, header->caplen}, L7TAP_WINDOW_UNLIMITED, segment);
    stats.by_result[static_cast<int>(result)]++;
    if (result == DecodeResult::kSegment) {
      // Opened with nanosecond precision: tv_usec holds nanoseconds.
      segment.ts_ns = static_cast<uint64_t>(header->ts.tv_sec) * 1000000000u +
                      static_cast<uint64_t>(header->ts.tv_usec);
      segment.ifindex = 0;
      policy.apply(segment, [&](const SegmentEvent& seg) { pipeline.onSegment(seg); });
    }
    if (keep_going && (stats.packets & kKeepGoingEvery) == 0 && !keep_going()) return true;
    if (progress && (stats.packets & 0xffff) == 0) {
      std::FILE* f = pcap_file(pcap_);
      progress(f ? static_cast<uint64_t>(std::ftell(f)) : 0, file_size_);
    }
  }
}

}  // namespace l7tap
