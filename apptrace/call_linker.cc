#include "apptrace/call_linker.h"

#include <algorithm>
#include <array>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <limits>
#include <memory>
#include <string_view>
#include <typeinfo>
#include <unordered_map>
#include <utility>

#include "apptrace/call_record.h"
#include "parsers/common/records.h"

namespace l7tap {

namespace {

constexpr uint64_t kOpenEnd = std::numeric_limits<uint64_t>::max();

// A TCP connection's endpoints in canonical order (the pair that compares
// lower first), so that the process's view (local -> remote) and the
// capture's (by Side) meet. Zero-filled: compared and hashed as bytes.
struct ConnKey {
  uint8_t addr[2][16];
  uint16_t port[2];
  uint8_t family;
  uint8_t pad[3];

  bool operator==(const ConnKey& o) const { return std::memcmp(this, &o, sizeof *this) == 0; }
};
static_assert(sizeof(ConnKey) == 40, "ConnKey has no padding the hash would read");

struct ConnKeyHash {
  size_t operator()(const ConnKey& k) const {
    return std::hash<std::string_view>{}({reinterpret_cast<const char*>(&k), sizeof k});
  }
};

ConnKey keyOf(uint8_t family, const uint8_t* a, uint16_t pa, const uint8_t* b, uint16_t pb) {
  ConnKey k;
  std::memset(&k, 0, sizeof k);
  int order = std::memcmp(a, b, 16);
  if (order == 0) order = pa < pb ? -1 : (pa > pb ? 1 : 0);
  if (order > 0) {
    std::swap(a, b);
    std::swap(pa, pb);
  }
  std::memcpy(k.addr[0], a, 16);
  std::memcpy(k.addr[1], b, 16);
  k.port[0] = pa;
  k.port[1] = pb;
  k.family = family;
  return k;
}

ConnKey keyOf(const ConnectionInfo& c) {
  return keyOf(c.family, c.addr[0].data(), c.port[0], c.addr[1].data(), c.port[1]);
}

ConnKey keyOf(const l7tap_flow_key& f) {
  return keyOf(f.family, f.saddr, f.sport, f.daddr, f.dport);
}

// The thread, or the goroutine, a call ran on: nested calls share it.
struct ThreadKey {
  uint32_t tgid = 0;
  uint64_t key = 0;
  bool operator==(const ThreadKey&) const = default;
};

ThreadKey threadOf(const CallEvent& c) { return {c.tgid, c.g != 0 ? c.g : c.tid}; }

// One end of a connection: which role a traced process plays on it.
struct Endpoint {
  std::array<uint8_t, 16> addr{};
  uint16_t port = 0;
  bool operator==(const Endpoint&) const = default;
};

Endpoint localOf(const l7tap_flow_key& f) {
  Endpoint e;
  std::memcpy(e.addr.data(), f.saddr, 16);
  e.port = f.sport;
  return e;
}

Endpoint clientOf(const ConnectionInfo& c) {
  return {c.addr[index(c.client_side)], c.port[index(c.client_side)]};
}

// An exchange as calls are matched to it: from its request's first byte to
// its response's last (open without a response), and who sent the request.
struct Window {
  uint64_t start = 0;
  uint64_t end = 0;
  Endpoint client;
};

// Whether a call that started at `start` (and returned at `end`, 0 while in
// flight) on the socket whose end is `local` can have served the exchange:
// a server's call starts while the exchange is in flight (after its
// request began); a client's call is running when its request begins.
bool serves(const Window& w, const Endpoint& local, uint64_t start, uint64_t end) {
  if (local == w.client) return start <= w.start && (end == 0 || w.start <= end);
  return w.start <= start && start <= w.end;
}

// Among exchanges a call can have served: a server's is the one whose
// request began last before the call, a client's the first to begin in it.
uint64_t preference(const Window& w, const Endpoint& local) {
  return local == w.client ? ~w.start : w.start;
}

// "CONNECTION_ID:N".
struct ExchangeId {
  char text[48];
  uint8_t size = 0;
  std::string_view view() const { return {text, size}; }
};

ExchangeId exchangeIdOf(uint64_t connection_id, uint64_t number) {
  ExchangeId id;
  const int n =
      std::snprintf(id.text, sizeof id.text, "%" PRIu64 ":%" PRIu64, connection_id, number);
  id.size = static_cast<uint8_t>(n > 0 ? n : 0);
  return id;
}

// The fields a wrapper added to an exchange record (the session's capture
// source, the TLS names), kept so that a held copy is written with them:
// only the HttpRecord underneath can be copied. Names are the schema's
// literals and flag names static arrays (record.h), so views are kept.
class AddedFields final : public FieldVisitor {
 public:
  void str(std::string_view name, std::string_view value) override {
    fields_.push_back({Kind::kStr, name, std::string(value)});
  }
  void num(std::string_view name, uint64_t value) override {
    fields_.push_back({Kind::kNum, name, {}, value});
  }
  void inum(std::string_view name, int64_t value) override {
    fields_.push_back({Kind::kInum, name, {}, static_cast<uint64_t>(value)});
  }
  void millis(std::string_view name, uint64_t ns) override {
    fields_.push_back({Kind::kMillis, name, {}, ns});
  }
  void time(std::string_view name, uint64_t ns) override {
    fields_.push_back({Kind::kTime, name, {}, ns});
  }
  void addr(std::string_view name, const uint8_t* addr16, uint8_t family) override {
    Field f{Kind::kAddr, name, std::string(reinterpret_cast<const char*>(addr16), 16), family};
    fields_.push_back(std::move(f));
  }
  void flags(std::string_view name, uint32_t bits, const char* const* names,
             size_t count) override {
    Field f{Kind::kFlags, name, {}, bits};
    f.names = names;
    f.count = count;
    fields_.push_back(std::move(f));
  }

