#include "parsers/http1/http1_parser.h"

#include <algorithm>
#include <cstring>
#include <iterator>
#include <string_view>
#include <utility>
#include <vector>

#include "llhttp.h"
#include "parsers/http1/resync.h"

namespace l7tap {
namespace {

// on_headers_complete return values (llhttp.h, llhttp_settings_s).
constexpr int kNoBody = 1;
constexpr int kNoBodyUpgrade = 2;

// Bytes kept of an Upgrade header value: enough to find "h2c" in it.
constexpr size_t kMaxUpgradeValueBytes = 64;
// Longest header name we look at ("content-type").
constexpr size_t kMaxInterestingNameBytes = 16;
// Whitespace looked past when checking for obs-fold before a header value.
constexpr size_t kMaxFoldWhitespace = 16;
// A request line is the URL plus the method, the version and separators.
constexpr size_t kRequestLineOverhead = 64;

enum class SideState : uint8_t {
  kResync,          // looking for a message boundary (start, gap, error)
  kParse,           // aligned: llhttp parses
  kUpgradePending,  // client: Upgrade/CONNECT sent, waiting for the answer
  kEnded,           // FIN/RST seen: ignore further bytes
  kRejected,        // client: a request a server rejects (400, close): count, ignore
  // After an HTTP/0.9 request (`GET target CRLF`, no version), the last of
  // its connection: the client's further bytes are ignored, the server's
  // are the response body, without status line or headers, until it closes.
  kHttp09,
};

enum class BodyKind : uint8_t { kNone, kFixed, kChunked, kEof };

enum class Field : uint8_t { kNone, kHost, kUserAgent, kContentType, kUpgrade, kContentLength };

// What a callback asked the feed loop to do once llhttp returns HPE_PAUSED:
// the pause is how we learn the byte position of the event.
enum PauseBit : uint8_t {
  kPauseBegin = 1,
  kPauseHeadersEnd = 2,
  kPauseComplete = 4,
  kPauseHttp09 = 8,  // a request line without a version ended
};

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

bool equalsLower(std::string_view a, std::string_view lower_b) {
  if (a.size() != lower_b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (lower(a[i]) != lower_b[i]) return false;
  }
  return true;
}

// memcpy of at most 16 bytes without a call: overlapping fixed-size copies
// (header names arrive in pieces of a few bytes).
void copyShort(char* dst, const char* src, size_t n) {
  if (n >= 8) {
    std::memcpy(dst, src, 8);
    std::memcpy(dst + n - 8, src + n - 8, 8);
  } else if (n >= 4) {
    std::memcpy(dst, src, 4);
    std::memcpy(dst + n - 4, src + n - 4, 4);
  } else {
    for (size_t i = 0; i < n; ++i) dst[i] = src[i];
  }
}

// `value` is a comma separated token list; true if `token` (lower case) is in it.
bool hasToken(std::string_view value, std::string_view token) {
  size_t i = 0;
  while (i < value.size()) {
    while (i < value.size() && (value[i] == ' ' || value[i] == '\t' || value[i] == ',')) ++i;
    size_t j = i;
    while (j < value.size() && value[j] != ',' && value[j] != ' ' && value[j] != '\t') ++j;
    if (j > i && equalsLower(value.substr(i, j - i), token)) return true;
    i = j;
  }
  return false;
}

const char* versionOf(const llhttp_t& p) {
  if (p.http_major == 1 && p.http_minor == 1) return "1.1";
  if (p.http_major == 1 && p.http_minor == 0) return "1.0";
  if (p.http_major == 0 && p.http_minor == 9) return "0.9";
  return "";
}

// HttpRecord::clear() frees the strings; this keeps their capacity so a
// reused slot does not allocate in the steady state.
void resetRecord(HttpRecord& r) {
  r.method.clear();
  r.path.clear();
  r.query.clear();
  r.host.clear();
  r.user_agent.clear();
  r.content_type.clear();
  r.version = "";
  r.status = 0;
  r.interim_status = 0;
  r.stream_id = 0;
  r.request_header_bytes = 0;
  r.request_body_bytes = 0;
  r.response_header_bytes = 0;
  r.response_body_bytes = 0;
  r.request_start_ns = 0;
  r.request_end_ns = 0;
  r.response_start_ns = 0;
  r.response_end_ns = 0;
  r.rpc_service.clear();
  r.rpc_method.clear();
  r.grpc_status = -1;
  r.flags = 0;
  r.exchange_l4[kExchangeClient] = r.exchange_l4[kExchangeServer] = ExchangeL4{};
}

}  // namespace

// Objects of type T kept for reuse by every HTTP/1 parser of the thread:
// request slots and the state of messages in flight. A connection holds them
// only while it needs them, so an idle one holds none, and reuse keeps their
// strings' capacity, so the keep-alive steady state allocates nothing. One
// pipeline thread owns every parser: no locks.
template <class T>
class FreeList {
 public:
  FreeList() = default;
  FreeList(const FreeList&) = delete;
  FreeList& operator=(const FreeList&) = delete;
  ~FreeList() {
    while (free_ != nullptr) delete std::exchange(free_, free_->next);
  }

  static FreeList& forThread() {
    thread_local FreeList list;
    return list;
  }

  // A kept object, or null when there is none.
  T* take() {
    if (free_ == nullptr) return nullptr;
    T* p = std::exchange(free_, free_->next);
    --count_;
    p->next = nullptr;
    return p;
  }

  void give(T* p, uint32_t max_free) {
    if (count_ >= max_free) {
      delete p;
      return;
    }
    p->next = free_;
    free_ = p;
    ++count_;
  }

 private:
  T* free_ = nullptr;
  uint32_t count_ = 0;
};

// A request waiting for its response.
struct Pending {
  HttpRecord rec;
  Pending* next = nullptr;  // the next one in a queue or in the free list
  uint8_t method = 0;       // llhttp_method_t
  bool complete = false;    // fully received, or closed by a gap
  bool h2c = false;         // carried `Upgrade: h2c`
  bool upgrade = false;     // llhttp paused for Upgrade/CONNECT after it
  bool http09 = false;      // an HTTP/0.9 request: the answer is raw bytes until the close
};

struct Http1Parser::Impl {
  // The FIFO of pending requests: a linked list of slots from the thread's
  // FreeList, empty (no capacity at all) between exchanges.
  class PendingQueue {
   public:
    explicit PendingQueue(uint32_t max_free) : max_free_(max_free) {}
    PendingQueue(const PendingQueue&) = delete;
    PendingQueue& operator=(const PendingQueue&) = delete;
    ~PendingQueue() {
      while (!empty()) popFront();
    }

    size_t size() const { return count_; }
    bool empty() const { return count_ == 0; }
    Pending& front() { return *head_; }
    Pending& back() { return *tail_; }
    Pending* first() { return head_; }
    Pending& pushBack() {
      Pending* p = FreeList<Pending>::forThread().take();
      if (p == nullptr) p = new Pending;
      if (tail_ != nullptr) {
        tail_->next = p;
      } else {
        head_ = p;
      }
      tail_ = p;
      ++count_;
      return *p;
    }
    void popFront() {
      Pending* p = std::exchange(head_, head_->next);
      if (head_ == nullptr) tail_ = nullptr;
      --count_;
      FreeList<Pending>::forThread().give(p, max_free_);
    }
    void popBack() {  // rare (a parse error in a request line): walk the list
      Pending* p = tail_;
      if (head_ == p) {
        head_ = tail_ = nullptr;
      } else {
        Pending* prev = head_;
        while (prev->next != p) prev = prev->next;
        prev->next = nullptr;
        tail_ = prev;
      }
      --count_;
      FreeList<Pending>::forThread().give(p, max_free_);
    }

   private:
    Pending* head_ = nullptr;
    Pending* tail_ = nullptr;
    uint32_t count_ = 0;
    uint32_t max_free_;
  };

  struct Side {
    Side(Role r, const Http1Limits& limits)
        : role(r),
          scanner(r, limits.max_url_bytes + kRequestLineOverhead, limits.max_resync_scan_bytes) {}

