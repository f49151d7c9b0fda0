// What metadata/ reads from another process's /proc files, which that
// process (a pod) controls in part: cgroup paths, the TCP tables, fd link
// texts. Arbitrary bytes never crash or throw, and what is kept stays
// within its bounds.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "metadata/cgroup_path.h"
#include "metadata/socket_owner.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const l7tap::metadata::CgroupIdentity cg = l7tap::metadata::parseProcCgroup(text);
  // A pod UID is normalised (36 characters with dashes) or absent.
  if (!cg.pod_uid.empty() && cg.pod_uid.size() != 36) std::abort();
  if (!cg.container_id.empty() && cg.container_id.size() != 64) std::abort();

  constexpr uint32_t kMaxRows = 8;
  l7tap::metadata::TcpTable table;
  l7tap::metadata::parseListenRows(text, kMaxRows, &table);
  if (table.rows > kMaxRows || table.listening.size() > table.rows) std::abort();
  for (size_t start = 0; start < text.size();) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    if (const auto row = l7tap::metadata::parseTcpRow(text.substr(start, end - start))) {
      (void)row->inode;
    }
    start = end + 1;
  }
  (void)l7tap::metadata::parseSocketLink(text);
  return 0;
}
