// Fetching the pod list from the kubelet's HTTPS API (libcurl).
#pragma once

#include <string>

#include "kubelet/limits.h"

namespace l7tap {

/// Where pod lists come from: the kubelet, or a test's canned answers.
class PodListSource {
 public:
  virtual ~PodListSource() = default;
  /// Fills `body` with one PodList document; false with `error` set on any failure.
  virtual bool fetch(std::string& body, std::string& error) = 0;
};

/// The service account's files, mounted in every pod that has one.
inline constexpr const char* kServiceAccountToken =
    "/var/run/secrets/kubernetes.io/serviceaccount/token";
inline constexpr const char* kServiceAccountCa =
    "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";

struct KubeletClientConfig {
  /// `https://NODE:10250` (or `http://NODE:10255`, a read-only port); `/pods` is appended.
  std::string url;
  /// Read at every request, since projected tokens rotate. Empty: no Authorization header.
  std::string token_file;
  /// Verifies the kubelet's certificate. Empty: the system's CAs.
  std::string ca_file;
  /// No certificate or host name check (test clusters whose kubelet has a self-signed cert).
  bool insecure = false;
  KubeletLimits limits;
};

/// GET <url>/pods with a Bearer token. Blocks for at most the configured
/// total timeout. One client per thread.
class KubeletClient final : public PodListSource {
 public:
  explicit KubeletClient(KubeletClientConfig config);
  ~KubeletClient() override;
  KubeletClient(const KubeletClient&) = delete;
  KubeletClient& operator=(const KubeletClient&) = delete;

  bool fetch(std::string& body, std::string& error) override;

 private:
  KubeletClientConfig config_;
  std::string pods_url_;
  void* curl_ = nullptr;  // CURL*, kept so the connection is reused between refreshes
};

}  // namespace l7tap