    void resetMessage() {
      in_message = false;
      start_line_done = false;
      headers_done = false;
      headers_end_known = false;
      upgrading = false;
      in_chunk_data = false;
      in_query = false;
      body = BodyKind::kNone;
      field = Field::kNone;
      seen_fields = 0;
      name_len = 0;
      name_long = false;
      upgrade_value.clear();
      pause = 0;
      ambiguous = false;
      reject = false;
      repeated_length = false;
      first_length = 0;
      unknown_method = false;
    }

    // As constructed, for a slot taken from the FreeList: in place, so the
    // strings keep their buffers. Every field below not set by
    // resetMessage() is set here; the scanner is restarted by attach().
    void reuse() {
      resetMessage();
      state = SideState::kResync;
      synced_once = false;
      untouched = true;
      midstream = false;
      ts = 0;
      held_ts = 0;
      buf_base = 0;
      fed = 0;
      msg_start = 0;
      cur = nullptr;
      std::memcpy(tail, "\r\n\r\n", sizeof tail);
      dummy = false;
      holding_line = false;
      token_hold_len = 0;
    }

    Role role;
    llhttp_t parser;
    http1::ResyncScanner scanner;
    SideState state = SideState::kResync;
    bool synced_once = false;
    bool untouched = true;   // no byte (nor gap) of the side seen yet
    bool midstream = false;  // bytes dropped before the first boundary: flag the first message
    uint64_t ts = 0;         // timestamp of the bytes being fed
    uint64_t held_ts = 0;    // timestamp of the first byte the scanner holds
    // Absolute stream offsets of what llhttp was fed, for header byte counts.
    uint64_t buf_base = 0;
    uint64_t fed = 0;
    uint64_t msg_start = 0;
    // What llhttp is being fed, and the last bytes fed before it: line ends
    // are checked for a bare LF at positions llhttp reports.
    const char* cur = nullptr;
    char tail[4] = {'\r', '\n', '\r', '\n'};
    // The message being parsed.
    uint8_t pause = 0;  // PauseBit
    bool in_message = false;
    bool start_line_done = false;  // request or status line complete
    bool headers_done = false;
    bool headers_end_known = false;
    bool upgrading = false;  // server: on_headers_complete answered kNoBodyUpgrade
    bool in_chunk_data = false;
    bool in_query = false;
    bool dummy = false;  // feeding the byte that ends a body skipped by a gap
    BodyKind body = BodyKind::kNone;
    Field field = Field::kNone;
    uint8_t seen_fields = 0;
    char name[kMaxInterestingNameBytes];
    uint8_t name_len = 0;
    bool name_long = false;
    bool ambiguous = false;        // the message is flagged kFlagAmbiguous
    bool reject = false;           // a server rejects the message (see kRejected)
    bool repeated_length = false;  // a second Content-Length is being parsed
    uint64_t first_length = 0;     // the first Content-Length's value
    bool unknown_method = false;   // llhttp was given GET for the method (see feedLlhttp)
    // client: a request line with a method llhttp does not know, held by the
    // scanner until it is whole; a parse error if it turns out to be none.
    bool holding_line = false;
    // client: a method token cut by the end of a segment, not yet given to
    // llhttp (which refuses an unknown one for good): its bytes, the stream
    // offset and time of its first byte.
    char token_hold[http1::kMaxMethodBytes];
    uint8_t token_hold_len = 0;
    uint64_t token_hold_abs = 0;
    uint64_t token_hold_ts = 0;
    std::string upgrade_value;
  };

  // The response being received: its fields join the request at completion.
  struct Response {
    bool open = false;  // first byte seen, exchange not yet emitted
    int status = 0;     // final status, once its headers are complete
    int interim = 0;
    const char* version = "";
    bool h2c = false;
    uint64_t header_bytes = 0;
    uint64_t body_bytes = 0;
    uint64_t start_ns = 0;
    uint64_t end_ns = 0;
    uint32_t flags = 0;
    // The connection's L4 counters at the first byte, for a response that
    // turns out to have no request (HttpRecord::startL4).
    ExchangeL4 l4_start[2];
  };

  // Both sides' parsing state and the response in progress: needed only
  // while a message is in flight or a side is mid-resync. An idle connection
  // gives it back to the thread's FreeList and keeps only `Resume`.
  struct Active {
    explicit Active(const Http1Limits& l)
        : client(Role::kClient, l), server(Role::kServer, l), limits(l) {}
    Side client;
    Side server;
    Response resp;
    Http1Limits limits;      // the sides' scanners were made for these
    Active* next = nullptr;  // in the free list
  };

  // What a side keeps while the connection is idle.
  struct Resume {
    SideState state = SideState::kResync;
    bool synced_once = false;
    bool midstream = false;
    bool line_start = true;  // kResync: whether the next byte begins a line
    bool untouched = true;   // no byte (nor gap) of the side seen yet
  };

  struct FeedResult {
    size_t consumed = 0;
    bool error = false;
    bool stop = false;
    bool hold = false;  // client: a request line to see whole first (see MethodStart)
  };

  Impl(ExchangeSink& s, const Http1Limits& l, const RedactionPolicy& r, const ConnectionInfo* c)
      : sink(s),
        limits(l),
        redaction(r),
        conn(c),
        max_pending(std::max<uint32_t>(1, l.max_pending_requests)),
        pending(l.max_free_slots) {}

  ~Impl() { detach(); }

  // Takes parsing state for both sides, as they were left by detach().
  void attach() {
    if (act != nullptr) return;
    act = FreeList<Active>::forThread().take();
    if (act == nullptr) {
      act = new Active(limits);
    } else {  // as new, for this parser's limits
      if (act->limits.max_url_bytes != limits.max_url_bytes ||
          act->limits.max_resync_scan_bytes != limits.max_resync_scan_bytes) {
        act->client = Side(Role::kClient, limits);
        act->server = Side(Role::kServer, limits);
        act->limits = limits;
      } else {
        act->client.reuse();
        act->server.reuse();
      }
      act->resp = Response{};
    }
    for (int i = 0; i < 2; ++i) {
      Side& s = i == 0 ? act->client : act->server;
      // Between messages llhttp is back at its start state: a fresh one is the same.
      s.parser = freshParser(i == 0 ? HTTP_REQUEST : HTTP_RESPONSE);
      s.parser.data = this;
      s.state = resume[i].state;
      s.synced_once = resume[i].synced_once;
      s.midstream = resume[i].midstream;
      s.scanner.start(resume[i].line_start);
      s.untouched = resume[i].untouched;
    }
  }

  // Nothing in flight: no message on either side, no held resync bytes, no
  // pending request, no open response.
  bool idle() const {
    if (act == nullptr || act->resp.open || !pending.empty() || req != nullptr) return false;
    for (const Side* s : {&act->client, &act->server}) {
      switch (s->state) {
        case SideState::kEnded:
        case SideState::kRejected:
        case SideState::kHttp09:
          break;
        case SideState::kParse:
          if (s->in_message || s->token_hold_len != 0) return false;
          break;
        case SideState::kResync:
          if (s->scanner.heldBytes() != 0) return false;
          break;
        case SideState::kUpgradePending:
          return false;
      }
    }
    return true;
  }

  void detach() {
    if (act == nullptr) return;
    for (int i = 0; i < 2; ++i) {
      const Side& s = i == 0 ? act->client : act->server;
      resume[i] = {s.state, s.synced_once, s.midstream, s.scanner.atLineStart(), s.untouched};
    }
    FreeList<Active>::forThread().give(std::exchange(act, nullptr), limits.max_free_slots);
  }

  void detachIfIdle() {
    if (finished || idle()) detach();
  }

  // A parser as llhttp_init leaves it, with our lenient flags: copied, it
  // costs a struct copy per attach instead of three calls.
  static const llhttp_t& freshParser(llhttp_type_t type) {
    static const llhttp_t fresh[2] = {makeParser(HTTP_REQUEST), makeParser(HTTP_RESPONSE)};
    return fresh[type == HTTP_REQUEST ? 0 : 1];
  }
  static llhttp_t makeParser(llhttp_type_t type) {
    llhttp_t p;
    llhttp_init(&p, type, &settings());
    // Observers, not servers: keep parsing after `Connection: close`.
    llhttp_set_lenient_keep_alive(&p, 1);
    // Content-Length with Transfer-Encoding: chunked is read as chunked,
    // as RFC 9112 §6.3 says (and flagged); the requests a server rejects
    // instead are caught in onHeadersComplete.
    llhttp_set_lenient_chunked_length(&p, 1);
    return p;
  }

