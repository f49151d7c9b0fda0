#include "identity/enriching_sink.h"

#include <string_view>

namespace l7tap {

namespace {

// The peer's workload attribute: the observed one's, prefixed. Spelled out
// because field names are views that must outlive the record.
std::string_view peerWorkloadAttribute(WorkloadKind kind) {
  switch (kind) {
    case WorkloadKind::kNone:
      return {};
    case WorkloadKind::kDeployment:
      return "l7tap.peer.k8s.deployment.name";
    case WorkloadKind::kReplicaSet:
      return "l7tap.peer.k8s.replicaset.name";
    case WorkloadKind::kStatefulSet:
      return "l7tap.peer.k8s.statefulset.name";
    case WorkloadKind::kDaemonSet:
      return "l7tap.peer.k8s.daemonset.name";
    case WorkloadKind::kJob:
      return "l7tap.peer.k8s.job.name";
  }
  return {};
}

void strIfAny(FieldVisitor& v, std::string_view name, std::string_view value) {
  if (!value.empty()) v.str(name, value);
}

// A record with the names' fields after its own.
class NamedRecord final : public Record {
 public:
  NamedRecord(const Record& inner, const ConnectionNames& names) : inner_(inner), names_(names) {}
  void visit(const ConnectionInfo& conn, FieldVisitor& v) const override {
    inner_.visit(conn, v);
    visitNames(names_, v);
  }
  void appendMessage(std::string& out, const ConnectionInfo& conn) const override {
    inner_.appendMessage(out, conn);
    appendNames(out, names_);
  }
  int priority() const override { return inner_.priority(); }
  const Record& inner() const override { return inner_.inner(); }
  void visitAdded(const ConnectionInfo& conn, FieldVisitor& v) const override {
    inner_.visitAdded(conn, v);
    visitNames(names_, v);
  }

 private:
  const Record& inner_;
  const ConnectionNames& names_;
};

void appendPod(std::string& out, const Pod& pod) {
  appendPrintable(out, pod.namespace_name);
  out += '/';
  appendPrintable(out, pod.name);
}

}  // namespace

void visitNames(const ConnectionNames& names, FieldVisitor& v) {
  if (!names.observed) return;
  const ObservedIdentity& obs = *names.observed;
  using S = ConnectionNames::Side;
  if (names.side != S::kUnknown) {
    v.str("l7tap.observed.side", names.side == S::kClient ? "client" : "server");
  }
  if (const Pod* pod = obs.pod.get()) {
    strIfAny(v, "k8s.node.name", obs.node_name);
    v.str("k8s.namespace.name", pod->namespace_name);
    v.str("k8s.pod.name", pod->name);
    v.str("k8s.pod.uid", pod->uid);
    strIfAny(v, "k8s.container.name", names.container_name);
    if (!pod->workload_name.empty()) {
      strIfAny(v, workloadAttribute(pod->workload), pod->workload_name);
    }
  } else {
    // The UID from the namespace's cgroups is true without the kubelet.
    strIfAny(v, "k8s.pod.uid", obs.found.pod.pod_uid);
  }
  strIfAny(v, "container.id", names.container_id);
  strIfAny(v, "process.executable.name", names.process_name);
  if (obs.found.netns_inode) v.num("l7tap.netns.inode", obs.found.netns_inode);
  if (const Pod* peer = names.peer.get()) {
    v.str("l7tap.peer.k8s.namespace.name", peer->namespace_name);
    v.str("l7tap.peer.k8s.pod.name", peer->name);
    v.str("l7tap.peer.k8s.pod.uid", peer->uid);
    strIfAny(v, "l7tap.peer.k8s.node.name", peer->node_name);
    if (!peer->workload_name.empty()) {
      strIfAny(v, peerWorkloadAttribute(peer->workload), peer->workload_name);
    }
  }
}

void appendNames(std::string& out, const ConnectionNames& names) {
  if (!names.observed || !names.observed->pod) return;
  out += " (pod ";
  appendPod(out, *names.observed->pod);
  if (names.peer) {
    out += ", peer ";
    appendPod(out, *names.peer);
  }
  out += ')';
}

void EnrichingSink::onRecord(const ConnectionInfo& conn, const Record& record) {
  const ConnectionNames& names = names_.namesOf(conn);
  if (!names.observed) {
    next_.onRecord(conn, record);
    return;
  }
  next_.onRecord(conn, NamedRecord(record, names));
}

}  // namespace l7tap
