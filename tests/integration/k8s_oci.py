# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""A container of deploy/kubernetes/daemonset.yaml run as a kubelet and
containerd would run it, without either (issue 13): the pod spec is read from
the manifest and turned into an OCI runtime spec for runc, field by field:
the image's ENTRYPOINT/CMD overridden by command/args, env (fieldRef
spec.nodeName), runAsUser, the capability set (drop ALL, then add: bounding,
effective and permitted, as containerd sets them), privileged: false (no
devices, containerd's masked and read-only /proc paths, sysfs and cgroupfs
read-only), readOnlyRootFilesystem, hostPID (no PID namespace), hostNetwork
(else a network namespace of its own), hostPath and emptyDir volumes, the
memory and CPU limits (in a kubelet-style Burstable pod cgroup).  A field of
the pod or container spec that this module does not map makes it fail: a
setting is never silently dropped between the manifest and the test."""
import fcntl
import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
import uuid

import yaml

from containers import (BUNDLE_PREFIX, CGROUP_LOCK, CGROUP_ROOT, OWNER_KEY, PATH, RUNC,
                        cgroup_dirs, runc, wait_gone)
from harness import ROOT, TestFailure, check, wait_for_text

MANIFEST = os.path.join(ROOT, "deploy", "kubernetes", "daemonset.yaml")
NODE_NAME = "profilis-test-node"
QOS_PARENT = "kubepods/burstable"
# What this module maps (or knowingly ignores: scheduling, probes, which
# test_deploy runs itself, and update policy do not shape the container).
POD_FIELDS = {"hostPID", "hostNetwork", "hostIPC", "containers", "volumes", "tolerations",
              "serviceAccountName", "automountServiceAccountToken",
              "terminationGracePeriodSeconds"}
CONTAINER_FIELDS = {"name", "image", "imagePullPolicy", "command", "args", "env",
                    "securityContext", "resources", "volumeMounts", "livenessProbe"}
SECURITY_FIELDS = {"privileged", "runAsUser", "runAsNonRoot", "readOnlyRootFilesystem",
                   "capabilities", "allowPrivilegeEscalation"}
# containerd's defaults for a container that is not privileged (pkg/oci).
MASKED = ["/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
          "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/sys/firmware",
          "/proc/scsi", "/sys/devices/virtual/powercap"]
READONLY = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]


def load(path=MANIFEST):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def daemonset(docs):
    found = [d for d in docs if d.get("kind") == "DaemonSet"]
    check(len(found) == 1, "%s: expected one DaemonSet, found %d", MANIFEST, len(found))
    return found[0]


def pod_spec(docs):
    return daemonset(docs)["spec"]["template"]["spec"]


def container_spec(docs, name):
    spec = pod_spec(docs)
    unknown = set(spec) - POD_FIELDS
    check(not unknown, "pod spec fields k8s_oci.py does not map: %s", sorted(unknown))
    for c in spec["containers"]:
        if c["name"] == name:
            unknown = set(c) - CONTAINER_FIELDS
            check(not unknown, "container %s: fields k8s_oci.py does not map: %s", name,
                  sorted(unknown))
            unknown = set(c.get("securityContext", {})) - SECURITY_FIELDS
            check(not unknown, "container %s: securityContext fields k8s_oci.py does not "
                  "map: %s", name, sorted(unknown))
            return c
    raise TestFailure("%s: no container named %s" % (MANIFEST, name))


def capabilities(c):
    """drop ALL, then add: the set as the runtime gives it (CAP_ names)."""
    caps = c.get("securityContext", {}).get("capabilities", {})
    check(caps.get("drop") == ["ALL"], "capabilities must drop ALL, not %s", caps.get("drop"))
    return sorted("CAP_" + name for name in caps.get("add", []))


def quantity(q):
    """A Kubernetes quantity: memory in bytes, CPU in millicores ("m")."""
    q = str(q)
    units = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "k": 10**3, "M": 10**6, "G": 10**9,
             "m": 1}
    for suffix, mult in units.items():
        if q.endswith(suffix):
            return int(float(q[:-len(suffix)]) * mult)
    return int(float(q) * 1000) if "." in q or q.isdigit() else int(q)


def resources(c):
    limits = c.get("resources", {}).get("limits", {})
    res = {"devices": [{"allow": False, "access": "rwm"}]}
    if "memory" in limits:
        res["memory"] = {"limit": quantity(limits["memory"])}
    if "cpu" in limits:
        # The kubelet's CFS quota: millicores * period / 1000.
        res["cpu"] = {"period": 100000, "quota": quantity(limits["cpu"]) * 100}
    return res


def env(c, pod):
    out = {"PATH": PATH, "HOSTNAME": pod}
    for e in c.get("env", []):
        if "value" in e:
            out[e["name"]] = str(e["value"])
        else:
            ref = e["valueFrom"]["fieldRef"]["fieldPath"]
            check(ref == "spec.nodeName", "env %s: fieldRef %s is not mapped", e["name"], ref)
            out[e["name"]] = NODE_NAME
    return ["%s=%s" % kv for kv in sorted(out.items())]


def volume_mounts(c, spec, bundle, host_paths):
    """The pod's volumes where the container mounts them; host_paths maps a
    hostPath to the directory standing in for it on this machine."""
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    mounts = []
    for m in c.get("volumeMounts", []):
        v = volumes[m["name"]]
        ro = ["ro"] if m.get("readOnly") else []
        if "hostPath" in v:
            src = host_paths.get(v["hostPath"]["path"], v["hostPath"]["path"])
            if v["hostPath"].get("type") == "DirectoryOrCreate":
                os.makedirs(src, mode=0o755, exist_ok=True)
            check(os.path.exists(src), "hostPath %s does not exist", src)
            mounts.append({"destination": m["mountPath"], "type": "bind", "source": src,
                           "options": ["rbind", "rprivate"] + ro})
        elif "emptyDir" in v:
            if v["emptyDir"].get("medium") == "Memory":
                size = quantity(v["emptyDir"].get("sizeLimit", "64Mi"))
                mounts.append({"destination": m["mountPath"], "type": "tmpfs", "source": "tmpfs",
                               "options": ["nosuid", "nodev", "size=%d" % size] + ro})
            else:
                src = tempfile.mkdtemp(dir=bundle)
                mounts.append({"destination": m["mountPath"], "type": "bind", "source": src,
                               "options": ["rbind", "rprivate"] + ro})
        else:
            raise TestFailure("volume %s: only hostPath and emptyDir are mapped" % m["name"])
    return mounts


def base_mounts():
    """What containerd mounts in every container that is not privileged."""
    return [
        {"destination": "/proc", "type": "proc", "source": "proc",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
    ]


def oci_config(c, spec, image, argv, bundle, pod, cgroups_path, host_paths, caps=None):
    """The OCI runtime spec of container `c` of pod spec `spec` from image
    `image` (agent_image.Image); `caps` replaces the manifest's set (the
    capability measurement), `argv` the command line when not None."""
    sc = c.get("securityContext", {})
    check(sc.get("privileged") is False, "the manifest must say privileged: false")
    caps = capabilities(c) if caps is None else caps
    if argv is None:
        argv = (c.get("command") or image.entrypoint) + (c.get("args") or image.cmd)
    namespaces = ["mount"]
    namespaces += [] if spec.get("hostPID") else ["pid"]
    namespaces += [] if spec.get("hostIPC") else ["ipc"]
    namespaces += [] if spec.get("hostNetwork") else ["network", "uts"]
    uid = sc.get("runAsUser", 0)
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False, "user": {"uid": uid, "gid": uid}, "args": argv, "cwd": "/",
            "env": env(c, pod),
            "capabilities": dict((k, caps) for k in ("bounding", "effective", "permitted")),
            # allowPrivilegeEscalation unset (the API refuses false with SYS_ADMIN).
            "noNewPrivileges": sc.get("allowPrivilegeEscalation") is False,
        },
        "root": {"path": image.rootfs, "readonly": bool(sc.get("readOnlyRootFilesystem"))},
        "hostname": pod,
        "mounts": base_mounts() + volume_mounts(c, spec, bundle, host_paths),
        "annotations": {"io.kubernetes.cri.container-type": "container",
                        "io.kubernetes.cri.container-name": c["name"],
                        OWNER_KEY: str(os.getpid())},
        "linux": {
            "cgroupsPath": cgroups_path,
            "resources": resources(c),
            "namespaces": [{"type": t} for t in namespaces],
            "maskedPaths": MASKED,
            "readonlyPaths": READONLY,
        },
    }


class PodContainer:
    """One container of the manifest's pod, run in the foreground by runc:
    stdout is what `kubectl logs` shows, stderr kept apart."""

    def __init__(self, image, name="profilis-bpf", argv=None, caps=None, host_paths=None,
                 docs=None):
        self.docs = docs or load()
        self.spec = pod_spec(self.docs)
        self.c = container_spec(self.docs, name)
        self.id = secrets.token_hex(32)
        self.pod_cgroup = "%s/pod%s" % (QOS_PARENT, uuid.uuid4())
        self.name = "agent container %s" % self.id[:12]
        self.bundle = tempfile.mkdtemp(prefix=BUNDLE_PREFIX)
        self.out = os.path.join(self.bundle, "stdout")
        self.err = os.path.join(self.bundle, "stderr")
        self.proc = None
        self.pid = None
        config = oci_config(self.c, self.spec, image, argv, self.bundle,
                            "profilis-bpf-" + secrets.token_hex(3)[:5],
                            "/%s/%s" % (self.pod_cgroup, self.id), host_paths or {}, caps)
        self.config = config
        with open(os.path.join(self.bundle, "config.json"), "w") as f:
            json.dump(config, f, indent=1)
        pid_file = os.path.join(self.bundle, "pid")
        with open(CGROUP_LOCK, "w") as lock, open(self.out, "w") as out, \
                open(self.err, "w") as err:
            fcntl.flock(lock, fcntl.LOCK_SH)
            self.proc = subprocess.Popen([RUNC, "--log", os.path.join(self.bundle, "runc.log"),
                                          "run", "--pid-file", pid_file, "--bundle",
                                          self.bundle, self.id],
                                         stdin=subprocess.DEVNULL, stdout=out, stderr=err)
            deadline = time.time() + 30
            while self.pid is None and time.time() < deadline and self.proc.poll() is None:
                try:
                    with open(pid_file) as f:
                        self.pid = int(f.read())
                except (OSError, ValueError):
                    time.sleep(0.02)

    def stdout(self):
        with open(self.out, errors="replace") as f:
            return f.read()

    def stderr(self):
        with open(self.err, errors="replace") as f:
            return f.read()

    def wait_stderr(self, text, timeout=30):
        wait_for_text(self.stderr, self.proc, text, timeout, self.name, self.runc_log)

    def runc_log(self):
        try:
            with open(os.path.join(self.bundle, "runc.log"), errors="replace") as f:
                return f.read().strip()[-2000:]
        except OSError:
            return ""

    def pod_stat(self, controller, name):
        """A counter of the pod's cgroup: it holds only this container and,
        unlike the container's, outlives runc's cleanup at exit."""
        with open(os.path.join(CGROUP_ROOT, controller, self.pod_cgroup, name)) as f:
            return int(f.read())

    def memory_peak(self):
        """Peak memory of the pod: process and kernel memory (the BPF maps and
        ring buffer are charged to it) and the page cache of what it wrote."""
        return self.pod_stat("memory", "memory.max_usage_in_bytes")

    def cpu_ns(self):
        return self.pod_stat("cpuacct", "cpuacct.usage")

    def exec(self, argv, timeout=30):
        """runc exec: a command in the running container, as a probe runs."""
        return runc("exec", self.id, *argv, check_rc=False, timeout=timeout)

    def signal(self, sig):
        runc("kill", self.id, sig, check_rc=False)

    def wait(self, timeout=30):
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            raise TestFailure("%s did not exit within %ds:\n%s" % (self.name, timeout,
                                                                  self.stderr())) from None

    def stop(self):
        """Kills and deletes the container, its cgroups and bundle; safe twice."""
        if self.bundle is None:
            return
        if runc("state", self.id, check_rc=False).returncode == 0:
            runc("kill", self.id, "KILL", check_rc=False)
            runc("delete", "-f", self.id, check_rc=False)
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGKILL)
                self.proc.wait()
        if self.pid:
            wait_gone(self.pid)
        remove_pod_cgroup(self.pod_cgroup)
        shutil.rmtree(self.bundle, ignore_errors=True)
        self.bundle = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def remove_pod_cgroup(pod_rel):
    """The pod's cgroup and its QoS parents when empty (runc delete removes
    only the container's)."""
    with open(CGROUP_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for rel in (pod_rel, QOS_PARENT, QOS_PARENT.split("/")[0]):
            for d in cgroup_dirs(rel):
                try:
                    os.rmdir(d)
                except OSError:
                    pass