  static const llhttp_settings_t& settings() {
    static const llhttp_settings_t s = [] {
      llhttp_settings_t st;
      llhttp_settings_init(&st);
      st.on_message_begin = onMessageBegin;
      st.on_url = onUrl;
      st.on_url_complete = onUrlComplete;
      st.on_method_complete = onMethodComplete;
      st.on_version_complete = onVersionComplete;
      st.on_status_complete = onStatusComplete;
      st.on_header_field = onHeaderField;
      st.on_header_field_complete = onHeaderFieldComplete;
      st.on_header_value = onHeaderValue;
      st.on_header_value_complete = onHeaderValueComplete;
      st.on_headers_complete = onHeadersComplete;
      st.on_body = onBody;
      st.on_chunk_header = onChunkHeader;
      st.on_chunk_complete = onChunkComplete;
      st.on_message_complete = onMessageComplete;
      return st;
    }();
    return s;
  }

  static Impl& self(llhttp_t* p) { return *static_cast<Impl*>(p->data); }
  Side& sideOf(llhttp_t* p) { return p->type == HTTP_REQUEST ? act->client : act->server; }
  Side& sideOf(Role r) { return r == Role::kClient ? act->client : act->server; }
  HttpRecord& requestRecord() {
    if (req != nullptr) return req->rec;
    if (discard == nullptr) discard = std::make_unique<HttpRecord>();  // rare: see popFront
    return *discard;
  }

  // ---- llhttp callbacks -------------------------------------------------

  static int onMessageBegin(llhttp_t* p) {
    Impl& im = self(p);
    Side& s = im.sideOf(p);
    s.resetMessage();
    s.in_message = true;
    s.pause |= kPauseBegin;
    if (s.role == Role::kClient) {
      im.beginRequest();
    } else {
      im.beginResponse();
    }
    return HPE_PAUSED;
  }

  static int onUrl(llhttp_t* p, const char* at, size_t length) {
    Impl& im = self(p);
    Side& s = im.sideOf(p);
    HttpRecord& r = im.requestRecord();
    std::string_view url(at, length);
    const size_t max = im.limits.max_url_bytes;
    bool ok = true;
    if (!s.in_query) {
      const size_t q = url.find('?');
      ok = appendBounded(r.path, url.substr(0, q), max);
      if (q == std::string_view::npos) {
        url = {};
      } else {
        s.in_query = true;
        url.remove_prefix(q + 1);
      }
    }
    if (!url.empty()) {
      ok = appendBounded(r.query, url, max - std::min<size_t>(max, r.path.size())) && ok;
    }
    if (!ok) im.truncated(r);
    return 0;
  }

  static int onMethodComplete(llhttp_t* p) {
    Impl& im = self(p);
    if (im.sideOf(p).unknown_method) return 0;  // the record has the token from the wire
    im.requestRecord().method = llhttp_method_name(static_cast<llhttp_method_t>(p->method));
    return 0;
  }

  // llhttp sets version 0.9 just before this when the request line ended
  // after the target (url_skip_to_http09); an HTTP/1.x line's version is
  // parsed after it, and no earlier message of the connection can have been
  // 0.9 (one ends the client's side), so 0.9 here is this line's.
  static int onUrlComplete(llhttp_t* p) {
    if (p->type != HTTP_REQUEST || p->http_major != 0 || p->http_minor != 9) return 0;
    Side& s = self(p).sideOf(p);
    s.start_line_done = true;
    s.pause |= kPauseHttp09;
    return HPE_PAUSED;
  }

  static int onVersionComplete(llhttp_t* p) {
    Side& s = self(p).sideOf(p);
    if (s.role == Role::kClient) s.start_line_done = true;  // the version ends a request line
    return 0;
  }

  static int onStatusComplete(llhttp_t* p) {
    Impl& im = self(p);
    im.sideOf(p).start_line_done = true;
    // Known from the status line on: a window or a gap that cuts the headers
    // must not lose it. 1xx and 101 are settled at the end of the headers.
    if (im.act->resp.open && p->status_code >= 200) im.act->resp.status = p->status_code;
    return 0;
  }

  static int onHeaderField(llhttp_t* p, const char* at, size_t length) {
    Impl& im = self(p);
    Side& s = im.sideOf(p);
    s.start_line_done = true;
    // The first piece of a name follows the previous line's end.
    if (s.name_len == 0 && !s.name_long && !s.headers_done && bareLfBefore(s, at, 1)) {
      im.markAmbiguous(s);
    }
    if (s.name_long || s.name_len + length > sizeof(s.name)) {
      s.name_long = true;
      return 0;
    }
    copyShort(s.name + s.name_len, at, length);
    s.name_len = static_cast<uint8_t>(s.name_len + length);
    return 0;
  }

  static int onHeaderFieldComplete(llhttp_t* p) {
    Side& s = self(p).sideOf(p);
    s.field = Field::kNone;
    if (!s.name_long && !s.headers_done) {  // trailers do not count
      const std::string_view name(s.name, s.name_len);
      if (equalsLower(name, "content-length")) {
        if ((p->flags & F_CONTENT_LENGTH) != 0) {
          // llhttp refuses any second Content-Length; equal repeats are one
          // value to a server that accepts them (RFC 9110 §8.6), so let
          // llhttp parse it afresh and compare at the end of the value.
          s.repeated_length = true;
          s.first_length = p->content_length;
          p->flags &= static_cast<uint16_t>(~F_CONTENT_LENGTH);
          p->content_length = 0;
        }
        s.field = Field::kContentLength;
        s.name_len = 0;
        return 0;
      }
      // By length first: most names are none of these.
      switch (name.size()) {
        case 7:
          if (equalsLower(name, "upgrade")) s.field = Field::kUpgrade;
          break;
        case 4:
          if (s.role == Role::kClient && equalsLower(name, "host")) s.field = Field::kHost;
          break;
        case 10:
          if (s.role == Role::kClient && equalsLower(name, "user-agent")) {
            s.field = Field::kUserAgent;
          }
          break;
        case 12:
          if (s.role == Role::kClient && equalsLower(name, "content-type")) {
            s.field = Field::kContentType;
          }
          break;
        default:
          break;
      }
      // The first occurrence wins.
      const uint8_t bit = static_cast<uint8_t>(1u << static_cast<unsigned>(s.field));
      if (s.field != Field::kNone && (s.seen_fields & bit) != 0) s.field = Field::kNone;
      s.seen_fields |= bit;
    }
    s.name_len = 0;
    s.name_long = false;
    return 0;
  }

  static int onHeaderValue(llhttp_t* p, const char* at, size_t length) {
    Impl& im = self(p);
    Side& s = im.sideOf(p);
    const std::string_view v(at, length);
    std::string* dst = nullptr;
    // A value piece right after a line end is obs-fold: llhttp joins the
    // lines, a server may do the same or reject the message (RFC 9112 §5.2).
    if (length > 0 && foldBefore(s, at)) im.markAmbiguous(s);
    switch (s.field) {
      case Field::kNone:
      case Field::kContentLength:
        return 0;
      case Field::kUpgrade:
        appendBounded(s.upgrade_value, v, kMaxUpgradeValueBytes);  // only searched for "h2c"
        return 0;
      case Field::kHost:  // this and the next: request fields, from the client side
        dst = &im.requestRecord().host;
        break;
      case Field::kUserAgent:
        dst = &im.requestRecord().user_agent;
        break;
      case Field::kContentType:
        dst = &im.requestRecord().content_type;
        break;
    }
    if (!appendBounded(*dst, v, im.limits.max_header_value_bytes)) im.truncated(im.requestRecord());
    return 0;
  }