  void replay(FieldVisitor& v) const {
    for (const Field& f : fields_) {
      switch (f.kind) {
        case Kind::kStr:
          v.str(f.name, f.text);
          break;
        case Kind::kNum:
          v.num(f.name, f.value);
          break;
        case Kind::kInum:
          v.inum(f.name, static_cast<int64_t>(f.value));
          break;
        case Kind::kMillis:
          v.millis(f.name, f.value);
          break;
        case Kind::kTime:
          v.time(f.name, f.value);
          break;
        case Kind::kAddr:
          v.addr(f.name, reinterpret_cast<const uint8_t*>(f.text.data()),
                 static_cast<uint8_t>(f.value));
          break;
        case Kind::kFlags:
          v.flags(f.name, static_cast<uint32_t>(f.value), f.names, f.count);
          break;
      }
    }
  }

 private:
  enum class Kind : uint8_t { kStr, kNum, kInum, kMillis, kTime, kAddr, kFlags };
  struct Field {
    Kind kind;
    std::string_view name;
    std::string text;  // kStr; kAddr: the 16 bytes
    uint64_t value = 0;
    const char* const* names = nullptr;  // kFlags
    size_t count = 0;
  };
  std::vector<Field> fields_;
};

// A held exchange as the pipeline wrote it: the copied HttpRecord, then the
// fields its wrappers had added.
class HeldRecord final : public Record {
 public:
  HeldRecord(const HttpRecord& record, const AddedFields& added) : record_(record), added_(added) {}
  void visit(const ConnectionInfo& conn, FieldVisitor& v) const override {
    record_.visit(conn, v);
    added_.replay(v);
  }
  void appendMessage(std::string& out, const ConnectionInfo& conn) const override {
    record_.appendMessage(out, conn);
  }
  int priority() const override { return record_.priority(); }
  const Record& inner() const override { return record_; }
  void visitAdded(const ConnectionInfo&, FieldVisitor& v) const override { added_.replay(v); }

 private:
  const HttpRecord& record_;
  const AddedFields& added_;
};

// What a linked exchange gains after its own fields.
class LinkedExchange final : public Record {
 public:
  LinkedExchange(const Record& outer, const CallEvent& call, std::string_view function,
                 std::string_view exchange_id, uint64_t response_end_ns)
      : outer_(outer),
        call_(call),
        function_(function),
        exchange_id_(exchange_id),
        response_end_ns_(response_end_ns) {}

