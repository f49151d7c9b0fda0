// HTTP/2 frame layout (RFC 9113 section 4 and 6) and the plausibility rules
// used to find a frame boundary in bytes of unknown alignment.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "tc/frame_walk.h"

namespace l7tap::h2 {

/// The client connection preface (RFC 9113 section 3.4), as the kernel's
/// frame walk knows it: one definition for both.
inline constexpr std::string_view kClientPreface = L7TAP_H2_PREFACE;
inline constexpr size_t kClientPrefaceBytes = L7TAP_H2_PREFACE_LEN;
static_assert(kClientPreface.size() == kClientPrefaceBytes);

enum FrameType : uint8_t {
  kData = 0x0,
  kHeaders = 0x1,
  kPriority = 0x2,
  kRstStream = 0x3,
  kSettings = 0x4,
  kPushPromise = 0x5,
  kPing = 0x6,
  kGoaway = 0x7,
  kWindowUpdate = 0x8,
  kContinuation = 0x9,
};

constexpr uint8_t kEndStream = 0x1;
constexpr uint8_t kAck = 0x1;
constexpr uint8_t kEndHeaders = 0x4;
constexpr uint8_t kPadded = 0x8;
constexpr uint8_t kPriorityFlag = 0x20;

constexpr size_t kFrameHeaderBytes = 9;
/// SETTINGS_MAX_FRAME_SIZE until the receiver raises it.
constexpr uint32_t kDefaultMaxFrameSize = 16384;
constexpr uint32_t kLargestFrameSize = (1u << 24) - 1;

constexpr uint16_t kSettingsHeaderTableSize = 0x1;
constexpr uint16_t kSettingsMaxFrameSize = 0x5;

struct FrameHeader {
  uint32_t length = 0;
  uint8_t type = 0;
  uint8_t flags = 0;
  bool reserved = false;  ///< the reserved bit before the stream id
  uint32_t stream_id = 0;
};

inline FrameHeader decodeFrameHeader(const uint8_t* p) {
  FrameHeader h;
  h.length = (uint32_t{p[0]} << 16) | (uint32_t{p[1]} << 8) | p[2];
  h.type = p[3];
  h.flags = p[4];
  h.reserved = (p[5] & 0x80) != 0;
  h.stream_id =
      ((uint32_t{p[5]} & 0x7f) << 24) | (uint32_t{p[6]} << 16) | (uint32_t{p[7]} << 8) | p[8];
  return h;
}

/// Who sent the frame, when known: clients open odd streams and never send
/// PUSH_PROMISE.
enum class Sender : uint8_t { kClient, kServer, kUnknown };

/// True when `h` is a frame a conforming peer could send: known type, reserved
/// bit clear, length within `max_length` and the type's fixed or minimum size,
/// only the type's defined flags, and the stream id zero or not (and odd for
/// client-initiated streams) as the type requires. Stricter than the RFC
/// (which allows undefined flags) because it is used to reject misaligned bytes.
bool plausibleFrameHeader(const FrameHeader& h, Sender sender, uint32_t max_length);

}  // namespace l7tap::h2