  static int onHeaderValueComplete(llhttp_t* p) {
    Impl& im = self(p);
    Side& s = im.sideOf(p);
    const bool repeated = s.field == Field::kContentLength && s.repeated_length;
    s.field = Field::kNone;
    if (repeated) {
      s.repeated_length = false;
      im.markAmbiguous(s);
      if (p->content_length != s.first_length) {
        s.reject = true;  // no server can pick one: 400 (RFC 9110 §8.6)
        return -1;
      }
    }
    return 0;
  }

  static BodyKind bodyKind(const llhttp_t* p) {
    if ((p->flags & F_CHUNKED) != 0) return BodyKind::kChunked;
    if ((p->flags & F_TRANSFER_ENCODING) != 0) return BodyKind::kEof;
    if ((p->flags & F_CONTENT_LENGTH) != 0) {
      return p->content_length > 0 ? BodyKind::kFixed : BodyKind::kNone;
    }
    return llhttp_message_needs_eof(p) != 0 ? BodyKind::kEof : BodyKind::kNone;
  }

  static int onHeadersComplete(llhttp_t* p) {
    Impl& im = self(p);
    Side& s = im.sideOf(p);
    s.start_line_done = true;
    s.headers_done = true;
    const bool te = (p->flags & F_TRANSFER_ENCODING) != 0;
    if (te && (p->flags & F_CONTENT_LENGTH) != 0) im.markAmbiguous(s);  // TE wins
    if (s.role == Role::kClient && te &&
        ((p->flags & F_CHUNKED) == 0 || (p->http_major == 1 && p->http_minor == 0))) {
      // A request body whose length cannot be known (RFC 9112 §6.3), or
      // Transfer-Encoding on HTTP/1.0 (§6.1): the server answers 400 and
      // closes. llhttp, lenient about CL with TE, would read to the close.
      im.markAmbiguous(s);
      s.reject = true;
      return -1;
    }
    if (s.role == Role::kClient) {
      HttpRecord& r = im.requestRecord();
      r.version = versionOf(*p);
      if (im.req != nullptr) {
        im.req->method = p->method;
        im.req->h2c = hasToken(s.upgrade_value, "h2c");
        im.req->upgrade = p->upgrade != 0;
      }
      // llhttp pauses with HPE_PAUSED_UPGRADE after the message; our
      // on_message_complete must not pause first.
      s.upgrading = p->upgrade != 0;
      s.body = bodyKind(p);
      s.pause |= kPauseHeadersEnd;
      return HPE_PAUSED;
    }
    Response& resp = im.act->resp;
    resp.version = versionOf(*p);
    resp.h2c = hasToken(s.upgrade_value, "h2c");
    const int status = p->status_code;
    // Header end positions of the kNoBody answers are taken at the
    // on_message_complete pause that follows immediately.
    if (status >= 100 && status < 200 && status != 101) return kNoBody;  // interim
    if (status == 101) {
      s.upgrading = true;
      return kNoBodyUpgrade;
    }
    resp.status = status;
    const Pending* req = im.pairedRequest();
    if (req != nullptr && req->method == HTTP_CONNECT && status >= 200 && status < 300) {
      s.upgrading = true;
      return kNoBodyUpgrade;
    }
    if ((req != nullptr && req->method == HTTP_HEAD) || status == 204 || status == 304) {
      return kNoBody;
    }
    s.body = bodyKind(p);
    s.pause |= kPauseHeadersEnd;
    return HPE_PAUSED;
  }

  static int onBody(llhttp_t* p, const char*, size_t length) {
    Impl& im = self(p);
    Side& s = im.sideOf(p);
    if (s.dummy) return 0;
    if (s.role == Role::kClient) {
      im.requestRecord().request_body_bytes += length;
    } else {
      im.act->resp.body_bytes += length;
    }
    return 0;
  }

  static int onChunkHeader(llhttp_t* p) {
    self(p).sideOf(p).in_chunk_data = p->content_length > 0;
    return 0;
  }

  static int onChunkComplete(llhttp_t* p) {
    self(p).sideOf(p).in_chunk_data = false;
    return 0;
  }

  static int onMessageComplete(llhttp_t* p) {
    Side& s = self(p).sideOf(p);
    s.pause |= kPauseComplete;
    // An upgrade must reach llhttp's HPE_PAUSED_UPGRADE; it reports the position.
    return s.upgrading ? 0 : HPE_PAUSED;
  }

  // ---- exchanges ----------------------------------------------------------

  void emit(HttpRecord& r) {
    ++exchanges;
    r.endL4(conn);
    r.redact(redaction, limits.max_url_bytes);
    sink.onExchange(r);
  }

  void markAmbiguous(Side& s) {
    if (!s.ambiguous) ++counted().ambiguous_messages;
    s.ambiguous = true;
    if (s.role == Role::kClient) {
      requestRecord().flags |= kFlagAmbiguous;
    } else {
      act->resp.flags |= kFlagAmbiguous;
    }
  }

  // The byte `back` positions before `at` (a pointer into what llhttp is
  // being fed), from the previous feeds when it is not in this one.
  static char byteBefore(const Side& s, const char* at, size_t back) {
    const size_t in_cur = static_cast<size_t>(at - s.cur);
    if (back <= in_cur) return at[-static_cast<ptrdiff_t>(back)];
    const size_t from_tail = back - in_cur;  // 1 = the last byte fed before
    return from_tail <= sizeof(s.tail) ? s.tail[sizeof(s.tail) - from_tail] : '\r';
  }

  // The line end that finishes `back` bytes before `at` is a bare LF.
  static bool bareLfBefore(const Side& s, const char* at, size_t back) {
    if (back + 1 <= static_cast<size_t>(at - s.cur)) {  // common: both in this feed
      return at[-static_cast<ptrdiff_t>(back)] == '\n' &&
             at[-static_cast<ptrdiff_t>(back + 1)] != '\r';
    }
    return byteBefore(s, at, back) == '\n' && byteBefore(s, at, back + 1) != '\r';
  }

  // Only whitespace between `at` and the previous line end: llhttp skips
  // the whitespace of a folded line before some values (Content-Length,
  // Transfer-Encoding), so look past it.
  static bool foldBefore(const Side& s, const char* at) {
    if (static_cast<size_t>(at - s.cur) > kMaxFoldWhitespace) {  // common: all in this feed
      for (const char* b = at - 1; b >= at - (kMaxFoldWhitespace + 1); --b) {
        if (*b != ' ' && *b != '\t') return *b == '\n';
      }
      return false;
    }
    for (size_t back = 1; back <= kMaxFoldWhitespace + 1; ++back) {
      const char c = byteBefore(s, at, back);
      if (c != ' ' && c != '\t') return c == '\n';
    }
    return false;
  }

  void keepTail(Side& s, const char* data, size_t len) {
    const size_t n = std::min(len, sizeof(s.tail));
    std::memmove(s.tail, s.tail + n, sizeof(s.tail) - n);
    std::memcpy(s.tail + sizeof(s.tail) - n, data + len - n, n);
  }

  void truncated(HttpRecord& r) {
    if ((r.flags & kFlagTruncated) == 0) ++counted().truncated_fields;
    r.flags |= kFlagTruncated;
  }

  void beginRequest() {
    if (pending.size() >= max_pending) {
      // Drop the oldest; the next response is its answer, so it goes out
      // unpaired and pairing stays aligned.
      Pending& oldest = pending.front();
      oldest.rec.flags |= kFlagNoResponse | kFlagOverflow;
      emit(oldest.rec);
      popFront();
      ++skip_responses;
      ++counted().pending_overflows;
    }
    Pending& q = pending.pushBack();
    resetRecord(q.rec);
    q.method = 0;
    q.complete = false;
    q.h2c = false;
    q.upgrade = false;
    q.http09 = false;
    q.rec.request_start_ns = act->client.ts;
    q.rec.startL4(conn);
    if (act->client.midstream) {
      q.rec.flags |= kFlagMidstream;
      act->client.midstream = false;
    }
    req = &q;
  }

  void beginResponse() {
    if (act->resp.open) return;  // the final response after an interim one
    act->resp = Response{};
    act->resp.open = true;
    act->resp.start_ns = act->server.ts;
    markExchangeL4(conn, act->resp.l4_start);
    if (act->server.midstream) {
      act->resp.flags |= kFlagMidstream;
      act->server.midstream = false;
    }
  }