  void visit(const ConnectionInfo& conn, FieldVisitor& v) const override {
    outer_.visit(conn, v);
    visitLink(v);
  }
  void appendMessage(std::string& out, const ConnectionInfo& conn) const override {
    outer_.appendMessage(out, conn);
    out.append(" (call ");
    appendPrintable(out, function_);
    out.push_back(' ');
    appendMillis(out, call_.durationNs());
    out.push_back(')');
  }
  int priority() const override { return outer_.priority(); }
  const Record& inner() const override { return outer_.inner(); }
  void visitAdded(const ConnectionInfo& conn, FieldVisitor& v) const override {
    outer_.visitAdded(conn, v);
    visitLink(v);
  }

 private:
  void visitLink(FieldVisitor& v) const {
    v.str("l7tap.exchange_id", exchange_id_);
    visitCallOnExchange(call_, function_, response_end_ns_, v);
  }

  const Record& outer_;
  const CallEvent& call_;
  std::string_view function_;
  std::string_view exchange_id_;
  uint64_t response_end_ns_;
};

}  // namespace

// ---------------------------------------------------------------------------

struct CallLinkerState {
  struct Counted {
    uint64_t connection_id = 0;
    uint64_t exchanges = 0;
  };

  struct InFlight {
    uint64_t call_id;
    uint64_t start_ns;
    ThreadKey thread;
    Endpoint local;  // the process's end of the entry's socket
  };

  struct Entry {
    ConnKey key;  // the connection it is filed under
    Endpoint local;
  };

  // An exchange record waiting for a call, copied (the original is the
  // caller's only during onRecord).
  struct HeldExchange {
    HttpRecord record;
    AddedFields added;  // by the wrappers around `record` (capture source)
    ConnectionInfo conn;
    ExchangeId id;
    Window window;
    uint64_t last_ns = 0;  // its last byte: the wait's start
    bool has_primary = false;
    CallEvent primary;  // the outermost call linked so far
  };

  // What waits on one connection.
  struct Waiting {
    std::vector<InFlight> in_flight;
    std::vector<CallEvent> calls;
    std::vector<std::unique_ptr<HeldExchange>> exchanges;
    bool empty() const { return in_flight.empty() && calls.empty() && exchanges.empty(); }
  };

  std::unordered_map<ConnKey, Counted, ConnKeyHash> counted;
  std::unordered_map<ConnKey, Waiting, ConnKeyHash> waiting;
  std::unordered_map<uint64_t, Entry> entries;  // by call id
  size_t held_calls = 0;
  size_t held_exchanges = 0;
};

namespace {

using State = CallLinkerState;

// Whether an exchange must still wait for the in-flight call `f`: `f` can
// have served it and, once the exchange has a call (`primary`), `f` is an
// outer call on the same thread (a parallel stream's handler is not waited
// for).
bool waitsFor(const Window& window, const CallEvent* primary, const State::InFlight& f) {
  if (!serves(window, f.local, f.start_ns, 0)) return false;
  if (primary == nullptr) return true;
  return f.thread == threadOf(*primary) && f.start_ns <= primary->start_ns;
}

bool waitsForAny(const Window& window, const CallEvent* primary,
                 const std::vector<State::InFlight>& in_flight) {
  for (const State::InFlight& f : in_flight) {
    if (waitsFor(window, primary, f)) return true;
  }
  return false;
}

std::string_view functionName(const std::vector<std::string>& functions, uint16_t index) {
  return index < functions.size() ? std::string_view(functions[index]) : "unknown";
}

// Where the linker's records go, counted.
struct Writer {
  RecordSink& next;
  LinkerStats& stats;
  const std::vector<std::string>& functions;

