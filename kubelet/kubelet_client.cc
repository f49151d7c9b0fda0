#include "kubelet/kubelet_client.h"

#include <curl/curl.h>

#include <fstream>
#include <mutex>

namespace l7tap {

namespace {

struct Download {
  std::string* body;
  size_t max_bytes;
  bool over_limit = false;
};

size_t onData(char* data, size_t size, size_t count, void* user) {
  auto* d = static_cast<Download*>(user);
  const size_t n = size * count;
  if (d->body->size() + n > d->max_bytes) {
    d->over_limit = true;
    return 0;  // curl ends the transfer with CURLE_WRITE_ERROR
  }
  d->body->append(data, n);
  return n;
}

// A token file holds one line; a trailing newline is not part of the token.
bool readToken(const std::string& path, size_t max_bytes, std::string& token, std::string& error) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    error = "cannot read the kubelet token file " + path;
    return false;
  }
  token.assign(max_bytes + 1, '\0');
  in.read(token.data(), static_cast<std::streamsize>(token.size()));
  token.resize(static_cast<size_t>(in.gcount()));
  if (token.size() > max_bytes) {
    error = "kubelet token file " + path + " is over " + std::to_string(max_bytes) + " bytes";
    return false;
  }
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r' || token.back() == ' ')) {
    token.pop_back();
  }
  if (token.empty() || token.find_first_of("\r\n") != std::string::npos) {
    error = "kubelet token file " + path + " does not hold one token";
    return false;
  }
  return true;
}

}  // namespace

KubeletClient::KubeletClient(KubeletClientConfig config) : config_(std::move(config)) {
  // curl_global_init is not thread-safe: once per process, whatever the clients.
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  pods_url_ = config_.url;
  while (!pods_url_.empty() && pods_url_.back() == '/') pods_url_.pop_back();
  pods_url_ += "/pods";
  curl_ = curl_easy_init();
}

KubeletClient::~KubeletClient() {
  if (curl_ != nullptr) curl_easy_cleanup(static_cast<CURL*>(curl_));
}

bool KubeletClient::fetch(std::string& body, std::string& error) {
  body.clear();
  CURL* c = static_cast<CURL*>(curl_);
  if (c == nullptr) {
    error = "libcurl could not be initialised";
    return false;
  }
  std::string auth;
  if (!config_.token_file.empty()) {
    std::string token;
    if (!readToken(config_.token_file, config_.limits.max_token_bytes, token, error)) return false;
    auth = "Authorization: Bearer " + token;
  }
  curl_slist* headers = curl_slist_append(nullptr, "Accept: application/json");
  if (!auth.empty()) headers = curl_slist_append(headers, auth.c_str());

  Download d{&body, config_.limits.max_response_bytes};
  char curl_error[CURL_ERROR_SIZE] = {};
  curl_easy_reset(c);
  curl_easy_setopt(c, CURLOPT_URL, pods_url_.c_str());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  // Signals for timeouts would hit the caller's threads; the timeouts still hold without them.
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(config_.limits.connect_timeout_ms));
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(config_.limits.total_timeout_ms));
  curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE,
                   static_cast<curl_off_t>(config_.limits.max_response_bytes));
  curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");  // gzip if the kubelet offers it
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, onData);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &d);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, curl_error);
  if (config_.insecure) {
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
  } else if (!config_.ca_file.empty()) {
    curl_easy_setopt(c, CURLOPT_CAINFO, config_.ca_file.c_str());
  }

  const CURLcode rc = curl_easy_perform(c);
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  // The handle keeps pointers to these; drop them before they go.
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, nullptr);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, nullptr);
  curl_slist_free_all(headers);

  if (d.over_limit || rc == CURLE_FILESIZE_EXCEEDED) {
    error = pods_url_ + ": response over " + std::to_string(config_.limits.max_response_bytes) +
            " bytes";
  } else if (rc != CURLE_OK) {
    error = pods_url_ + ": " + (curl_error[0] != '\0' ? curl_error : curl_easy_strerror(rc));
  } else if (status != 200) {
    error = pods_url_ + ": HTTP " + std::to_string(status);
  } else {
    return true;
  }
  body.clear();
  return false;
}

}  // namespace l7tap