  // The request the response in progress answers, or null. Order pairs them;
  // a response that started before the request did cannot answer it.
  Pending* pairedRequest() {
    if (skip_responses > 0 || pending.empty()) return nullptr;
    Pending& f = pending.front();
    if (act->resp.open && f.rec.request_start_ns > act->resp.start_ns) return nullptr;
    return &f;
  }

  void popFront() {
    Pending& f = pending.front();
    if (req == &f) {
      // Answered before it was fully received: the rest of it is dropped.
      req = nullptr;
      if (discard != nullptr) resetRecord(*discard);
    }
    const bool release = f.upgrade && act->client.state == SideState::kUpgradePending &&
                         outcome == ParseOutcome::kContinue;
    pending.popFront();
    if (release) releaseClient();
  }

  // The Upgrade/CONNECT request was not switched: HTTP/1 goes on.
  void releaseClient() {
    if (client_tunnel_bytes == 0) {
      llhttp_reset(&act->client.parser);
      act->client.resetMessage();
      act->client.state = SideState::kParse;
    } else {
      enterResync(act->client, true);
    }
  }

  // Emits the response in progress with its request (or alone).
  void finishExchange(uint32_t extra_flags) {
    Pending* q = pairedRequest();
    // Only used during this call: one per thread serves every parser.
    thread_local HttpRecord scratch;
    HttpRecord* r = &scratch;
    if (q != nullptr) {
      r = &q->rec;
    } else {
      resetRecord(scratch);
      scratch.flags = kFlagNoRequest;
      std::copy(std::begin(act->resp.l4_start), std::end(act->resp.l4_start),
                std::begin(scratch.exchange_l4));
      // Its request may be in the client bytes lost since the last pairing.
      if (client_lost) scratch.flags |= kFlagGap;
      if (skip_responses > 0) {
        scratch.flags |= kFlagOverflow;
        --skip_responses;
      }
    }
    if (*r->version == '\0') r->version = act->resp.version;
    r->status = act->resp.status;
    r->interim_status = act->resp.interim;
    r->response_header_bytes = act->resp.header_bytes;
    r->response_body_bytes = act->resp.body_bytes;
    r->response_start_ns = act->resp.start_ns;
    r->response_end_ns = act->resp.end_ns;
    r->flags |= act->resp.flags | extra_flags;
    act->resp = Response{};
    // Responses come in order: once one answers a request that was seen,
    // the answers of any lost before it have all passed.
    if (q != nullptr) client_lost = false;
    emit(*r);
    if (q != nullptr) popFront();
  }

  // Requests fully sent before the server side lost sync: their answers may
  // be in the lost bytes, so they can no longer be paired safely.
  void dropCompletePending() {
    while (!pending.empty() && pending.front().complete) {
      Pending& f = pending.front();
      f.rec.flags |= kFlagNoResponse | kFlagGap;
      emit(f.rec);
      popFront();
    }
  }

  // Closes the message in progress on `s` after lost bytes or a parse error.
  void closeInProgress(Side& s) {
    if (s.role == Role::kClient) {
      if (s.in_message && req != nullptr) {
        req->rec.flags |= kFlagGap;
        req->complete = true;
        req = nullptr;
      }
    } else if (act->resp.open) {
      finishExchange(act->resp.status == 0 ? (kFlagGap | kFlagNoResponse) : kFlagGap);
    }
    s.resetMessage();
  }

  void enterResync(Side& s, bool at_line_start) {
    ++counted().resyncs;
    s.token_hold_len = 0;
    s.state = SideState::kResync;
    s.resetMessage();
    s.scanner.start(at_line_start);
    if (&s == &act->client) client_tunnel_bytes = 0;
    if (s.role == Role::kServer) dropCompletePending();
  }

  // ---- feeding llhttp -----------------------------------------------------

  void handlePauses(Side& s, uint64_t abs_pos) {
    const uint8_t bits = s.pause;
    s.pause = 0;
    if ((bits & kPauseBegin) != 0) s.msg_start = abs_pos;
    if ((bits & kPauseHeadersEnd) != 0) addHeaderBytes(s, abs_pos);
    if ((bits & kPauseHttp09) != 0) {
      addHeaderBytes(s, abs_pos);
      http09Request(s);
    }
    if ((bits & kPauseComplete) != 0) {
      if (!s.headers_end_known) addHeaderBytes(s, abs_pos);
      completeMessage(s);
    }
  }

  void addHeaderBytes(Side& s, uint64_t abs_pos) {
    s.headers_end_known = true;
    const uint64_t n = abs_pos - std::min(abs_pos, s.msg_start);
    if (s.role == Role::kClient) {
      requestRecord().request_header_bytes = n;
    } else {
      act->resp.header_bytes += n;  // interim responses count too
    }
  }

  void completeMessage(Side& s) {
    const bool upgrading = s.upgrading;
    const int status = s.parser.status_code;
    s.resetMessage();
    if (s.role == Role::kClient) {
      requestRecord().request_end_ns = s.ts;
      if (req != nullptr) req->complete = true;
      req = nullptr;
      return;
    }
    if (upgrading) return;  // handled at HPE_PAUSED_UPGRADE
    if (status >= 100 && status < 200) {
      act->resp.interim = status;
      return;  // the final response follows
    }
    act->resp.end_ns = s.ts;
    finishExchange(0);
  }

  // An HTTP/0.9 request ends with its request line (RFC 1945 §4.1): its
  // answer is the server's bytes until it closes, and nothing follows it.
  // llhttp would read header lines after it; the client's side stops here.
  void http09Request(Side& s) {
    HttpRecord& r = requestRecord();
    r.version = "0.9";
    r.request_end_ns = s.ts;
    if (req != nullptr) {
      req->complete = true;
      req->http09 = true;
    }
    req = nullptr;
    s.resetMessage();
    s.state = SideState::kHttp09;
  }

  // The server's first bytes after an HTTP/0.9 request: unless they start a
  // status line, they are its answer's body (no status line, no headers).
  void maybeHttp09Response(Side& s, const char* data, size_t len) {
    if (s.state == SideState::kHttp09 || s.state == SideState::kEnded || act->resp.open ||
        pending.empty() || !pending.front().http09 || skip_responses > 0 ||
        (s.state == SideState::kParse && s.in_message) || s.scanner.heldBytes() != 0) {
      return;
    }
    constexpr std::string_view kVersion = "HTTP/";
    const size_t n = std::min(len, kVersion.size());
    if (std::string_view(data, n) == kVersion.substr(0, n)) return;  // HTTP/1.x parses it
    s.state = SideState::kHttp09;
  }

  void http09Body(Side& s, uint64_t length, bool lost) {
    Response& resp = act->resp;
    if (!resp.open) {
      beginResponse();
      resp.version = "0.9";
    }
    if (lost) {
      addBodyBytes(s, length);
      countBytes(&Http1Stats::gap_skipped_body_bytes, length);
    } else {
      resp.body_bytes += length;
    }
  }

  FeedResult feed(Side& s, const char* data, size_t len) {
    s.cur = data;
    const FeedResult f = feedLlhttp(s, data, len);
    keepTail(s, data, len);
    return f;
  }

  enum class MethodStart : uint8_t {
    kLlhttp,     // a method llhttp knows, or no request line: llhttp decides
    kUnknown,    // a whole request line with another token: give llhttp GET
    kWaitToken,  // a token cut by the end of the bytes: hold it
    kWaitLine,   // another token, the line not yet whole: hold the line
  };
  struct MethodAt {
    MethodStart kind = MethodStart::kLlhttp;
    size_t token_at = 0;  // after the CR/LF llhttp skips between messages
    size_t token_len = 0;
  };

  // What begins at `rest`, a client's message start. llhttp 8.1 refuses a
  // method outside its list (HPE_INVALID_METHOD, not resumable), yet any
  // token is a method (RFC 9110 §9.1) that a server may serve. Known
  // methods keep llhttp's own path on the first bytes; another token is
  // taken only on a whole request line with an HTTP/1.x version, so text
  // that merely starts with a word is not a request.
  static bool startsWithLlhttpMethod(std::string_view bytes) {
    const size_t n = http1::methodTokenLength(bytes);
    return n < bytes.size() && bytes[n] == ' ' && http1::isLlhttpMethod(bytes.substr(0, n));
  }

