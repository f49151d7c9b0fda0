#include "daemon/replay.h"

namespace l7tap {

namespace {
// Packets between two keep_going questions (a mask): often enough that a
// closed output ends a large replay at once, rarely enough to cost nothing.
constexpr uint64_t kKeepGoingEvery = 0x3ff;
// Packets between two progress reports (a mask).
constexpr uint64_t kProgressEvery = 0xffff;
}  // namespace

Replay::Replay(Pipeline& pipeline, const ReplayOptions& options)
    : pipeline_(pipeline),
      capture_(options.window, options.capture_control),
      control_(options.capture_control) {
  if (control_) {
    pipeline_.setCaptureControl(&capture_);
    // The capture's per-flow state goes when the flow table closes the flow.
    pipeline_.setCloseHook(&capture_);
  }
}

Replay::~Replay() {
  if (control_) {
    pipeline_.setCaptureControl(nullptr);
    pipeline_.setCloseHook(nullptr);
  }
}

void Replay::onFrame(const PacketDecoder& decoder, std::span<const uint8_t> frame,
                     uint32_t wire_len, uint64_t ts_ns) {
  stats_.packets++;
  stats_.captured_bytes += frame.size();
  l7tap_packet pkt{};
  const DecodeResult result = decoder.parse(frame, wire_len, pkt);
  stats_.by_result[static_cast<int>(result)]++;
  if (result == DecodeResult::kFragment) onFragment(decoder, frame, pkt, ts_ns);
  if (result != DecodeResult::kSegment) return;
  pkt.ts_ns = ts_ns;
  capture_.capture(pkt, frame, *this);
}

void Replay::onFragment(const PacketDecoder& decoder, std::span<const uint8_t> frame,
                        const l7tap_packet& fragment, uint64_t ts_ns) {
  if (fragment.frag_off >= frame.size()) return;
  // Fragments of tunnelled packets are reassembled per tunnel, as by the
  // receiving host's tunnel device.
  const l7tap_tunnel& tunnel = fragment.tunnel;
  const uint64_t scope = tunnel.type == L7TAP_TUNNEL_NONE
                             ? 0
                             : uint64_t{tunnel.type} << 32 | (tunnel.has_id ? tunnel.id : 0);
  const std::span<const uint8_t> datagram =
      defrag_.add(frame.subspan(fragment.frag_off), ts_ns, scope);
  stats_.defrag = defrag_.stats();
  if (datagram.empty()) return;
  l7tap_packet pkt{};
  pkt.tunnel = tunnel;  // the outer layers' are not in the rebuilt datagram
  const DecodeResult result =
      decoder.parseDatagram(datagram, static_cast<uint32_t>(datagram.size()), pkt);
  // A fragment inside a rebuilt datagram (fragmented twice, at two layers)
  // is counted here, not reassembled again.
  stats_.reassembled_by_result[static_cast<int>(result)]++;
  if (result != DecodeResult::kSegment) return;
  pkt.ts_ns = ts_ns;
  // The segment's offsets are into the rebuilt datagram, valid for this call.
  capture_.capture(pkt, datagram, *this);
}

bool Replay::run(PcapSource& source, std::string& error,
                 const std::function<void(uint64_t, uint64_t)>& progress,
                 const std::function<bool()>& keep_going) {
  const PacketDecoder decoder(source.linkType());
  CapturedFrame frame;
  for (;;) {
    const int rc = source.next(frame, error);
    if (rc <= 0) {
      endOfCapture();
      return rc == 0;
    }
    onFrame(decoder, frame.data, frame.wire_len, frame.ts_ns);
    if (keep_going && (stats_.packets & kKeepGoingEvery) == 0 && !keep_going()) {
      endOfCapture();
      return true;
    }
    if (progress && (stats_.packets & kProgressEvery) == 0)
      progress(source.offset(), source.size());
  }
}

void Replay::run(const LoadedCapture& capture) {
  const PacketDecoder decoder(capture.dlt);
  for (size_t i = 0; i < capture.frames.size(); ++i) {
    onFrame(decoder, capture.frames[i], capture.wire_len[i], capture.ts_ns[i]);
  }
  endOfCapture();
}

void Replay::endOfCapture() { stats_.defrag_incomplete += defrag_.clear(); }

}  // namespace l7tap
