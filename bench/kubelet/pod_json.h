// One pod of the kubelet's /pods list, generated: shared by the pod list
// cost and the metadata cost (which builds a /proc whose cgroups name the
// same pod UIDs and container ids).
#pragma once

#include <cstdio>
#include <string>

namespace l7tap::bench {

/// Pod i's UID, as the list gives it.
inline std::string podUid(int i) {
  char uid[40];
  std::snprintf(uid, sizeof uid, "5a1c2e3f-%04x-4000-8000-%012d", i & 0xffff, i);
  return uid;
}

/// Container n of pod i (1: app, 2: envoy), without the runtime's scheme.
inline std::string podContainerId(int i, int n) {
  char id[80];
  std::snprintf(id, sizeof id, "%056x%08x", n, i);
  return id;
}

/// Pod i's address.
inline std::string podIp(int i) {
  char ip[32];
  std::snprintf(ip, sizeof ip, "10.%d.%d.%d", 1 + i / 65536, (i / 256) % 256, i % 256);
  return ip;
}

// One pod of a Deployment with two containers, about 9 KB of JSON: the
// fields l7tap reads and the many it does not (env, probes, volumes,
// conditions, managed fields), as a real kubelet's /pods returns them.
inline std::string podJson(int i) {
  char hash[16];
  const std::string uid = podUid(i);
  const std::string ip = podIp(i);
  std::snprintf(hash, sizeof hash, "%08x", 0x7d9f0000 + i / 10);
  std::string env;
  for (int e = 0; e < 12; ++e) {
    env += std::string(e ? "," : "") + R"({"name":"SETTING_)" + std::to_string(e) +
           R"(","value":"some-configuration-value-of-moderate-length-)" + std::to_string(e) +
           R"("})";
  }
  auto container = [&](const char* name, int n) {
    const std::string id = "containerd://" + podContainerId(i, n);
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
    const std::string id = "containerd://" + podContainerId(i, n);
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

}  // namespace l7tap::bench
