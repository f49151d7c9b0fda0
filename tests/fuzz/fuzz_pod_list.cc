// The kubelet pod list parser and the pod cache on arbitrary bytes: never a
// throw or a crash, and what is kept stays within the limits.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "kubelet/pod_cache.h"
#include "kubelet/pod_list.h"

namespace {

class OneAnswer : public l7tap::PodListSource {
 public:
  explicit OneAnswer(std::string body) : body_(std::move(body)) {}
  bool fetch(std::string& body, std::string&) override {
    body = body_;
    return true;
  }

 private:
  std::string body_;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  l7tap::KubeletLimits limits;
  limits.max_pods = 16;  // small bounds, so the fuzzer reaches them
  limits.max_containers_per_pod = 3;
  limits.max_ips_per_pod = 2;
  limits.max_string_bytes = 40;
  const std::string text(reinterpret_cast<const char*>(data), size);
  l7tap::PodList list;
  std::string error;
  if (l7tap::parsePodList(text, limits, list, error)) {
    if (list.pods.size() > limits.max_pods) std::abort();
    for (const l7tap::Pod& p : list.pods) {
      if (p.name.empty() || p.uid.empty() || p.namespace_name.empty()) std::abort();
      if (p.name.size() > limits.max_string_bytes || p.uid.size() > limits.max_string_bytes ||
          p.workload_name.size() > limits.max_string_bytes) {
        std::abort();
      }
      if (p.containers.size() > limits.max_containers_per_pod) std::abort();
      if (p.addresses.size() > limits.max_ips_per_pod) std::abort();
    }
  } else if (error.empty()) {
    std::abort();
  }
  OneAnswer source(text);
  l7tap::PodCache cache(source, limits);
  cache.refresh(1);
  for (const l7tap::Pod& p : list.pods) {
    if (!cache.byUid(p.uid)) std::abort();  // the first of a UID is kept, so every UID is found
  }
  return 0;
}
