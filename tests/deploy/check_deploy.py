#!/usr/bin/env python3
"""Checks of deploy/: what a cluster, systemd or an image build would only
tell at install time. One subcommand per ctest test:

  manifests   deploy/kubernetes/*.yaml parse; the DaemonSet keeps its least
              privilege (no privileged, exactly the capabilities, mounts,
              probes, limits, --user of the Containerfile's user) and names
              the Containerfile's image; the ConfigMap's config file, mounted
              and passed with --config, passes `l7tap config check`, also
              with the TLS uprobes turned off; then the schema check
              (check_manifests.mjs, npm kubernetes-models).
  unit        deploy/systemd/l7tap.service passes `systemd-analyze verify`,
              keeps its sandboxing, and its `systemd-analyze security`
              exposure stays at most MAX_EXPOSURE, and MAX_EXPOSURE_NO_TLS
              with its comments' recipe for running without TLS uprobes.
  container   deploy/Containerfile's build stage runs `.ci/deps build` and its
              runtime stage installs the Debian packages of every library
              the built binary loads (ldd, dpkg -S).
"""
import argparse
import os
import re
import subprocess
import sys
import tempfile

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
DEPLOY = os.path.join(ROOT, "deploy")
# What the TLS uprobes (on by default) add: PERFMON loads their programs,
# SYS_ADMIN attaches uprobes, also to files found after the drop (privileges/).
TLS_CAPABILITIES = {"PERFMON", "SYS_ADMIN"}
# What the DaemonSet's container is given: what loading, attaching, pod
# identity and the TLS uprobes use, plus what switching to --user takes
# (SETUID, SETGID, CHOWN for the lock directory, SETPCAP for the bounding
# set); l7tap drops all but NET_ADMIN, SYS_PTRACE, DAC_READ_SEARCH and
# SYS_ADMIN once attached (privileges/).
CAPABILITIES = {"BPF", "NET_ADMIN", "SYS_PTRACE", "DAC_READ_SEARCH",
                "SETUID", "SETGID", "SETPCAP", "CHOWN"} | TLS_CAPABILITIES
# The unit never runs as root (DynamicUser): no switch, no bounding-set cut.
UNIT_CAPABILITIES = {"BPF", "NET_ADMIN", "SYS_PTRACE", "DAC_READ_SEARCH"} | TLS_CAPABILITIES
# The ConfigMap key that turns the TLS uprobes off (shown commented out).
NO_TLS_KEY = "no-tls-uprobes: true"
# The account the DaemonSet's l7tap becomes (--user), made by the Containerfile.
USER = "l7tap"
# Host paths the DaemonSet mounts: path -> (mount path, read-only).
# No /sys/fs/bpf: only XDP mode (libxdp's pinned dispatcher) uses it.
MOUNTS = {
    "/run/systemd/journal": ("/run/systemd/journal", False),
    "/sys/fs/cgroup": ("/sys/fs/cgroup", True),
    "/proc": ("/host/proc", True),
    "/run/l7tap": ("/run/l7tap", False),
}
IFACE_GLOBS = ["cali*", "lxc*", "veth*"]
# Where the DaemonSet mounts the ConfigMap's config file (key CONFIG_KEY).
CONFIG_DIR = "/etc/l7tap"
CONFIG_KEY = "l7tap.yaml"
# systemd-analyze security: 2.8 with the TLS uprobes (SYS_ADMIN 0.3 and
# perf_event_open, in @debug, 0.2 over 2.4); 2.4 with the unit's own recipe
# for running without them (NO_TLS_DROPIN, which its comments must show).
MAX_EXPOSURE = 2.8
MAX_EXPOSURE_NO_TLS = 2.5
NO_TLS_DROPIN = ["CapabilityBoundingSet=~CAP_PERFMON CAP_SYS_ADMIN",
                 "AmbientCapabilities=~CAP_PERFMON CAP_SYS_ADMIN",
                 "SystemCallFilter=~perf_event_open"]

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)