  MethodAt methodAt(std::string_view rest) const {
    MethodAt m;
    size_t t = 0;
    while (t < rest.size() && (rest[t] == '\r' || rest[t] == '\n')) ++t;
    const std::string_view line = rest.substr(t);
    if (line.empty()) return m;
    const size_t n = http1::methodTokenLength(line);
    if (n < line.size() && line[n] == ' ' && http1::isLlhttpMethod(line.substr(0, n))) return m;
    if (n == line.size() && n <= http1::kMaxMethodBytes) return {MethodStart::kWaitToken, t, n};
    switch (http1::matchRequestLine(line, limits.max_url_bytes + kRequestLineOverhead)) {
      case http1::LineMatch::kYes:
        return {MethodStart::kUnknown, t, n};
      case http1::LineMatch::kNeedMore:
        return {MethodStart::kWaitLine, t, n};
      case http1::LineMatch::kNo:
        break;
    }
    return m;
  }

  // Gives llhttp "GET" in place of an unknown method token, then the bytes
  // from the space after it go on as they are. GET has no framing of its
  // own (not HEAD, not CONNECT), so the request's body and the response are
  // framed by their headers, as for any method without special semantics
  // (RFC 9110 §9.3, §6.4.1). The three bytes are a separate llhttp_execute,
  // not a rewrite of the stream: positions come from the real bytes, so a
  // token of any length (one or two bytes, shorter than "GET", included)
  // keeps every byte count right, and the captured bytes stay unmodified.
  void feedMethodStandIn(Side& s, std::string_view token, uint64_t abs_token) {
    static constexpr char kStandIn[] = "GET";
    constexpr size_t kLen = sizeof kStandIn - 1;
    size_t p = 0;
    for (;;) {
      const llhttp_errno_t err = llhttp_execute(&s.parser, kStandIn + p, kLen - p);
      size_t at = kLen;
      if (err == HPE_PAUSED) {
        const char* e = llhttp_get_error_pos(&s.parser);
        at = (e >= kStandIn && e <= kStandIn + kLen) ? static_cast<size_t>(e - kStandIn) : kLen;
      }
      // Only the message's begin can pause here, at its first byte.
      if (s.pause != 0) handlePauses(s, abs_token);
      if (err != HPE_PAUSED) break;  // HPE_OK: llhttp waits for the space
      llhttp_resume(&s.parser);
      p = at;
    }
    requestRecord().method.assign(token);
    s.unknown_method = true;
  }

  // The held token goes to llhttp after all (a known method, or no request
  // line: llhttp decides), timed and placed where it was received. False on
  // a parse error.
  bool feedHeldToken(Side& s) {
    const uint64_t ts = std::exchange(s.ts, s.token_hold_ts);
    const size_t n = std::exchange(s.token_hold_len, 0);
    llhttp_errno_t err = HPE_OK;
    for (size_t p = 0;;) {
      err = llhttp_execute(&s.parser, s.token_hold + p, n - p);
      size_t at = n;
      if (err != HPE_OK) {
        const char* e = llhttp_get_error_pos(&s.parser);
        at = (e >= s.token_hold && e <= s.token_hold + n) ? static_cast<size_t>(e - s.token_hold)
                                                          : p;
      }
      if (s.pause != 0) handlePauses(s, s.token_hold_abs + at);
      if (err != HPE_PAUSED) break;
      llhttp_resume(&s.parser);
      p = at;
    }
    s.ts = ts;
    if (err != HPE_OK) ++counted().parse_errors;
    return err == HPE_OK;
  }

  FeedResult feedLlhttp(Side& s, const char* data, size_t len) {
    s.buf_base = s.fed;
    s.fed += len;
    size_t pos = 0;
    for (;;) {
      if (s.role == Role::kClient && !s.in_message && !s.dummy && s.token_hold_len != 0) {
        // The held token and what follows it, up to a space.
        char joined[2 * http1::kMaxMethodBytes + 2];
        const size_t held = s.token_hold_len;
        const size_t take = std::min(len - pos, sizeof joined - held);
        std::memcpy(joined, s.token_hold, held);
        std::memcpy(joined + held, data + pos, take);
        const MethodAt m = methodAt(std::string_view(joined, held + take));
        if (m.kind == MethodStart::kWaitToken && take == len - pos) {  // still cut
          std::memcpy(s.token_hold + held, data + pos, take);
          s.token_hold_len = static_cast<uint8_t>(held + take);
          return {len, false, false};
        }
        if (m.kind != MethodStart::kLlhttp) return {pos, false, false, true};  // line by line
        if (!feedHeldToken(s)) return {pos, true, false};
      }
      if (s.role == Role::kClient && !s.in_message && !s.dummy && pos < len) {
        const MethodAt m = methodAt(std::string_view(data + pos, len - pos));
        if (m.kind == MethodStart::kWaitToken) {
          const size_t token = pos + m.token_at;
          std::memcpy(s.token_hold, data + token, m.token_len);
          s.token_hold_len = static_cast<uint8_t>(m.token_len);
          s.token_hold_abs = s.buf_base + token;
          s.token_hold_ts = s.ts;
          return {len, false, false};
        }
        if (m.kind == MethodStart::kWaitLine) return {pos + m.token_at, false, false, true};
        if (m.kind == MethodStart::kUnknown) {
          const size_t token = pos + m.token_at;
          feedMethodStandIn(s, std::string_view(data + token, m.token_len), s.buf_base + token);
          pos = token + m.token_len;
        }
      }
      const llhttp_errno_t err = llhttp_execute(&s.parser, data + pos, len - pos);
      size_t at = len;
      if (err != HPE_OK) {
        const char* e = llhttp_get_error_pos(&s.parser);
        at = (e >= data && e <= data + len) ? static_cast<size_t>(e - data) : pos;
      }
      // The empty line that ends the headers, and the line before it.
      if ((s.pause & kPauseHeadersEnd) != 0 && s.in_message &&
          (bareLfBefore(s, data + at, 1) || bareLfBefore(s, data + at, 3))) {
        markAmbiguous(s);
      }
      if (s.pause != 0) handlePauses(s, s.buf_base + at);
      if (s.state == SideState::kHttp09) return {len, false, false};  // the rest is ignored
      switch (err) {
        case HPE_OK:
          return {len, false, false};
        case HPE_PAUSED:
          llhttp_resume(&s.parser);
          pos = at;
          continue;  // even with nothing left: llhttp may finish the message
        case HPE_PAUSED_UPGRADE:
          return upgraded(s, len, at);
        default:
          ++counted().parse_errors;
          if ((err == HPE_INVALID_CHUNK_SIZE || err == HPE_INVALID_CONTENT_LENGTH) &&
              s.in_message &&
              std::strstr(llhttp_get_error_reason(&s.parser), "overflow") != nullptr) {
            // A length past 2^64-1: no body size can be right.
            ++counted().length_overflows;
            if (s.role == Role::kClient) {
              requestRecord().flags |= kFlagOverflow;
            } else {
              act->resp.flags |= kFlagOverflow;
            }
          }
          if (s.start_line_done && !s.headers_done &&
              (err == HPE_INVALID_CONTENT_LENGTH || err == HPE_UNEXPECTED_CONTENT_LENGTH ||
               err == HPE_INVALID_TRANSFER_ENCODING)) {
            markAmbiguous(s);  // framing a server refuses with 400
            s.reject = true;
          } else if (err == HPE_INVALID_HEADER_TOKEN && s.start_line_done && !s.headers_done &&
                     at < len && data[at] == '\n' && byteBefore(s, data + at, 1) != '\r') {
            // A bare LF after a header value: llhttp refuses it, nginx takes
            // it as a line end. The message is closed as at any error.
            markAmbiguous(s);
          }
          return {at, true, false};
      }
    }
  }

