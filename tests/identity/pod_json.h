// Pod list documents in the kubelet's JSON shape, built in tests.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace l7tap::testing {

struct PodJson {
  std::string name, ns, uid, ip;
  std::string owner_kind;  ///< "ReplicaSet", "StatefulSet", ... or empty
  std::string owner_name;
  std::string template_hash;                                    ///< label pod-template-hash
  std::vector<std::pair<std::string, std::string>> containers;  ///< name, containerd id
  bool host_network = false;
  bool terminating = false;
  std::string node = "node-1";
};

inline std::string podJson(const PodJson& p) {
  std::string s = "{\"metadata\":{\"name\":\"" + p.name + "\",\"namespace\":\"" + p.ns +
                  "\",\"uid\":\"" + p.uid + "\"";
  if (!p.template_hash.empty()) {
    s += ",\"labels\":{\"pod-template-hash\":\"" + p.template_hash + "\"}";
  }
  if (!p.owner_kind.empty()) {
    s += ",\"ownerReferences\":[{\"kind\":\"" + p.owner_kind + "\",\"name\":\"" + p.owner_name +
         "\",\"controller\":true}]";
  }
  if (p.terminating) s += ",\"deletionTimestamp\":\"2026-12-04T00:00:00Z\"";
  s += "},\"spec\":{\"nodeName\":\"" + p.node + "\"";
  if (p.host_network) s += ",\"hostNetwork\":true";
  s += ",\"containers\":[";
  for (size_t i = 0; i < p.containers.size(); ++i) {
    s += (i ? ",{\"name\":\"" : "{\"name\":\"") + p.containers[i].first + "\"}";
  }
  s += "]},\"status\":{\"phase\":\"Running\"";
  if (!p.ip.empty()) s += ",\"podIP\":\"" + p.ip + "\",\"podIPs\":[{\"ip\":\"" + p.ip + "\"}]";
  s += ",\"containerStatuses\":[";
  for (size_t i = 0; i < p.containers.size(); ++i) {
    s += (i ? ",{\"name\":\"" : "{\"name\":\"") + p.containers[i].first +
         "\",\"containerID\":\"containerd://" + p.containers[i].second + "\"}";
  }
  return s + "]}}";
}

inline std::string podListJson(const std::vector<PodJson>& pods) {
  std::string s = "{\"kind\":\"PodList\",\"apiVersion\":\"v1\",\"items\":[";
  for (size_t i = 0; i < pods.size(); ++i) s += (i ? "," : "") + podJson(pods[i]);
  return s + "]}";
}

}  // namespace l7tap::testing
