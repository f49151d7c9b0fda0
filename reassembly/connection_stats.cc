#include "reassembly/connection_stats.h"

namespace l7tap {

const DirectionAnomalies DirectionStats::kNoAnomalies{};

const char* toString(CloseReason r) {
  switch (r) {
    case CloseReason::kFin:
      return "fin";
    case CloseReason::kRst:
      return "rst";
    case CloseReason::kIdle:
      return "idle";
    case CloseReason::kPortReuse:
      return "port_reuse";
    case CloseReason::kEvicted:
      return "evicted";
    case CloseReason::kEndOfInput:
      return "end_of_input";
  }
  return "unknown";
}

const char* tunnelTypeName(uint8_t type) {
  switch (type) {
    case L7TAP_TUNNEL_VXLAN:
      return "vxlan";
    case L7TAP_TUNNEL_GENEVE:
      return "geneve";
    case L7TAP_TUNNEL_GRE:
      return "gre";
    case L7TAP_TUNNEL_IPIP:
      return "ipip";
    case L7TAP_TUNNEL_6IN4:
      return "6in4";
    case L7TAP_TUNNEL_4IN6:
      return "4in6";
    case L7TAP_TUNNEL_6IN6:
      return "6in6";
    case L7TAP_TUNNEL_PPPOE:
      return "pppoe";
    default:
      return nullptr;
  }
}

const char* ConnectionInfo::state() const {
  // Zeek's conn_state values, from the flags each side sent.
  const uint8_t o = tcp_flags_seen[0];
  const uint8_t r = tcp_flags_seen[1];
  const bool syn = (o & L7TAP_TCP_SYN) != 0;
  const bool orig_fin = o & L7TAP_TCP_FIN, resp_fin = r & L7TAP_TCP_FIN;
  const bool orig_rst = o & L7TAP_TCP_RST, resp_rst = r & L7TAP_TCP_RST;
  if (!syn && !synack_seen) return "OTH";
  if (syn && !synack_seen) {
    if (resp_rst) return "REJ";
    if (orig_rst) return "RSTOS0";
    if (orig_fin) return "SH";
    return "S0";
  }
  if (!syn) {  // SYN-ACK without the SYN
    if (resp_rst) return "RSTRH";
    if (resp_fin) return "SHR";
    return "OTH";
  }
  if (orig_rst) return "RSTO";
  if (resp_rst) return "RSTR";
  if (orig_fin && resp_fin) return "SF";
  if (orig_fin) return "S2";
  if (resp_fin) return "S3";
  return "S1";
}

}  // namespace l7tap