def check_options(opts, helptext):
    """Every --option (a --opt=value counts as --opt) must be one `l7tap
    attach --help` lists."""
    for opt in (x.split("=", 1)[0] for x in opts if x.startswith("--")):
        if not re.search(rf"^\s+{re.escape(opt)}\b", helptext, re.M):
            failures.append(f"l7tap has no option {opt}")


def value_of(args, opt):
    return next((args[i + 1] for i in range(len(args) - 1) if args[i] == opt), None)


def containerfile():
    with open(os.path.join(DEPLOY, "Containerfile")) as f:
        return f.read()


def image_tag():
    m = re.search(r"build -f deploy/Containerfile -t (\S+) \.", containerfile())
    return m.group(1) if m else None


def manifests(args):
    import yaml

    kdir = os.path.join(DEPLOY, "kubernetes")
    files = sorted(os.path.join(kdir, f) for f in os.listdir(kdir) if f.endswith(".yaml"))
    objs = []
    for path in files:
        with open(path) as f:
            objs += [(path, o) for o in yaml.safe_load_all(f) if o is not None]
    kinds = {o["kind"]: o for _, o in objs}
    # kubectl apply -f DIR applies files in name order: the namespace first.
    check(objs and objs[0][1]["kind"] == "Namespace", "the Namespace must be in the first file")
    for k in ["Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "ConfigMap", "DaemonSet"]:
        check(k in kinds, f"no {k}")
    ds = kinds["DaemonSet"]
    pod = ds["spec"]["template"]["spec"]
    check(pod.get("hostNetwork") is True, "hostNetwork must be true (the node's veths)")
    check(not pod.get("hostPID"), "hostPID: the host's /proc is mounted instead")
    check(pod.get("serviceAccountName") == kinds["ServiceAccount"]["metadata"]["name"], "service account")
    check({"operator": "Exists"} in pod.get("tolerations", []), "must tolerate every taint")
    (c,) = pod["containers"]
    sc = c.get("securityContext", {})
    check(sc.get("privileged") is not True, "privileged")
    check(sc.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation must be false")
    check(sc.get("readOnlyRootFilesystem") is True, "readOnlyRootFilesystem")
    caps = sc.get("capabilities", {})
    check(caps.get("drop") == ["ALL"], "capabilities must drop ALL")
    check(set(caps.get("add", [])) == CAPABILITIES, f"capabilities {caps.get('add')} != {sorted(CAPABILITIES)}")
    res = c.get("resources", {})
    for kind in ("requests", "limits"):
        for r in ("cpu", "memory"):
            check(r in res.get(kind, {}), f"resources.{kind}.{r} missing")
    for probe in ("readinessProbe", "livenessProbe"):
        check(probe in c, f"{probe} missing")
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    mounts = {m["name"]: m for m in c.get("volumeMounts", [])}
    host = {v["hostPath"]["path"]: n for n, v in volumes.items() if "hostPath" in v}
    check(set(host) == set(MOUNTS), f"host paths {sorted(host)} != {sorted(MOUNTS)}")
    for path, (mount_path, ro) in MOUNTS.items():
        m = mounts.get(host.get(path))
        check(m is not None and m["mountPath"] == mount_path, f"{path} must be mounted at {mount_path}")
        if m is not None:
            check(bool(m.get("readOnly")) == ro, f"{path} readOnly must be {ro}")
    env = {e["name"]: e for e in c.get("env", [])}
    check(env.get("NODE_NAME", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "spec.nodeName",
          "NODE_NAME from spec.nodeName")
    check(c.get("image") == image_tag(), f"image {c.get('image')} != Containerfile's {image_tag()}")
    check(c.get("command") == ["/usr/local/bin/l7tap"] and "/usr/local/bin/l7tap" in containerfile(),
          "the command must be the binary the Containerfile installs")
    a = c.get("args", [])
    check(a[:1] == ["attach"], "args must start with attach")
    # Every option must exist in today's binary; the only $(VAR) is the
    # node's name (the rest is in the config file).
    helptext = subprocess.run([args.l7tap, "--help"], capture_output=True, text=True).stdout + \
        subprocess.run([args.l7tap, "--help"], capture_output=True, text=True).stderr
    check_options(a, helptext)
    check(value_of(a, "--host-proc") == MOUNTS["/proc"][0], "--host-proc must be where /proc is mounted")
    check(value_of(a, "--node-name") == "$(NODE_NAME)", "--node-name $(NODE_NAME)")
    check(value_of(a, "--user") == USER, f"--user {USER}")
    check(re.search(rf"^RUN useradd .*\\\n.* {USER}$", containerfile(), re.M) or
          re.search(rf"^RUN useradd [^\n]* {USER}$", containerfile(), re.M),
          f"the Containerfile must create the user {USER}")
    check(sc.get("runAsUser") == 0, "runAsUser 0: l7tap switches to --user itself once attached")
    check(set(re.findall(r"\$\((\w+)\)", " ".join(a))) <= {"NODE_NAME"}, "only $(NODE_NAME) in args")
    # The ConfigMap's file: mounted read-only where --config reads it, and
    # one `l7tap attach` takes (`l7tap config check`, the same parser).
    cm = kinds["ConfigMap"]
    check(value_of(a, "--config") == f"{CONFIG_DIR}/{CONFIG_KEY}", f"--config {CONFIG_DIR}/{CONFIG_KEY}")
    cm_volume = next((n for n, v in volumes.items()
                      if v.get("configMap", {}).get("name") == cm["metadata"]["name"]), None)
    check(cm_volume is not None and mounts.get(cm_volume, {}).get("mountPath") == CONFIG_DIR and
          mounts[cm_volume].get("readOnly") is True, f"the ConfigMap must be mounted read-only at {CONFIG_DIR}")
    if cm_volume is not None:
        items = volumes[cm_volume]["configMap"].get("items", [{"key": CONFIG_KEY, "path": CONFIG_KEY}])
        check({"key": CONFIG_KEY, "path": CONFIG_KEY} in items, f"the volume must hold {CONFIG_KEY}")
    text = cm.get("data", {}).get(CONFIG_KEY)
    check(text is not None and list(cm["data"]) == [CONFIG_KEY], f"the ConfigMap holds {CONFIG_KEY} only")
    if text is not None:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, CONFIG_KEY)
            with open(path, "w") as f:
                f.write(text)
            r = subprocess.run([args.l7tap, "config", "check", path], capture_output=True, text=True)
            check(r.returncode == 0 and r.stdout == f"{path}: ok\n",
                  f"l7tap config check {CONFIG_KEY}: {r.stderr.strip()}")
        settings = yaml.safe_load(text) or {}
        check(settings.get("iface") == IFACE_GLOBS, f"iface {settings.get('iface')} != {IFACE_GLOBS}")
        check(not set(settings) & {"user", "host-proc", "node-name", "config"},
              "user, host-proc and node-name belong to the DaemonSet's args")
        # The way to turn the TLS uprobes off that the DaemonSet's comments
        # give: the key is there, commented out, and valid once uncommented.
        check(f"# {NO_TLS_KEY}\n" in text, f"the ConfigMap must show `# {NO_TLS_KEY}`")
        check(not settings.get("no-tls-uprobes"), "TLS uprobes on in the shipped ConfigMap")
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, CONFIG_KEY)
            with open(path, "w") as f:
                f.write(text.replace(f"# {NO_TLS_KEY}\n", f"{NO_TLS_KEY}\n"))
            r = subprocess.run([args.l7tap, "config", "check", path], capture_output=True, text=True)
            check(r.returncode == 0, f"l7tap config check with {NO_TLS_KEY}: {r.stderr.strip()}")
    check("--no-tls-uprobes" not in a, "TLS uprobes on: no --no-tls-uprobes in args")
    rules = kinds["ClusterRole"]["rules"]
    check({"apiGroups": [""], "resources": ["nodes/proxy"], "verbs": ["get"]} in rules, "RBAC nodes/proxy get")
    check(all(set(r["verbs"]) <= {"get", "list", "watch"} for r in rules), "RBAC must be read-only")

    node_check = os.path.join(ROOT, "tests", "deploy", "check_manifests.mjs")
    if not os.path.isdir(os.path.join(ROOT, "tests", "deploy", "node_modules", "kubernetes-models")):
        failures.append("tests/deploy/node_modules missing: run bash .ci/deps")
    else:
        r = subprocess.run(["node", node_check] + files, capture_output=True, text=True)
        print(r.stdout, end="")
        check(r.returncode == 0, "schema check failed")


def unit(args):
    src = os.path.join(DEPLOY, "systemd", "l7tap.service")
    with open(src) as f:
        text = f.read()
    settings = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith("#"):
            k, v = line.split("=", 1)
            settings.setdefault(k, []).append(v)
    caps = {c.removeprefix("CAP_") for c in " ".join(settings.get("CapabilityBoundingSet", [])).split()}
    check(caps == UNIT_CAPABILITIES, f"CapabilityBoundingSet {sorted(caps)} != {sorted(UNIT_CAPABILITIES)}")
    amb = {c.removeprefix("CAP_") for c in " ".join(settings.get("AmbientCapabilities", [])).split()}
    check(amb == UNIT_CAPABILITIES, "AmbientCapabilities")
    check("User" not in settings, "no User=: the unit runs as its DynamicUser")
    for k, v in [("DynamicUser", "yes"), ("ProtectSystem", "strict"), ("ProtectHome", "yes"),
                 ("NoNewPrivileges", "yes"),
                 ("PrivateTmp", "yes"), ("RuntimeDirectory", "l7tap"),
                 ("RestrictAddressFamilies", "AF_UNIX AF_NETLINK AF_INET AF_INET6")]:
        check(settings.get(k) == [v], f"{k}={v}")
    check(not settings.get("ReadWritePaths"), "nothing writable but the RuntimeDirectory")
    check(settings.get("SystemCallFilter") == ["@system-service bpf perf_event_open"],
          "SystemCallFilter=@system-service bpf perf_event_open (perf_event_open: the uprobes)")
    for line in NO_TLS_DROPIN:
        check(re.search(rf"^#\s+{re.escape(line)}$", text, re.M), f"the comments must show {line}")
    exec_start = settings["ExecStart"][0].split()
    check(exec_start[0] == "/usr/local/bin/l7tap" and exec_start[1] == "attach", "ExecStart")
    # verify wants the executable to exist: the built one stands in for the
    # installed one. No running systemd is needed. The second run is the
    # unit with the comments' recipe for no TLS (a drop-in parses the same
    # as lines appended to the unit).
    binary = os.path.abspath(args.l7tap)
    no_tls_start = " ".join(exec_start[:2] + ["--no-tls-uprobes"] + exec_start[2:])
    no_tls = "\n".join(["[Service]", "ExecStart=", f"ExecStart={no_tls_start}"] + NO_TLS_DROPIN) + "\n"
    for what, unit_text, limit in [("", text, MAX_EXPOSURE),
                                   (" without TLS uprobes", text + "\n" + no_tls, MAX_EXPOSURE_NO_TLS)]:
        with tempfile.TemporaryDirectory() as tmp:
            copy = os.path.join(tmp, "l7tap.service")
            with open(copy, "w") as f:
                f.write(unit_text.replace("/usr/local/bin/l7tap", binary))
            r = subprocess.run(["systemd-analyze", "verify", copy], capture_output=True, text=True)
            check(r.returncode == 0 and not r.stderr.strip(), f"systemd-analyze verify{what}: {r.stderr.strip()}")
            r = subprocess.run(["systemd-analyze", "security", "--offline=yes", copy], capture_output=True, text=True)
            m = re.search(r"Overall exposure level for l7tap.service: ([0-9.]+) (\w+)", r.stdout)
            check(m is not None, f"systemd-analyze security{what}: {r.stdout[-300:]} {r.stderr}")
            if m:
                print(f"systemd-analyze security{what}: exposure {m.group(1)} {m.group(2)}")
                check(float(m.group(1)) <= limit, f"exposure{what} {m.group(1)} > {limit}")
    # ExecStart's options must exist in today's binary.
    helptext = subprocess.run([args.l7tap, "--help"], capture_output=True, text=True)
    helptext = helptext.stdout + helptext.stderr
    check_options(exec_start + ["--no-tls-uprobes"], helptext)


def package_of(path):
    # usrmerge: dpkg knows a library under /lib or /usr/lib, not both.
    cands = [path, os.path.realpath(path)]
    for p in list(cands):
        if p.startswith("/usr/lib/"):
            cands.append(p[len("/usr"):])
        elif p.startswith("/lib/"):
            cands.append("/usr" + p)
    for p in cands:
        r = subprocess.run(["dpkg", "-S", p], capture_output=True, text=True)
        if r.returncode == 0:
            return r.stdout.split(":")[0].strip()
    return None


def depends_closure(packages):
    seen, todo = set(), list(packages)
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        r = subprocess.run(["dpkg-query", "-W", "-f=${Depends}, ${Pre-Depends}", p], capture_output=True, text=True)
        for dep in r.stdout.split(","):
            for alt in dep.split("|"):
                name = alt.strip().split(" ")[0].split(":")[0]
                if name:
                    todo.append(name)
    return seen


def container(args):
    text = containerfile()
    stages = re.split(r"^FROM ", text, flags=re.M)[1:]
    check(len(stages) == 2, "two stages")
    check(all(s.startswith("debian:bookworm-slim") for s in stages), "both stages on debian:bookworm-slim")
    build, runtime = stages
    check(re.search(r"^RUN bash \.ci/deps build\b", build, re.M), "the build stage must run `.ci/deps build`")
    check("COPY .ci/deps .ci/deps" in build, "the build stage copies .ci/deps")
    # The build set must exist in .ci/deps.
    with open(os.path.join(ROOT, ".ci", "deps")) as f:
        check("build) packages=(\"${build_packages[@]}\")" in f.read(), ".ci/deps has no build set")
    m = re.search(r"apt-get install[^\\\n]*((?:\\\n[^\\\n]*)+)", runtime)
    installed = set(re.findall(r"[a-z0-9][a-z0-9.+-]+", re.sub(r"&&.*", "", m.group(1).replace("\\\n", " ")))) if m else set()
    installed.discard("rm")
    check(installed, "the runtime stage installs no packages")
    ldd = subprocess.run(["ldd", args.l7tap], capture_output=True, text=True, check=True).stdout
    libs = [m.group(1) for m in re.finditer(r"=> (/\S+)", ldd)]
    check(libs, "ldd found no libraries")
    closure = depends_closure(installed)
    needed = set(re.findall(r"\(NEEDED\)\s+Shared library: \[(\S+)\]",
                            subprocess.run(["readelf", "-d", args.l7tap], capture_output=True, text=True).stdout))
    for lib in libs:
        pkg = package_of(lib)
        check(pkg is not None, f"{lib}: no Debian package")
        if pkg is None:
            continue
        if os.path.basename(lib) in needed:
            check(pkg in installed, f"{lib} (NEEDED) is in {pkg}, which the runtime stage does not install")
        else:
            check(pkg in closure, f"{lib} is in {pkg}, not installed nor a dependency of what is")
    print(f"{len(libs)} libraries from {len({package_of(l) for l in libs})} packages; runtime stage installs {sorted(installed)}")
    check(re.search(r"^COPY --from=build /build/daemon/l7tap /usr/local/bin/l7tap$", runtime, re.M), "copies the binary")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("what", choices=["manifests", "unit", "container"])
    ap.add_argument("--l7tap", required=True)
    args = ap.parse_args()
    {"manifests": manifests, "unit": unit, "container": container}[args.what](args)
    for f in failures:
        print("FAIL:", f)
    print(f"{args.what}: {'ok' if not failures else f'{len(failures)} failures'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
