#include "parsers/http2/frame.h"

namespace l7tap::h2 {

namespace {

bool onlyFlags(uint8_t flags, uint8_t allowed) { return (flags & ~allowed) == 0; }

// Streams a client sends HEADERS, DATA or CONTINUATION on are the odd ones
// it opened (it cannot send on streams the server pushed).
bool streamOkFor(Sender sender, uint32_t stream_id) {
  if (stream_id == 0) return false;
  return sender != Sender::kClient || (stream_id & 1) == 1;
}

}  // namespace

bool plausibleFrameHeader(const FrameHeader& h, Sender sender, uint32_t max_length) {
  if (h.reserved || h.length > max_length) return false;
  const uint32_t padded = (h.flags & kPadded) ? 1 : 0;
  switch (h.type) {
    case kData:
      return streamOkFor(sender, h.stream_id) && onlyFlags(h.flags, kEndStream | kPadded) &&
             h.length >= padded;
    case kHeaders:
      return streamOkFor(sender, h.stream_id) &&
             onlyFlags(h.flags, kEndStream | kEndHeaders | kPadded | kPriorityFlag) &&
             h.length >= padded + ((h.flags & kPriorityFlag) ? 5 : 0);
    case kPriority:
      return h.stream_id != 0 && h.flags == 0 && h.length == 5;
    case kRstStream:
      return h.stream_id != 0 && h.flags == 0 && h.length == 4;
    case kSettings:
      return h.stream_id == 0 && onlyFlags(h.flags, kAck) &&
             ((h.flags & kAck) ? h.length == 0 : h.length % 6 == 0);
    case kPushPromise:
      return sender != Sender::kClient && h.stream_id != 0 && (h.stream_id & 1) == 1 &&
             onlyFlags(h.flags, kEndHeaders | kPadded) && h.length >= 4 + padded;
    case kPing:
      return h.stream_id == 0 && onlyFlags(h.flags, kAck) && h.length == 8;
    case kGoaway:
      return h.stream_id == 0 && h.flags == 0 && h.length >= 8;
    case kWindowUpdate:
      return h.flags == 0 && h.length == 4;
    case kContinuation:
      return streamOkFor(sender, h.stream_id) && onlyFlags(h.flags, kEndHeaders);
    default:
      return false;
  }
}

}  // namespace l7tap::h2