  FeedResult upgraded(Side& s, size_t len, size_t at) {
    if (s.role == Role::kClient) {
      // Whatever follows belongs to the tunnel if the server agrees.
      s.state = SideState::kUpgradePending;
      client_tunnel_bytes = len - at;
      countBytes(&Http1Stats::tunnel_dropped_bytes, len - at);
      return {len, false, false};
    }
    Pending* q = pairedRequest();
    const int status = s.parser.status_code;
    if (status == 101 && ((q != nullptr && q->h2c) || act->resp.h2c)) {
      if (q != nullptr) {
        upgraded_request = std::make_unique<HttpRecord>(q->rec);
      } else {
        upgraded_request = std::make_unique<HttpRecord>();
        upgraded_request->flags = kFlagNoRequest;
        std::copy(std::begin(act->resp.l4_start), std::end(act->resp.l4_start),
                  std::begin(upgraded_request->exchange_l4));
        upgraded_request->version = act->resp.version;
      }
      upgraded_request->interim_status = 101;
      upgraded_request->response_start_ns = act->resp.start_ns;
      upgraded_request->flags |= act->resp.flags;
      act->resp = Response{};
      outcome = ParseOutcome::kSwitchProtocol;
      if (q != nullptr) popFront();
    } else {
      outcome = ParseOutcome::kStop;
      act->resp.status = status;
      act->resp.end_ns = s.ts;
      finishExchange(kFlagUpgrade);
    }
    return {at, false, true};
  }

  // Ends a body skipped by a gap: llhttp consumes one placeholder byte as the
  // last byte of the body or chunk, which completes it now rather than when
  // the next bytes arrive.
  void feedPlaceholder(Side& s) {
    static const char kPlaceholder = 0;
    s.parser.content_length = 1;
    s.dummy = true;
    const FeedResult f = feed(s, &kPlaceholder, 1);
    s.dummy = false;
    if (f.error) parseError(s, false);
  }

  // A parse error: a message whose start line never completed may be made of
  // misaligned bytes, so it leaves no trace; one with a start line is closed
  // like a message cut by a gap.
  void parseError(Side& s, bool at_line_start) {
    if (s.reject && s.role == Role::kClient && s.in_message) {
      reject(s);
      return;
    }
    if (s.in_message && !s.start_line_done) {
      if (s.role == Role::kClient) {
        if (req != nullptr && !pending.empty() && &pending.back() == req) pending.popBack();
        req = nullptr;
      } else if (act->resp.open && act->resp.interim == 0) {
        act->resp = Response{};
      }
      s.resetMessage();
    }
    closeInProgress(s);
    enterResync(s, at_line_start);
  }

  // A request whose framing a server refuses: it answers 400 and closes
  // (RFC 9112 §6.3, §6.1), so the request waits for that answer and nothing
  // after it is a request to this server.
  void reject(Side& s) {
    ++counted().rejected_requests;
    if (req != nullptr) {
      req->complete = true;
      req->rec.request_end_ns = s.ts;
      req = nullptr;
    }
    s.resetMessage();
    s.state = SideState::kRejected;
  }

  void addBodyBytes(Side& s, uint64_t n) {
    if (s.role == Role::kClient) {
      HttpRecord& r = requestRecord();
      r.request_body_bytes += n;
      r.flags |= kFlagGap;
    } else {
      act->resp.body_bytes += n;
      act->resp.flags |= kFlagGap;
    }
  }

  ParseResult onData(Role role, std::span<const uint8_t> bytes, uint64_t ts) {
    if (outcome != ParseOutcome::kContinue) return {outcome, 0};
    if (finished) return {ParseOutcome::kContinue, bytes.size()};
    attach();
    Side& s = sideOf(role);
    s.ts = ts;
    const char* data = reinterpret_cast<const char*>(bytes.data());
    const size_t len = bytes.size();
    size_t pos = 0;
    bool fresh = true;  // nothing of this segment went to llhttp yet
    if (role == Role::kServer) maybeHttp09Response(s, data, len);
    if (s.untouched && role == Role::kClient && s.state == SideState::kResync && len > 0 &&
        startsWithLlhttpMethod(std::string_view(data, len))) {
      // The first bytes of a client's stream, a method llhttp knows: llhttp
      // parses from here. The scanner wants a version at the line's end,
      // which an HTTP/0.9 request (`GET /path CRLF`) has not.
      s.synced_once = true;
      s.state = SideState::kParse;
      s.resetMessage();
      llhttp_reset(&s.parser);
    }
    s.untouched = false;
    while (pos < len) {
      switch (s.state) {
        case SideState::kEnded:
          return {ParseOutcome::kContinue, len};
        case SideState::kHttp09:
          if (role == Role::kServer) http09Body(s, len - pos, false);
          return {ParseOutcome::kContinue, len};
        case SideState::kRejected:
          countBytes(&Http1Stats::rejected_dropped_bytes, len - pos);
          return {ParseOutcome::kContinue, len};
        case SideState::kUpgradePending:
          client_tunnel_bytes += len - pos;
          countBytes(&Http1Stats::tunnel_dropped_bytes, len - pos);
          return {ParseOutcome::kContinue, len};
        case SideState::kResync: {
          const size_t held_before = s.scanner.heldBytes();
          const auto r = s.scanner.scan(std::string_view(data + pos, len - pos), fresh);
          fresh = false;
          countBytes(&Http1Stats::resync_dropped_bytes, r.dropped);
          if (!s.synced_once && r.dropped > 0) s.midstream = true;
          if (s.holding_line && (r.found || r.dropped > 0)) {
            s.holding_line = false;
            if (!r.found || r.dropped > 0) {  // the held line was no request line
              ++counted().parse_errors;
              ++counted().resyncs;
            }
          }
          if (!r.found) {
            // Remember when a held line began: it may start the next message.
            const size_t held = s.scanner.heldBytes();
            if (held > 0 && (held_before == 0 || held <= len - pos)) s.held_ts = ts;
            return {ParseOutcome::kContinue, len};
          }
          s.synced_once = true;
          s.state = SideState::kParse;
          s.resetMessage();
          llhttp_reset(&s.parser);
          if (!r.replay.empty()) {
            s.ts = s.held_ts;
            const FeedResult f = feed(s, r.replay.data(), r.replay.size());
            s.ts = ts;
            if (f.error) parseError(s, false);
          }
          pos += r.input_offset;
          break;
        }
        case SideState::kParse: {
          fresh = false;
          const uint64_t msg_start = s.msg_start;
          const bool was_in_message = s.in_message;
          const FeedResult f = feed(s, data + pos, len - pos);
          const size_t end = pos + f.consumed;
          if (f.stop) return {outcome, end};
          if (f.hold) {
            // The scanner keeps the line until it is whole, then hands it
            // back in one piece; a line that is none counts as a parse error.
            s.holding_line = true;
            s.state = SideState::kResync;
            s.scanner.start(true);
            if (s.token_hold_len != 0) {  // the line begins with the held token
              s.scanner.scan(std::string_view(s.token_hold, s.token_hold_len));
              s.held_ts = s.token_hold_ts;
              s.token_hold_len = 0;
            }
            pos = end;
            break;
          }
          if (f.error) {
            // Resume at the error; it is a line start only if it follows a
            // '\n' and is not where the failed message itself began.
            const uint64_t abs = s.buf_base + f.consumed;
            const bool began_here =
                s.in_message ? s.msg_start == abs : (was_in_message && msg_start == abs);
            const bool line_start = end > 0 && data[end - 1] == '\n' && !began_here;
            parseError(s, line_start);
          }
          pos = end;
          break;
        }
      }
    }
    return {ParseOutcome::kContinue, len};
  }

  // The rest of a body whose length is known: exactly what onGap skips.
  uint64_t skippable(Role role) {
    if (act == nullptr) return 0;  // idle: no message in flight
    const Side& s = sideOf(role);
    if (outcome != ParseOutcome::kContinue || finished || s.state != SideState::kParse ||
        !s.in_message || !s.headers_done) {
      return 0;
    }
    const bool known =
        s.body == BodyKind::kFixed || (s.body == BodyKind::kChunked && s.in_chunk_data);
    return known ? s.parser.content_length : 0;
  }

