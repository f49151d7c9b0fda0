// What the pod names cost: a generated pod list in the kubelet's shape
// (each pod as large as a real one, managed fields and all), parsed and
// indexed by the pod cache. Prints the list's size, the parse and refresh
// times (median of runs) and the memory the cache keeps.
//
//   build/bench/l7tap_pod_list_cost [PODS] [--write FILE]
#include <malloc.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "kubelet/pod_cache.h"
#include "kubelet/pod_list.h"

namespace {

using namespace l7tap;

// One pod of a Deployment with two containers, about 9 KB of JSON: the
// fields l7tap reads and the many it does not (env, probes, volumes,
// conditions, managed fields), as a real kubelet's /pods returns them.
std::string podJson(int i) {
  char id[80], uid[40], ip[32], hash[16];
  std::snprintf(uid, sizeof uid, "5a1c2e3f-%04x-4000-8000-%012d", i & 0xffff, i);
  std::snprintf(ip, sizeof ip, "10.%d.%d.%d", 1 + i / 65536, (i / 256) % 256, i % 256);
  std::snprintf(hash, sizeof hash, "%08x", 0x7d9f0000 + i / 10);
  std::string env;
  for (int e = 0; e < 12; ++e) {
    env += std::string(e ? "," : "") + R"({"name":"SETTING_)" + std::to_string(e) +
           R"(","value":"some-configuration-value-of-moderate-length-)" + std::to_string(e) +
           R"("})";
  }
  auto container = [&](const char* name, int n) {
    std::snprintf(id, sizeof id, "containerd://%056x%08x", n, i);
    return std::string(R"({"name":")") + name + R"(","image":"registry.example.com/shop/)" + name +
           R"(:1.2.3","env":[)" + env +
           R"(],"ports":[{"name":"http","containerPort":8080,"protocol":"TCP"}],)"
           R"("resources":{"limits":{"cpu":"500m","memory":"256Mi"},"requests":{"cpu":"100m","memory":"128Mi"}},)"
           R"("volumeMounts":[{"name":"kube-api-access-x2k4p","readOnly":true,"mountPath":"/var/run/secrets/kubernetes.io/serviceaccount"}],)"
           R"("livenessProbe":{"httpGet":{"path":"/healthz","port":8080,"scheme":"HTTP"},"timeoutSeconds":1,"periodSeconds":10},)"
           R"("readinessProbe":{"httpGet":{"path":"/ready","port":8080,"scheme":"HTTP"},"timeoutSeconds":1,"periodSeconds":5},)"
           R"("terminationMessagePath":"/dev/termination-log","imagePullPolicy":"IfNotPresent"})";
  };
  auto status = [&](const char* name, int n) {
    std::snprintf(id, sizeof id, "containerd://%056x%08x", n, i);
    return std::string(R"({"name":")") + name +
           R"(","state":{"running":{"startedAt":"2026-12-04T10:00:00Z"}},"lastState":{},"ready":true,)"
           R"("restartCount":0,"image":"registry.example.com/shop/)" +
           name +
           R"(:1.2.3","imageID":"registry.example.com/shop/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",)"
           R"("containerID":")" +
           id + R"(","started":true})";
  };
  const std::string deploy = "service-" + std::to_string(i / 10);
  return std::string(R"({"metadata":{"name":")") + deploy + "-" + hash + "-" + std::to_string(i) +
         R"(","generateName":")" + deploy + "-" + hash + R"(-","namespace":"shop","uid":")" + uid +
         R"(","resourceVersion":"123456789","creationTimestamp":"2026-12-04T10:00:00Z",)"
         R"("labels":{"app":")" +
         deploy + R"(","pod-template-hash":")" + hash +
         R"(","team":"payments"},"annotations":{"kubectl.kubernetes.io/restartedAt":"2026-12-01T00:00:00Z",)"
         R"("prometheus.io/scrape":"true","prometheus.io/port":"9090"},)"
         R"("ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":")" +
         deploy + "-" + hash +
         R"(","uid":"aaaaaaaa-0000-4000-8000-000000000001","controller":true,"blockOwnerDeletion":true}],)"
         R"("managedFields":[{"manager":"kube-controller-manager","operation":"Update","apiVersion":"v1","time":"2026-12-04T10:00:00Z",)"
         R"("fieldsType":"FieldsV1","fieldsV1":{"f:metadata":{"f:generateName":{},"f:labels":{".":{},"f:app":{},"f:pod-template-hash":{}},)"
         R"("f:ownerReferences":{".":{},"k:{\"uid\":\"aaaaaaaa-0000-4000-8000-000000000001\"}":{}}},"f:spec":{"f:containers":{"k:{\"name\":\"app\"}":{".":{},)"
         R"("f:env":{},"f:image":{},"f:imagePullPolicy":{},"f:name":{},"f:ports":{},"f:resources":{}}}}}},)"
         R"({"manager":"kubelet","operation":"Update","apiVersion":"v1","time":"2026-12-04T10:00:05Z","fieldsType":"FieldsV1",)"
         R"("fieldsV1":{"f:status":{"f:conditions":{},"f:containerStatuses":{},"f:hostIP":{},"f:phase":{},"f:podIP":{},"f:podIPs":{},"f:startTime":{}}},"subresource":"status"}]},)"
         R"("spec":{"volumes":[{"name":"kube-api-access-x2k4p","projected":{"sources":[{"serviceAccountToken":{"expirationSeconds":3607,"path":"token"}},)"
         R"({"configMap":{"name":"kube-root-ca.crt","items":[{"key":"ca.crt","path":"ca.crt"}]}}],"defaultMode":420}}],)"
         R"("containers":[)" +
         container("app", 1) + "," + container("envoy", 2) +
         R"(],"restartPolicy":"Always","terminationGracePeriodSeconds":30,"dnsPolicy":"ClusterFirst","serviceAccountName":"default",)"
         R"("nodeName":"node-1","securityContext":{},"schedulerName":"default-scheduler",)"
         R"("tolerations":[{"key":"node.kubernetes.io/not-ready","operator":"Exists","effect":"NoExecute","tolerationSeconds":300}],)"
         R"("priority":0,"enableServiceLinks":true,"preemptionPolicy":"PreemptLowerPriority"},)"
         R"("status":{"phase":"Running","conditions":[{"type":"Initialized","status":"True","lastTransitionTime":"2026-12-04T10:00:00Z"},)"
         R"({"type":"Ready","status":"True","lastTransitionTime":"2026-12-04T10:00:05Z"},{"type":"ContainersReady","status":"True","lastTransitionTime":"2026-12-04T10:00:05Z"},)"
         R"({"type":"PodScheduled","status":"True","lastTransitionTime":"2026-12-04T10:00:00Z"}],)"
         R"("hostIP":"192.168.1.10","podIP":")" +
         ip + R"(","podIPs":[{"ip":")" + ip +
         R"("}],"startTime":"2026-12-04T10:00:00Z","containerStatuses":[)" + status("app", 1) +
         "," + status("envoy", 2) + R"(],"qosClass":"Burstable"}})";
}

