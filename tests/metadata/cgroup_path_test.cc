// Cgroup layouts of the container runtimes under both kubelet cgroup drivers,
// and the shapes that must yield no pod rather than a wrong one.
#include "metadata/cgroup_path.h"

#include <gtest/gtest.h>

#include <string>

namespace l7tap::metadata {
namespace {

const std::string kId = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const std::string kId2 = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";
const std::string kUid = "6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
const std::string kUidUnderscored = "6a1b2c3d_4e5f_4a6b_8c7d_9e0f1a2b3c4d";

struct PathCase {
  const char* name;
  std::string path;
  std::string container_id;
  std::string pod_uid;
  QosClass qos;
  ContainerRuntime runtime;
};

class CgroupPathTest : public ::testing::TestWithParam<PathCase> {};

TEST_P(CgroupPathTest, Parses) {
  const PathCase& c = GetParam();
  const CgroupIdentity got = parseCgroupPath(c.path);
  EXPECT_EQ(got.container_id, c.container_id) << c.path;
  EXPECT_EQ(got.pod_uid, c.pod_uid) << c.path;
  EXPECT_EQ(got.qos, c.qos) << c.path;
  EXPECT_EQ(got.runtime, c.runtime) << c.path;
  EXPECT_FALSE(got.ambiguous) << c.path;
}

using Q = QosClass;
using R = ContainerRuntime;

INSTANTIATE_TEST_SUITE_P(
    Layouts, CgroupPathTest,
    ::testing::Values(
        // containerd, systemd driver, each QoS class.
        PathCase{"containerd_systemd_burstable",
                 "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" +
                     kUidUnderscored + ".slice/cri-containerd-" + kId + ".scope",
                 kId, kUid, Q::kBurstable, R::kContainerd},
        PathCase{"containerd_systemd_besteffort",
                 "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" +
                     kUidUnderscored + ".slice/cri-containerd-" + kId + ".scope",
                 kId, kUid, Q::kBestEffort, R::kContainerd},
        PathCase{"containerd_systemd_guaranteed",
                 "/kubepods.slice/kubepods-pod" + kUidUnderscored + ".slice/cri-containerd-" + kId +
                     ".scope",
                 kId, kUid, Q::kGuaranteed, R::kContainerd},
        // containerd (or Docker via cri-dockerd), cgroupfs driver: bare ids.
        PathCase{"containerd_cgroupfs_burstable", "/kubepods/burstable/pod" + kUid + "/" + kId, kId,
                 kUid, Q::kBurstable, R::kUnknown},
        PathCase{"containerd_cgroupfs_guaranteed", "/kubepods/pod" + kUid + "/" + kId, kId, kUid,
                 Q::kGuaranteed, R::kUnknown},
        // CRI-O, both drivers.
        PathCase{"crio_systemd_guaranteed",
                 "/kubepods.slice/kubepods-pod" + kUidUnderscored + ".slice/crio-" + kId + ".scope",
                 kId, kUid, Q::kGuaranteed, R::kCrio},
        PathCase{"crio_cgroupfs", "/kubepods/besteffort/pod" + kUid + "/crio-" + kId, kId, kUid,
                 Q::kBestEffort, R::kCrio},
        // CRI-O's monitor sits in the pod but is no container.
        PathCase{"crio_conmon",
                 "/kubepods.slice/kubepods-pod" + kUidUnderscored + ".slice/crio-conmon-" + kId +
                     ".scope",
                 "", kUid, Q::kGuaranteed, R::kUnknown},
        // Docker (dockershim / cri-dockerd).
        PathCase{"docker_cgroupfs_scope",
                 "/kubepods/besteffort/pod" + kUid + "/docker-" + kId + ".scope", kId, kUid,
                 Q::kBestEffort, R::kDocker},
        PathCase{"docker_systemd",
                 "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" +
                     kUidUnderscored + ".slice/docker-" + kId + ".scope",
                 kId, kUid, Q::kBurstable, R::kDocker},
        // Plain containers: an id, no pod.
        PathCase{"docker_plain_systemd", "/system.slice/docker-" + kId + ".scope", kId, "",
                 Q::kUnknown, R::kDocker},
        PathCase{"docker_plain_cgroupfs", "/docker/" + kId, kId, "", Q::kUnknown, R::kDocker},
        PathCase{"podman_plain", "/machine.slice/libpod-" + kId + ".scope/container", kId, "",
                 Q::kUnknown, R::kPodman},
        // kind: the kubelet under "kubelet" inside the node container, seen
        // from inside (cgroup namespace) and from the host.
        PathCase{"kind_systemd_inside",
                 "/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/"
                 "kubelet-kubepods-besteffort-pod" +
                     kUidUnderscored + ".slice/cri-containerd-" + kId + ".scope",
                 kId, kUid, Q::kBestEffort, R::kContainerd},
        PathCase{"kind_systemd_from_host",
                 "/system.slice/docker-" + kId2 +
                     ".scope/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-pod" +
                     kUidUnderscored + ".slice/cri-containerd-" + kId + ".scope",
                 kId, kUid, Q::kGuaranteed, R::kContainerd},
        PathCase{"kind_cgroupfs", "/kubelet/kubepods/burstable/pod" + kUid + "/" + kId, kId, kUid,
                 Q::kBurstable, R::kUnknown},
        // The kind node's own processes: the node container, no pod.
        PathCase{"kind_node_process",
                 "/system.slice/docker-" + kId2 + ".scope/system.slice/containerd.service", kId2,
                 "", Q::kUnknown, R::kDocker},
        // Read from inside another cgroup namespace (l7tap in a container
        // with its own), paths climb out of its root with "..".
        PathCase{"outside_own_cgroupns",
                 "/../../kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" +
                     kUidUnderscored + ".slice/cri-containerd-" + kId + ".scope",
                 kId, kUid, Q::kBurstable, R::kContainerd},
        // Sub-cgroups a container made for itself: still that container.
        PathCase{"nested_in_container",
                 "/kubepods/burstable/pod" + kUid + "/" + kId + "/init.scope", kId, kUid,
                 Q::kBurstable, R::kUnknown},
        // A process in the pod level itself (no container below).
        PathCase{"pod_level", "/kubepods/burstable/pod" + kUid, "", kUid, Q::kBurstable,
                 R::kUnknown},
        // Uppercase in a UID is normalised.
        PathCase{"uppercase_uid", "/kubepods/pod6A1B2C3D-4E5F-4A6B-8C7D-9E0F1A2B3C4D/" + kId, kId,
                 kUid, Q::kGuaranteed, R::kUnknown},
        // Not pods: each must yield no UID.
        PathCase{"root", "/", "", "", Q::kUnknown, R::kUnknown},
        PathCase{"empty", "", "", "", Q::kUnknown, R::kUnknown},
        PathCase{"host_service", "/system.slice/kubelet.service", "", "", Q::kUnknown, R::kUnknown},
        PathCase{"qos_level_only", "/kubepods.slice/kubepods-burstable.slice", "", "", Q::kUnknown,
                 R::kUnknown},
        PathCase{"pod_without_kubepods", "/burstable/pod" + kUid + "/" + kId, "", "", Q::kUnknown,
                 R::kUnknown},
        PathCase{"pod_under_unknown_qos", "/kubepods/golden/pod" + kUid + "/" + kId, "", "",
                 Q::kUnknown, R::kUnknown},
        PathCase{"short_uid", "/kubepods/pod6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4/" + kId, "", "",
                 Q::kUnknown, R::kUnknown},
        PathCase{"uid_bad_separator", "/kubepods/pod6a1b2c3d-4e5f-4a6b-8c7d+9e0f1a2b3c4d/" + kId,
                 "", "", Q::kUnknown, R::kUnknown},
        // A systemd pod slice whose parent is not its ancestry: not the kubelet's.
        PathCase{"systemd_wrong_parent",
                 "/other.slice/kubepods-burstable-pod" + kUidUnderscored +
                     ".slice/cri-containerd-" + kId + ".scope",
                 kId, "", Q::kUnknown, R::kContainerd},
        PathCase{"systemd_qos_mismatch",
                 "/kubepods.slice/kubepods-besteffort.slice/kubepods-burstable-pod" +
                     kUidUnderscored + ".slice/cri-containerd-" + kId + ".scope",
                 kId, "", Q::kUnknown, R::kContainerd},
        // A container id one digit short is no container.
        PathCase{"short_container_id", "/kubepods/pod" + kUid + "/" + kId.substr(1), "", kUid,
                 Q::kGuaranteed, R::kUnknown},
        // A bare hex level outside Docker's parent is not claimed.
        PathCase{"bare_id_elsewhere", "/user.slice/" + kId, "", "", Q::kUnknown, R::kUnknown}),
    [](const ::testing::TestParamInfo<PathCase>& info) { return std::string(info.param.name); });

TEST(CgroupPath, TwoPodLevelsAreAmbiguous) {
  const CgroupIdentity got = parseCgroupPath(
      "/kubepods/pod" + kUid + "/kubepods/pod6a1b2c3d-4e5f-4a6b-8c7d-000000000000/" + kId);
  EXPECT_TRUE(got.ambiguous);
  EXPECT_TRUE(got.pod_uid.empty());
  EXPECT_TRUE(got.container_id.empty());
}

TEST(ProcCgroup, V2Line) {
  const CgroupIdentity got =
      parseProcCgroup("0::/kubepods/burstable/pod" + kUid + "/" + kId + "\n");
  EXPECT_EQ(got.pod_uid, kUid);
  EXPECT_EQ(got.container_id, kId);
  EXPECT_EQ(got.qos, QosClass::kBurstable);
}

TEST(ProcCgroup, V1LinesAgreeSomeAtRoot) {
  const std::string content = "12:pids:/kubepods/besteffort/pod" + kUid + "/" + kId +
                              "\n"
                              "11:net_cls,net_prio:/\n"
                              "10:memory:/kubepods/besteffort/pod" +
                              kUid + "/" + kId +
                              "\n"
                              "1:name=systemd:/kubepods/besteffort/pod" +
                              kUid + "/" + kId +
                              "\n"
                              "0::/\n";
  const CgroupIdentity got = parseProcCgroup(content);
  EXPECT_FALSE(got.ambiguous);
  EXPECT_EQ(got.pod_uid, kUid);
  EXPECT_EQ(got.container_id, kId);
  EXPECT_EQ(got.qos, QosClass::kBestEffort);
}

TEST(ProcCgroup, V1LineStoppingAtPodLevelStillAgrees) {
  const std::string content =
      "4:cpu:/kubepods/pod" + kUid + "\n3:memory:/kubepods/pod" + kUid + "/" + kId + "\n";
  const CgroupIdentity got = parseProcCgroup(content);
  EXPECT_FALSE(got.ambiguous);
  EXPECT_EQ(got.pod_uid, kUid);
  EXPECT_EQ(got.container_id, kId);
}

TEST(ProcCgroup, DisagreeingLinesNameNoPod) {
  const std::string content = "4:cpu:/kubepods/pod" + kUid + "/" + kId +
                              "\n"
                              "0::/kubepods/pod" +
                              kUid + "/" + kId2 + "\n";
  const CgroupIdentity got = parseProcCgroup(content);
  EXPECT_TRUE(got.ambiguous);
  EXPECT_TRUE(got.pod_uid.empty());
  EXPECT_TRUE(got.container_id.empty());
}

TEST(ProcCgroup, GarbageIsEmpty) {
  EXPECT_TRUE(parseProcCgroup("").empty());
  EXPECT_TRUE(parseProcCgroup("no colons here\n::\n:").empty());
  EXPECT_TRUE(parseProcCgroup(std::string("0::/kubepods/pod") + '\0' + kUid).empty());
}

TEST(ProcCgroup, PathWithColons) {
  // cgroup names may hold colons; only the first two separate fields.
  const CgroupIdentity got = parseProcCgroup("0::/odd:name/docker/" + kId + "\n");
  EXPECT_EQ(got.container_id, kId);
}

TEST(PodUid, Normalises) {
  EXPECT_EQ(normalisePodUid(kUidUnderscored), kUid);
  EXPECT_EQ(normalisePodUid(kUid), kUid);
  EXPECT_EQ(normalisePodUid(kUid + "0"), "");
  EXPECT_EQ(normalisePodUid("6a1b2c3dx4e5f-4a6b-8c7d-9e0f1a2b3c4d"), "");
  EXPECT_EQ(normalisePodUid("6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4g"), "");
}

}  // namespace
}  // namespace l7tap::metadata