  void callUnlinked(const CallEvent& call) {
    CallRecord r;
    r.call = &call;
    r.function = functionName(functions, call.function);
    ++stats.calls;
    next.onRecord(callConnection(call), r);
  }
  void callLinked(const CallEvent& call, const ConnectionInfo& conn, std::string_view id) {
    CallRecord r;
    r.call = &call;
    r.function = functionName(functions, call.function);
    r.exchange_id = id;
    ++stats.calls;
    ++stats.linked;
    next.onRecord(conn, r);
  }
  void exchange(const ConnectionInfo& conn, const Record& record, const CallEvent* primary,
                std::string_view id, uint64_t response_end_ns) {
    if (primary == nullptr) {
      next.onRecord(conn, record);
      return;
    }
    next.onRecord(conn, LinkedExchange(record, *primary, functionName(functions, primary->function),
                                       id, response_end_ns));
  }
  void held(State::HeldExchange& h) {
    exchange(h.conn, HeldRecord(h.record, h.added), h.has_primary ? &h.primary : nullptr,
             h.id.view(), h.record.response_end_ns);
  }
};

// Writes the held exchanges of `w` that no longer wait for a call.
void release(State& s, State::Waiting& w, Writer& out) {
  auto& held = w.exchanges;
  for (size_t i = 0; i < held.size();) {
    State::HeldExchange& h = *held[i];
    if (waitsForAny(h.window, h.has_primary ? &h.primary : nullptr, w.in_flight)) {
      ++i;
      continue;
    }
    out.held(h);
    held.erase(held.begin() + static_cast<std::ptrdiff_t>(i));
    --s.held_exchanges;
  }
}

void eraseIfEmpty(State& s, decltype(State::waiting)::iterator it) {
  if (it != s.waiting.end() && it->second.empty()) s.waiting.erase(it);
}

}  // namespace

CallLinker::CallLinker(RecordSink& next, const std::vector<std::string>& functions)
    : next_(next), functions_(functions), state_(std::make_unique<CallLinkerState>()) {}

CallLinker::~CallLinker() = default;

void CallLinker::onRecord(const ConnectionInfo& conn, const Record& record) {
  const Record& inner = record.inner();
  if (typeid(inner) == typeid(HttpRecord)) {
    onExchange(conn, record, static_cast<const HttpRecord&>(inner));
    return;
  }
  next_.onRecord(conn, record);
  if (typeid(inner) == typeid(ConnRecord) && !static_cast<const ConnRecord&>(inner).interim) {
    onConnectionEnd(conn);
  }
}

void CallLinker::onExchange(const ConnectionInfo& conn, const Record& record,
                            const HttpRecord& http) {
  if (catch_up_) catch_up_();
  CallLinkerState& s = *state_;
  const ConnKey key = keyOf(conn);
  uint64_t number = 0;
  {
    auto it = s.counted.size() < LinkerLimits::kMaxConnections
                  ? s.counted.try_emplace(key, State::Counted{conn.id, 0}).first
                  : s.counted.find(key);
    if (it != s.counted.end()) {
      // Another connection on the same endpoints (port reuse): counted anew.
      if (it->second.connection_id != conn.id) it->second = {conn.id, 0};
      number = ++it->second.exchanges;
    }
  }
  if (s.waiting.empty()) {
    next_.onRecord(conn, record);
    return;
  }
  auto wit = s.waiting.find(key);
  // No request: no window a call could have started in.
  if (wit == s.waiting.end() || http.request_start_ns == 0 || number == 0) {
    if (wit != s.waiting.end() && number == 0) ++stats_.dropped_over_bound;
    next_.onRecord(conn, record);
    return;
  }
  State::Waiting& w = wit->second;
  Writer out{next_, stats_, functions_};
  const Window window{http.request_start_ns, http.response_end_ns ? http.response_end_ns : kOpenEnd,
                      clientOf(conn)};
  const ExchangeId id = exchangeIdOf(conn.id, number);

  // The returned calls it claims: the first to start of those that can have
  // served it, and the calls nested in that one on its thread.
  const CallEvent* primary = nullptr;
  for (const CallEvent& c : w.calls) {
    if (serves(window, localOf(c.conn), c.start_ns, c.end_ns) &&
        (primary == nullptr || c.start_ns < primary->start_ns)) {
      primary = &c;
    }
  }
  CallEvent primary_copy;
  if (primary != nullptr) {
    primary_copy = *primary;
    const ThreadKey thread = threadOf(primary_copy);
    for (size_t i = 0; i < w.calls.size();) {
      const CallEvent& c = w.calls[i];
      const bool claimed = serves(window, localOf(c.conn), c.start_ns, c.end_ns) &&
                           threadOf(c) == thread && c.start_ns >= primary_copy.start_ns &&
                           c.end_ns <= primary_copy.end_ns;
      if (!claimed) {
        ++i;
        continue;
      }
      out.callLinked(c, conn, id.view());
      w.calls.erase(w.calls.begin() + static_cast<std::ptrdiff_t>(i));
      --s.held_calls;
    }
  }

  const CallEvent* linked = primary != nullptr ? &primary_copy : nullptr;
  const bool waits = waitsForAny(window, linked, w.in_flight);
  if (!waits || s.held_exchanges >= LinkerLimits::kMaxHeldExchanges) {
    if (waits) ++stats_.dropped_over_bound;
    out.exchange(conn, record, linked, id.view(), http.response_end_ns);
    eraseIfEmpty(s, wit);
    return;
  }
  auto held = std::make_unique<State::HeldExchange>();
  held->window = window;
  held->has_primary = linked != nullptr;
  if (linked != nullptr) held->primary = primary_copy;
  held->record = http;
  // What the wrappers around it add (every pipeline record is one: the
  // session's capture source); nothing when `record` is the HttpRecord.
  record.visitAdded(conn, held->added);
  held->conn = conn;
  // The kernel's counters are the caller's, valid only during this call.
  held->conn.kernel = nullptr;
  held->id = id;
  held->last_ns = std::max(
      {http.request_start_ns, http.request_end_ns, http.response_start_ns, http.response_end_ns});
  w.exchanges.push_back(std::move(held));
  ++s.held_exchanges;
  ++stats_.exchanges_held;
}

void CallLinker::onConnectionEnd(const ConnectionInfo& conn) {
  CallLinkerState& s = *state_;
  const ConnKey key = keyOf(conn);
  if (auto it = s.counted.find(key); it != s.counted.end() && it->second.connection_id == conn.id) {
    s.counted.erase(it);
  }
  auto wit = s.waiting.find(key);
  if (wit == s.waiting.end()) return;
  // Its exchanges were all written before its final record: the calls
  // still waiting for one wait in vain.
  Writer out{next_, stats_, functions_};
  for (const CallEvent& c : wit->second.calls) {
    out.callUnlinked(c);
    ++stats_.calls_timed_out;
  }
  s.held_calls -= wit->second.calls.size();
  wit->second.calls.clear();
  eraseIfEmpty(s, wit);
}

void CallLinker::onCallEntry(const CallEvent& entry) {
  if (!entry.conn_known) return;
  CallLinkerState& s = *state_;
  const uint64_t id = entry.callId();
  if (s.entries.count(id)) return;
  if (s.entries.size() >= LinkerLimits::kMaxInFlight) {
    ++stats_.dropped_over_bound;
    return;
  }
  const ConnKey key = keyOf(entry.conn);
  const Endpoint local = localOf(entry.conn);
  s.entries.emplace(id, State::Entry{key, local});
  s.waiting[key].in_flight.push_back({id, entry.start_ns, threadOf(entry), local});
}

void CallLinker::onCall(const CallEvent& call) {
  CallLinkerState& s = *state_;
  Writer out{next_, stats_, functions_};
  // Its entry stops making exchanges wait.
  bool had_entry = false;
  ConnKey entry_key;
  Endpoint entry_local;
  if (auto e = s.entries.find(call.callId()); e != s.entries.end()) {
    had_entry = true;
    entry_key = e->second.key;
    entry_local = e->second.local;
    s.entries.erase(e);
    if (auto wit = s.waiting.find(entry_key); wit != s.waiting.end()) {
      auto& in_flight = wit->second.in_flight;
      for (size_t i = 0; i < in_flight.size(); ++i) {
        if (in_flight[i].call_id != call.callId()) continue;
        in_flight.erase(in_flight.begin() + static_cast<std::ptrdiff_t>(i));
        break;
      }
    }
  }

  // The held exchange it serves: on its entry's connection first (the
  // request its thread read), then on the one it did I/O on.
  const ConnKey return_key = call.conn_known ? keyOf(call.conn) : ConnKey{};
  State::HeldExchange* best = nullptr;
  auto consider = [&](const ConnKey& key, const Endpoint& local) {
    auto wit = s.waiting.find(key);
    if (wit == s.waiting.end()) return;
    for (auto& h : wit->second.exchanges) {
      if (!serves(h->window, local, call.start_ns, call.end_ns)) continue;
      if (h->has_primary && threadOf(h->primary) != threadOf(call)) continue;
      if (best == nullptr || preference(h->window, local) > preference(best->window, local)) {
        best = h.get();
      }
    }
  };
  if (had_entry) consider(entry_key, entry_local);
  if (best == nullptr && call.conn_known && !(had_entry && entry_key == return_key)) {
    consider(return_key, localOf(call.conn));
  }
  if (best != nullptr) {
    out.callLinked(call, best->conn, best->id.view());
    if (!best->has_primary || call.start_ns < best->primary.start_ns) best->primary = call;
    best->has_primary = true;
  } else if (!call.conn_known) {
    out.callUnlinked(call);
  } else if (s.held_calls >= LinkerLimits::kMaxHeldCalls) {
    ++stats_.dropped_over_bound;
    out.callUnlinked(call);
  } else {
    s.waiting[return_key].calls.push_back(call);
    ++s.held_calls;
  }

  const ConnKey* touched[] = {had_entry ? &entry_key : nullptr,
                              call.conn_known ? &return_key : nullptr};
  for (const ConnKey* key : touched) {
    if (key == nullptr) continue;
    auto wit = s.waiting.find(*key);
    if (wit == s.waiting.end()) continue;
    release(s, wit->second, out);
    eraseIfEmpty(s, wit);
  }
}

void CallLinker::expire(uint64_t now_ns) {
  CallLinkerState& s = *state_;
  Writer out{next_, stats_, functions_};
  const auto past = [now_ns](uint64_t since, uint64_t wait) {
    return now_ns > since && now_ns - since > wait;
  };
  for (auto wit = s.waiting.begin(); wit != s.waiting.end();) {
    State::Waiting& w = wit->second;
    for (size_t i = 0; i < w.in_flight.size();) {
      if (!past(w.in_flight[i].start_ns, LinkerLimits::kMaxInFlightNs)) {
        ++i;
        continue;
      }
      s.entries.erase(w.in_flight[i].call_id);
      w.in_flight.erase(w.in_flight.begin() + static_cast<std::ptrdiff_t>(i));
      ++stats_.in_flight_expired;
    }
    for (size_t i = 0; i < w.calls.size();) {
      if (!past(w.calls[i].end_ns, LinkerLimits::kMaxWaitNs)) {
        ++i;
        continue;
      }
      out.callUnlinked(w.calls[i]);
      ++stats_.calls_timed_out;
      w.calls.erase(w.calls.begin() + static_cast<std::ptrdiff_t>(i));
      --s.held_calls;
    }
    for (size_t i = 0; i < w.exchanges.size();) {
      State::HeldExchange& h = *w.exchanges[i];
      if (!past(h.last_ns, LinkerLimits::kMaxWaitNs)) {
        ++i;
        continue;
      }
      if (!h.has_primary) ++stats_.exchanges_timed_out;
      out.held(h);
      w.exchanges.erase(w.exchanges.begin() + static_cast<std::ptrdiff_t>(i));
      --s.held_exchanges;
    }
    // Entries forgotten above may have been all an exchange waited for.
    release(s, w, out);
    wit = w.empty() ? s.waiting.erase(wit) : std::next(wit);
  }
}

void CallLinker::flush() {
  CallLinkerState& s = *state_;
  Writer out{next_, stats_, functions_};
  for (auto& [key, w] : s.waiting) {
    for (auto& h : w.exchanges) out.held(*h);
    for (const CallEvent& c : w.calls) out.callUnlinked(c);
  }
  s.waiting.clear();
  s.entries.clear();
  s.held_calls = 0;
  s.held_exchanges = 0;
}

}  // namespace l7tap