class Canned : public PodListSource {
 public:
  bool fetch(std::string& body, std::string&) override {
    body = text;
    return true;
  }
  std::string text;
};

long maxRssKb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss;
}

template <typename F>
double medianMs(int runs, F&& f) {
  std::vector<double> ms;
  for (int r = 0; r < runs; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    ms.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  return ms[ms.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int pods = 1000;
  const char* write = nullptr;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--write") == 0 && i + 1 < argc) {
      write = argv[++i];
    } else {
      pods = std::atoi(argv[i]);
    }
  }
  Canned source;
  source.text = R"({"kind":"PodList","apiVersion":"v1","metadata":{},"items":[)";
  for (int i = 0; i < pods; ++i) source.text += (i ? "," : "") + podJson(i);
  source.text += "]}";
  if (write != nullptr) std::ofstream(write) << source.text;

  KubeletLimits limits;
  PodList list;
  std::string error;
  const long rss_before = maxRssKb();
  const size_t heap_before = mallinfo2().uordblks;
  if (!parsePodList(source.text, limits, list, error)) {
    std::fprintf(stderr, "parse failed: %s\n", error.c_str());
    return 1;
  }
  const size_t heap_list = mallinfo2().uordblks - heap_before;
  const long rss_parse = maxRssKb() - rss_before;
  const double parse_ms = medianMs(11, [&] { parsePodList(source.text, limits, list, error); });
  list = PodList{};

  const size_t heap_cache_before = mallinfo2().uordblks;
  PodCache cache(source, limits);
  cache.refresh(1);
  const size_t heap_cache = mallinfo2().uordblks - heap_cache_before;
  uint64_t t = 2;
  const double refresh_ms = medianMs(11, [&] { cache.refresh(t++); });
  PodAddress a;
  parsePodAddress("10.1.0.7", a);
  const double lookup_ms = medianMs(11, [&] {
    for (int k = 0; k < 1000; ++k) {
      if (!cache.byAddress(a)) std::abort();
    }
  });

  std::printf("pods                  %d (kept %u)\n", pods, cache.stats().pods);
  std::printf("list size             %.1f MB (%.1f KB per pod)\n", source.text.size() / 1e6,
              source.text.size() / 1e3 / pods);
  std::printf("parse                 %.1f ms (median of 11)\n", parse_ms);
  std::printf("refresh (parse+index) %.1f ms (median of 11)\n", refresh_ms);
  std::printf("lookup by address     %.0f ns\n", lookup_ms * 1e6 / 1000);
  std::printf("heap of a parsed list %.2f MB\n", heap_list / 1e6);
  std::printf("heap the cache keeps  %.2f MB\n", heap_cache / 1e6);
  std::printf("peak RSS growth in the first parse %.1f MB\n", rss_parse / 1e3);
  return 0;
}
