#include "daemon/live_config.h"

namespace l7tap {

bool checkLiveConfig(const LiveConfig& config, std::string& error) {
  using L = LiveLimits;
  const uint32_t ring_kb = config.ring_bytes >> 10;
  if (config.window == 0 || config.window > L::kMaxWindow) {
    error = "the window must be 1.." + std::to_string(L::kMaxWindow) + " bytes live";
  } else if (config.ports.size() > L::kMaxPorts || config.cidrs.size() > L::kMaxCidrs) {
    error = "at most " + std::to_string(L::kMaxPorts) + " ports and " +
            std::to_string(L::kMaxCidrs) + " CIDRs";
  } else if ((config.ring_bytes & 1023) != 0 || ring_kb < L::kMinRingKb ||
             ring_kb > L::kMaxRingKb || (ring_kb & (ring_kb - 1)) != 0) {
    error = "the ring buffer must be a power of two of " + std::to_string(L::kMinRingKb) + ".." +
            std::to_string(L::kMaxRingKb) + " KB";
  } else if (config.drain_interval_ms == 0 || config.drain_interval_ms > L::kMaxDrainMs) {
    error = "the drain interval must be 1.." + std::to_string(L::kMaxDrainMs) + " ms";
  } else if (config.interim_interval_ns > L::kMaxInterimSeconds * 1000000000ull) {
    error = "interim records must be at most " + std::to_string(L::kMaxInterimSeconds) + " s apart";
  } else {
    return true;
  }
  return false;
}

}  // namespace l7tap