  void onGap(Role role, uint64_t length, uint64_t ts) {
    if (outcome != ParseOutcome::kContinue || finished || length == 0) return;
    attach();
    Side& s = sideOf(role);
    s.ts = ts;
    s.untouched = false;
    switch (s.state) {
      case SideState::kEnded:
        return;
      case SideState::kHttp09:
        if (role == Role::kServer) http09Body(s, length, true);
        return;
      case SideState::kRejected:
        countBytes(&Http1Stats::rejected_dropped_bytes, length);
        return;
      case SideState::kUpgradePending:
        client_tunnel_bytes += length;
        countBytes(&Http1Stats::tunnel_dropped_bytes, length);
        return;
      case SideState::kResync:
        s.holding_line = false;
        s.scanner.start(true);  // a held line is void; after the gap, anything may start
        if (role == Role::kClient) client_lost = true;
        return;
      case SideState::kParse:
        break;
    }
    if (s.in_message && s.headers_done) {
      if (s.body == BodyKind::kEof) {  // counted; the close still ends it
        addBodyBytes(s, length);
        countBytes(&Http1Stats::gap_skipped_body_bytes, length);
        return;
      }
      const uint64_t remaining = s.parser.content_length;
      const bool known =
          s.body == BodyKind::kFixed || (s.body == BodyKind::kChunked && s.in_chunk_data);
      if (known && remaining > 0) {
        if (length <= remaining) {
          addBodyBytes(s, length);
          countBytes(&Http1Stats::gap_skipped_body_bytes, length);
          s.parser.content_length = remaining - length;
          if (s.parser.content_length == 0) feedPlaceholder(s);
          return;
        }
        addBodyBytes(s, remaining);  // the body ended inside the gap
      }
    }
    ++counted().gaps_outside_body;
    if (role == Role::kClient) client_lost = true;
    // A kept value whose end the gap took (a window cutting the headers):
    // what was kept is a prefix, never to pass for the whole value. llhttp
    // completes a value only at the next line (it may be an obs-fold), so
    // the line end seen last says whether the value was whole.
    const bool value_cut =
        s.field == Field::kHost || s.field == Field::kUserAgent || s.field == Field::kContentType;
    if (s.in_message && !s.headers_done && value_cut && s.tail[sizeof(s.tail) - 1] != '\n') {
      truncated(requestRecord());
    }
    closeInProgress(s);
    enterResync(s, true);
  }

  void onEnd(Role role, bool reset, uint64_t ts) {
    if (finished) return;
    attach();
    Side& s = sideOf(role);
    s.ts = ts;
    if (reset) {
      for (Pending* p = pending.first(); p != nullptr; p = p->next) p->rec.flags |= kFlagReset;
      if (act->resp.open) act->resp.flags |= kFlagReset;
    }
    if (outcome == ParseOutcome::kContinue && !reset && role == Role::kServer &&
        s.state == SideState::kParse && s.in_message) {
      // A close-delimited body ends here.
      llhttp_finish(&s.parser);
      if (s.pause != 0) handlePauses(s, s.fed);
    }
    if (outcome == ParseOutcome::kContinue && !reset && role == Role::kServer &&
        s.state == SideState::kHttp09 && act->resp.open) {
      act->resp.end_ns = ts;  // the close ends an HTTP/0.9 response
      finishExchange(0);
    }
    s.state = SideState::kEnded;
  }

  void finish(uint64_t ts) {
    if (finished) return;
    if (act != nullptr) {
      act->client.ts = ts;
      act->server.ts = ts;
      if (act->resp.open) finishExchange(kFlagNoResponse);
    }
    while (!pending.empty()) {
      Pending& f = pending.front();
      f.rec.flags |= kFlagNoResponse;
      emit(f.rec);
      popFront();
    }
    finished = true;
  }

  ExchangeSink& sink;
  Http1Limits limits;
  const RedactionPolicy& redaction;
  const ConnectionInfo* conn;  // L4 counters for exchange_l4; null in parser tests
  uint32_t max_pending;
  Active* act = nullptr;  // see attach()
  Resume resume[2];       // by Role, while detached
  PendingQueue pending;
  Pending* req = nullptr;            // the request the client side is receiving
  uint64_t client_tunnel_bytes = 0;  // client bytes dropped while an upgrade was pending
  // Rarely needed, so allocated on first use: the sink for a request answered
  // before it ended, and the request handed over to HTTP/2 by an h2c upgrade.
  std::unique_ptr<HttpRecord> discard;
  std::unique_ptr<HttpRecord> upgraded_request;
  // Exchanges are counted on every connection; the other counters, of what
  // went wrong, on few: they live behind a pointer the first allocates, not
  // in every idle connection's parser (see snapshot()).
  uint64_t exchanges = 0;
  std::unique_ptr<Http1Stats> rare_stats;
  Http1Stats& counted() {
    if (rare_stats == nullptr) rare_stats = std::make_unique<Http1Stats>();
    return *rare_stats;
  }
  // Only what is not zero allocates: a resync that dropped nothing is common.
  void countBytes(uint64_t Http1Stats::*counter, uint64_t n) {
    if (n != 0) counted().*counter += n;
  }
  Http1Stats snapshot() const {
    Http1Stats s = rare_stats != nullptr ? *rare_stats : Http1Stats{};
    s.exchanges = exchanges;
    return s;
  }
  uint32_t skip_responses = 0;  // answers of requests dropped at the bound
  ParseOutcome outcome = ParseOutcome::kContinue;
  bool finished = false;
  bool client_lost = false;  // client bytes lost outside a body since a response was last paired
};

Http1Parser::Http1Parser(ExchangeSink& sink, const Http1Limits& limits,
                         const RedactionPolicy* redaction, const ConnectionInfo* conn)
    : impl_(std::make_unique<Impl>(sink, limits, redaction ? *redaction : defaultRedactionPolicy(),
                                   conn)) {}

Http1Parser::~Http1Parser() = default;

ParseResult Http1Parser::onData(Role role, std::span<const uint8_t> bytes, uint64_t ts_ns) {
  const ParseResult r = impl_->onData(role, bytes, ts_ns);
  impl_->detachIfIdle();
  return r;
}

void Http1Parser::onGap(Role role, uint64_t length, uint64_t ts_ns) {
  impl_->onGap(role, length, ts_ns);
  impl_->detachIfIdle();
}

void Http1Parser::onEnd(Role role, bool reset, uint64_t ts_ns) {
  impl_->onEnd(role, reset, ts_ns);
  impl_->detachIfIdle();
}

void Http1Parser::finish(uint64_t ts_ns) {
  impl_->finish(ts_ns);
  impl_->detachIfIdle();
}

uint64_t Http1Parser::skippableBytes(Role role) const { return impl_->skippable(role); }

const HttpRecord& Http1Parser::upgradedRequest() const {
  static const HttpRecord kNone;
  return impl_->upgraded_request != nullptr ? *impl_->upgraded_request : kNone;
}

Upgrade Http1Parser::upgrade() const {
  if (impl_->upgraded_request == nullptr) return {};
  return {"h2c", impl_->upgraded_request.get()};
}

Http1Stats Http1Parser::stats() const { return impl_->snapshot(); }

void Http1Parser::visitCounters(CounterVisitor& v) const {
  const Http1Stats s = impl_->snapshot();
  v.counter("http1.exchanges", s.exchanges, false);
  v.counter("http1.parse_errors", s.parse_errors, true);
  v.counter("http1.resyncs", s.resyncs, false);
  v.counter("http1.resync_dropped_bytes", s.resync_dropped_bytes, true);
  v.counter("http1.gap_skipped_body_bytes", s.gap_skipped_body_bytes, false);
  v.counter("http1.gaps_outside_body", s.gaps_outside_body, false);
  v.counter("http1.tunnel_dropped_bytes", s.tunnel_dropped_bytes, false);
  v.counter("http1.pending_overflows", s.pending_overflows, true);
  v.counter("http1.truncated_fields", s.truncated_fields, true);
  v.counter("http1.ambiguous_messages", s.ambiguous_messages, true);
  v.counter("http1.length_overflows", s.length_overflows, true);
  v.counter("http1.rejected_requests", s.rejected_requests, true);
  v.counter("http1.rejected_dropped_bytes", s.rejected_dropped_bytes, true);
}

}  // namespace l7tap
