# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Targets outside the host's root for the integration tests (issue 12): a
Flask app under gunicorn (or werkzeug) in a REAL OCI container run by runc,
and the same server under a plain chroot.  Both use the Debian root file
systems tools/rootfs builds and caches outside the checkout; the apps come
from tests/apps (bind-mounted read-only into a container, copied into a
chroot).  A container has its own PID, mount, IPC and UTS namespaces,
pivot_root()s into the read-only rootfs, shares the host network (the test
reaches it on 127.0.0.1) and sits in a kubelet-style cgroup.  Both classes
look like harness.Server (pid, port, url, children, stop, a context
manager); pid is the HOST pid of the gunicorn master, ns_pid the pid it sees.
Nothing is left behind: stop() runs from the context manager and atexit
(SIGTERM is turned into an exit so atexit runs), and each start sweeps
containers, cgroups and app copies of earlier runs that were SIGKILLed.

`python3.11 tests/integration/containers.py --selftest` exercises it all."""
import atexit
import fcntl
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from harness import APPS, ROOT, TestFailure, check  # noqa: E402

ROOTFS_TOOL = os.path.join(ROOT, "tools", "rootfs")
RUNC = shutil.which("runc") or "/usr/sbin/runc"
BUNDLE_PREFIX = "profilis-bundle-"
OWNER_KEY = "org.profilis-bpf.owner-pid"
# This host has no systemd and a cgroup v1 hierarchy per controller (plus an
# empty cgroup2 at unified/), so runc's cgroupfs driver, kubelet's cgroupfs
# layout: /kubepods/<qos>/pod<uid>/<container id>.
CGROUP_ROOT = "/sys/fs/cgroup"
CGROUP_PARENT = "kubepods/besteffort"
# Serialises removing the shared cgroup parents with another run's creating a
# container below them.
CGROUP_LOCK = "/run/profilis-bpf-cgroups.lock"
APP_COPIES = "var/tmp/profilis-apps"
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

_rootfs = {}
_live = []


def ensure_rootfs(name):
    """The path of the cached root file system `name` (sid, bookworm), built
    by tools/rootfs when missing.  Raises TestFailure naming why it cannot
    be built: a test that needs it fails, it never skips."""
    if name not in _rootfs:
        _rootfs[name] = build_rootfs(name)
    return _rootfs[name]


def build_rootfs(name, env=None):
    try:
        out = subprocess.run([ROOTFS_TOOL, name], capture_output=True, text=True, env=env,
                             timeout=1800)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise TestFailure("the %s root file system cannot be built: %s %s: %s"
                          % (name, ROOTFS_TOOL, name, e)) from e
    lines = out.stdout.split()
    if out.returncode != 0 or not lines or not os.path.isdir(lines[-1]):
        raise TestFailure("the %s root file system cannot be built (%s %s exited %d): %s"
                          % (name, ROOTFS_TOOL, name, out.returncode,
                             out.stderr.strip() or "no message"))
    return lines[-1]


def server_argv(kind, python, port, app, workers, extra):
    """The command line inside the root, with the apps at /app (container) or
    at `appdir` (chroot)."""
    if kind == "gunicorn":
        # Explicit worker tmp dir: the root is read-only, /tmp is a tmpfs.
        return (["/usr/bin/" + python, "-m", "gunicorn", "-w", str(workers),
                 "-b", "127.0.0.1:%d" % port, "--graceful-timeout", "2",
                 "--worker-tmp-dir", "/tmp"] + list(extra) + ["%s:app" % app])
    if kind == "werkzeug":
        return ["/usr/bin/" + python, app + ".py", str(port)]
    raise ValueError(kind)


def pid_alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:
        return True


def running(pid):
    """Alive and not a zombie (a zombie holds nothing but its pid; reaping
    it is its parent's job, here the host's init)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_gone(pid, timeout=10):
    deadline = time.time() + timeout
    while running(pid) and time.time() < deadline:
        time.sleep(0.02)
    return not running(pid)


def ns_pid(pid):
    """The pid as the process sees it in its own PID namespace (the last
    NSpid field), or None when it is gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("NSpid:"):
                    return int(line.split()[-1])
    except OSError:
        pass
    return None


class _Started:
    """What harness.wait_port polls: a process it did not start."""

    def __init__(self, pid):
        self.pid = pid
        self.returncode = None

    def poll(self):
        return None if running(self.pid) else "gone"


class _Target(harness.Served):
    """What the container and the chroot server share."""

    def cgroup(self):
        """/proc/PID/cgroup of the master, as the host reads it."""
        with open("/proc/%d/cgroup" % self.pid) as f:
            return f.read()

    def wait_ready(self, kind, workers, proc, timeout=30):
        try:
            harness.wait_port(self.port, proc, timeout)
        except TestFailure as e:
            raise TestFailure("%s: %s; its output:\n%s" % (self.name, e, self.output())) from e
        if kind == "gunicorn":
            # The master listens before it forks: wait for every worker.
            deadline = time.time() + timeout
            while len(self.children()) < workers and time.time() < deadline:
                time.sleep(0.05)
            check(len(self.children()) >= workers, "%s: %d of %d workers after %ds:\n%s",
                  self.name, len(self.children()), workers, timeout, self.output())

    def output(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-4000:]
        except OSError as e:
            return "(no output: %s)" % e

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def runc(*args, check_rc=True, timeout=30):
    out = subprocess.run([RUNC] + list(args), capture_output=True, text=True, timeout=timeout)
    if check_rc and out.returncode != 0:
        raise TestFailure("runc %s exited %d: %s" % (" ".join(args), out.returncode,
                                                     out.stderr.strip()))
    return out


def oci_config(rootfs, argv, bundle, pod, namespace, cgroups_path, uid, env):
    """An OCI runtime spec as a kubelet + containerd would write it for a
    host-network pod, trimmed to what the tests need."""
    mounts = [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/app", "type": "bind", "source": APPS,
         "options": ["rbind", "ro", "nosuid", "nodev"]},
        # tools/rootfs made the mount point: runc must not write to the cache.
        {"destination": "/run/secrets/kubernetes.io/serviceaccount", "type": "bind",
         "source": os.path.join(bundle, "serviceaccount"), "options": ["rbind", "ro"]},
    ]
    return {
        "ociVersion": "1.0.2",
        "process": {
            "terminal": False, "user": {"uid": uid, "gid": uid}, "args": argv, "cwd": "/app",
            "env": ["%s=%s" % kv for kv in sorted(env.items())],
            "capabilities": dict((k, ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"])
                                 for k in ("bounding", "effective", "permitted")),
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": rootfs, "readonly": True},
        "hostname": pod,
        "mounts": mounts,
        "annotations": {
            "io.kubernetes.cri.container-type": "container",
            "io.kubernetes.cri.sandbox-name": pod,
            "io.kubernetes.cri.sandbox-namespace": namespace,
            OWNER_KEY: str(os.getpid()),
        },
        "linux": {
            "cgroupsPath": cgroups_path,
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            # No network namespace: host network, as hostNetwork: true pods.
            "namespaces": [{"type": t} for t in ("pid", "ipc", "uts", "mount")],
            "maskedPaths": ["/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                            "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug",
                            "/sys/firmware", "/proc/scsi"],
            "readonlyPaths": ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                              "/proc/sysrq-trigger"],
        },
    }


def cgroup_dirs(rel):
    """The directories of cgroup `rel` in every mounted hierarchy."""
    dirs = []
    for h in sorted(os.listdir(CGROUP_ROOT)):
        d = os.path.join(CGROUP_ROOT, h)
        if os.path.isdir(d) and not os.path.islink(d) and os.path.ismount(d):
            dirs.append(os.path.join(d, rel))
    return dirs


def remove_cgroups(pod_rel):
    """Removes a pod's cgroup (runc delete removes only the container's) and
    the shared kubepods parents when nothing else is below them."""
    with open(CGROUP_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        for rel in (pod_rel, CGROUP_PARENT, CGROUP_PARENT.split("/")[0]):
            for d in cgroup_dirs(rel):
                try:
                    os.rmdir(d)
                except FileNotFoundError:
                    pass
                except OSError:
                    if rel == pod_rel:
                        raise


class Container(_Target):
    """A Flask app under gunicorn (or werkzeug) in a runc container."""

    def __init__(self, rootfs="sid", python="python3.14", app="shop", workers=2, extra=(),
                 kind="gunicorn", uid=0, pod=None, namespace="default"):
        self.rootfs = ensure_rootfs(rootfs)
        check(os.access(RUNC, os.X_OK), "runc is not installed (%s): tools/rootfs, run as "
              "root, installs it, or apt-get install runc", RUNC)
        sweep()
        self.python = "/usr/bin/" + python
        self.port = harness.free_port()
        self.id = secrets.token_hex(32)
        self.pod = pod or "%s-%s-%s" % (app, secrets.token_hex(5)[:10], secrets.token_hex(3)[:5])
        self.pod_uid = str(uuid.uuid4())
        self.namespace = namespace
        self.pod_cgroup = "%s/pod%s" % (CGROUP_PARENT, self.pod_uid)
        self.cgroups_path = "/%s/%s" % (self.pod_cgroup, self.id)
        self.name = "container %s (%s %s)" % (self.id[:12], rootfs, python)
        self.pid = None
        self.bundle = tempfile.mkdtemp(prefix=BUNDLE_PREFIX)
        self.log_path = os.path.join(self.bundle, "server.log")
        _live.append(self)
        try:
            self._start(server_argv(kind, python, self.port, app, workers, extra), uid,
                        namespace)
            self.ns_pid = ns_pid(self.pid)
            self.wait_ready(kind, workers, _Started(self.pid))
        except BaseException:
            self.stop()
            raise

    def _start(self, argv, uid, namespace):
        sa = os.path.join(self.bundle, "serviceaccount")
        os.mkdir(sa)
        with open(os.path.join(sa, "namespace"), "w") as f:
            f.write(namespace)
        env = {"PATH": PATH, "HOSTNAME": self.pod, "HOME": "/tmp", "LANG": "C.UTF-8",
               "OTEL_SERVICE_NAME": self.pod.rsplit("-", 2)[0]}
        with open(os.path.join(self.bundle, "config.json"), "w") as f:
            json.dump(oci_config(self.rootfs, argv, self.bundle, self.pod, namespace,
                                 self.cgroups_path, uid, env), f, indent=1)
        pid_file = os.path.join(self.bundle, "pid")
        with open(CGROUP_LOCK, "w") as lock, open(self.log_path, "w") as log:
            fcntl.flock(lock, fcntl.LOCK_SH)
            # -d: runc returns once the process runs; its stdio is the log.
            rc = subprocess.run([RUNC, "--log", os.path.join(self.bundle, "runc.log"), "run",
                                 "-d", "--pid-file", pid_file, "--bundle", self.bundle,
                                 self.id], stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, timeout=60).returncode
        if rc != 0:
            raise TestFailure("%s: runc run exited %d: %s\n%s" % (
                self.name, rc, self.runc_log(), self.output()))
        with open(pid_file) as f:
            self.pid = int(f.read())

    def runc_log(self):
        try:
            with open(os.path.join(self.bundle, "runc.log"), errors="replace") as f:
                return f.read().strip()[-2000:]
        except OSError as e:
            return "(no runc log: %s)" % e

    def state(self):
        return json.loads(runc("state", self.id).stdout)

    def stop(self):
        """Kills and deletes the container, its cgroups and its bundle; safe
        to call twice and on a half-started container."""
        if self not in _live:
            return
        errors = []
        if runc("state", self.id, check_rc=False).returncode == 0:
            runc("kill", self.id, "KILL", check_rc=False)
            out = runc("delete", "-f", self.id, check_rc=False)
            if out.returncode != 0:
                errors.append("runc delete -f %s: %s" % (self.id, out.stderr.strip()))
        # delete -f returns once SIGKILL is sent; the tests then reuse the port.
        if self.pid and not wait_gone(self.pid):
            errors.append("PID %d survived runc delete -f" % self.pid)
        try:
            remove_cgroups(self.pod_cgroup)
        except OSError as e:
            errors.append("cgroup %s: %s" % (self.pod_cgroup, e))
        shutil.rmtree(self.bundle, ignore_errors=True)
        _live.remove(self)
        check(not errors, "%s was not cleaned up: %s", self.name, "; ".join(errors))


class Chroot(_Target):
    """The same server under a plain chroot(1): the host's namespaces, another
    root.  The app files are copied into the root (a bind mount into the
    shared cache could outlive a killed test run)."""

    def __init__(self, rootfs="bookworm", python="python3.11", app="shop", workers=2,
                 extra=(), kind="gunicorn"):
        self.rootfs = ensure_rootfs(rootfs)
        sweep()
        self.python = "/usr/bin/" + python
        self.port = harness.free_port()
        self.name = "chroot %s %s" % (rootfs, python)
        top = os.path.join(self.rootfs, APP_COPIES)
        os.makedirs(top, exist_ok=True)
        self.appdir = tempfile.mkdtemp(prefix="%d-" % os.getpid(), dir=top)
        os.chmod(self.appdir, 0o755)
        self.log_path = self.appdir + ".log"
        self.proc = None
        _live.append(self)
        try:
            shutil.copytree(APPS, self.appdir, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("__pycache__"))
            argv = server_argv(kind, python, self.port, app, workers, extra)
            inside = "/" + os.path.relpath(self.appdir, self.rootfs)
            with open(self.log_path, "w") as log:
                self.proc = subprocess.Popen(
                    ["chroot", self.rootfs, "/usr/bin/env", "--chdir", inside] + argv,
                    env={"PATH": PATH, "HOME": "/root", "LANG": "C.UTF-8"},
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True)
            # chroot and env exec: the pid is the server's.
            self.pid = self.ns_pid = self.proc.pid
            self.wait_ready(kind, workers, self.proc)
        except BaseException:
            self.stop()
            raise

    def stop(self):
        if self not in _live:
            return
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)
        shutil.rmtree(self.appdir, ignore_errors=True)
        try:
            os.unlink(self.log_path)
        except FileNotFoundError:
            pass
        _live.remove(self)


def ours():
    """Containers of this module in `runc list`, with their owner pid."""
    out = runc("list", "-f", "json")
    prefix = os.path.join(tempfile.gettempdir(), BUNDLE_PREFIX)
    found = []
    for c in json.loads(out.stdout or "null") or []:
        if c.get("bundle", "").startswith(prefix):
            found.append((c, int((c.get("annotations") or {}).get(OWNER_KEY, "0"))))
    return found


def sweep():
    """Removes what an earlier run killed by SIGKILL left: its containers (with
    their bundles and pod cgroups) and its app copies in the chroots."""
    for c, owner in ours():
        if owner != os.getpid() and not pid_alive(owner):
            runc("delete", "-f", c["id"], check_rc=False)
            shutil.rmtree(c["bundle"], ignore_errors=True)
    # A pod cgroup with a container below it is busy: rmdir fails and keeps it.
    live = set(x.pod_cgroup for x in _live if isinstance(x, Container))
    for d in cgroup_dirs(CGROUP_PARENT)[:1]:
        for pod in os.listdir(d) if os.path.isdir(d) else ():
            rel = CGROUP_PARENT + "/" + pod
            if pod.startswith("pod") and rel not in live:
                _remove_stale_pod(rel)
    for pid, cwd in chroot_servers():
        owner = os.path.basename(cwd.removesuffix(" (deleted)")).split("-")[0]
        if owner.isdigit() and int(owner) != os.getpid() and not pid_alive(int(owner)):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    for rootfs in _rootfs.values():
        top = os.path.join(rootfs, APP_COPIES)
        for name in os.listdir(top) if os.path.isdir(top) else ():
            owner = name.split("-")[0].split(".")[0]
            if owner.isdigit() and int(owner) != os.getpid() and not pid_alive(int(owner)):
                path = os.path.join(top, name)
                if os.path.isdir(path):
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    os.unlink(path)


def chroot_servers():
    """(pid, cwd) of the processes chrooted into a cached rootfs and working
    in one of its app copies: Chroot servers, maybe of an earlier run."""
    found = []
    tops = [os.path.join(r, APP_COPIES) + "/" for r in _rootfs.values()]
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                root = os.readlink("/proc/%s/root" % name)
                cwd = os.readlink("/proc/%s/cwd" % name)
            except OSError:
                continue
            if root in _rootfs.values() and any(cwd.startswith(t) for t in tops):
                found.append((int(name), cwd))
    return found


def _remove_stale_pod(rel):
    try:
        remove_cgroups(rel)
    except OSError:
        pass  # not ours, or still in use: another run's live pod


def stop_all():
    for t in list(reversed(_live)):
        try:
            t.stop()
        except Exception as e:  # noqa: BLE001 - report, then stop the others
            harness.log("cleanup: %s" % e)


atexit.register(stop_all)
if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
    # atexit does not run on a default SIGTERM: a killed run would leak.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


# --selftest: every kind of target once, described as the profiler sees it.

def describe(t):
    """What a host-side profiler sees of a target, as one line per fact."""
    root = "/proc/%d/root" % t.pid
    exe = os.readlink("/proc/%d/exe" % t.pid)
    # The kernel prints paths relative to the READER's root: a chroot's
    # interpreter shows as a host path, which /proc/PID/root + path misses.
    via_root = os.path.exists(root + exe)
    ver = subprocess.run(["chroot", root if via_root else t.rootfs, t.python, "-c",
                          "import sys; print(sys.version)"],
                         capture_output=True, text=True, env={"PATH": PATH})
    check(ver.returncode == 0, "%s: %s -c failed: %s", t.name, t.python, ver.stderr)
    with open("/proc/%d/maps" % t.pid) as f:
        mapped = sorted(set(line.split()[-1] for line in f if "python" in line.split()[-1]))
    with open("/proc/%d/mountinfo" % t.pid) as f:
        root_opts = [line.split()[5] for line in f if line.split()[4] == "/"]
    facts = [("host pid", t.pid), ("ns pid", t.ns_pid), ("workers", t.children()),
             ("python", ver.stdout.split()[0]), ("exe as mapped", exe),
             ("python mappings", " ".join(mapped)),
             ("host has " + exe, os.path.exists(exe)),
             ("/proc/PID/root + exe exists", via_root),
             ("root mount", ",".join(root_opts) or "(not visible: chroot)"),
             ("uid", open("/proc/%d/status" % t.pid).read().split("Uid:")[1].split()[0])]
    facts += [("cgroup", line) for line in t.cgroup().splitlines()
              if line.startswith("0::") or ":memory:" in line]
    if isinstance(t, Container):
        # Not root + "/var/run/...": /var/run is an absolute symlink to /run,
        # and the kernel resolves it against the READER's root, the host's.
        with open(root + "/run/secrets/kubernetes.io/serviceaccount/namespace") as f:
            facts.append(("serviceaccount namespace", f.read()))
        with open("/proc/%d/environ" % t.pid) as f:
            env = f.read().split("\0")
        facts.append(("environment", " ".join(v for v in env if v.startswith(("HOSTNAME=",
                                                                             "OTEL_")))))
        facts.append(("runc status", t.state()["status"]))
    return ["  %-26s %s" % kv for kv in facts]


def leftovers(targets):
    """Whatever the stopped targets could have left behind."""
    left = ["runc container %s" % c["id"] for c, _ in ours()]
    left += [d for d in cgroup_dirs(CGROUP_PARENT.split("/")[0]) if os.path.exists(d)]
    with open("/proc/self/mountinfo") as f:
        left += ["mount " + line.split()[4] for line in f
                 if BUNDLE_PREFIX in line or "/profilis-bpf/rootfs" in line]
    for t in targets:
        left += ["process %d" % p for p in [t.pid] if p and running(p)]
        left += [p for p in (getattr(t, "bundle", None), getattr(t, "appdir", None))
                 if p and os.path.exists(p)]
    return left


def selftest():
    t0 = time.time()
    sid, bookworm = ensure_rootfs("sid"), ensure_rootfs("bookworm")
    harness.log("rootfs sid %s, bookworm %s (%.1fs)" % (sid, bookworm, time.time() - t0))
    cache = tempfile.mkdtemp(prefix="profilis-rootfs-")
    try:
        build_rootfs("bookworm", dict(os.environ, PROFILIS_ROOTFS_CACHE=cache,
                                      PROFILIS_ROOTFS_MIRROR="http://127.0.0.1:9/debian"))
        raise TestFailure("a rootfs from an unreachable mirror was built")
    except TestFailure as e:
        harness.log("unbuildable rootfs fails with: %s" % str(e)[:120])
        harness.log("  ... %s" % str(e).splitlines()[-1][:300])
    finally:
        shutil.rmtree(cache)
    specs = [(Container, dict(rootfs="sid", python="python3.14")),
             (Container, dict(rootfs="sid", python="python3.15", uid=65534)),
             (Container, dict(rootfs="sid", python="python3.14d", workers=1)),
             (Container, dict(rootfs="bookworm", python="python3.11")),
             (Chroot, dict(rootfs="bookworm", python="python3.11")),
             (Chroot, dict(rootfs="sid", python="python3.14", kind="werkzeug", workers=0))]
    targets = []
    try:
        for cls, kw in specs:
            t1 = time.time()
            t = cls(**kw)
            targets.append(t)
            status = harness.http(t.url("/users/7"))
            check(status == 200, "%s: GET /users/7 returned %s", t.name, status)
            harness.log("%s: GET /users/7 -> %d, ready in %.1fs" % (t.name, status,
                                                                   time.time() - t1))
            for line in describe(t):
                harness.log(line)
    finally:
        stop_all()
    left = leftovers(targets)
    check(not left, "left behind: %s", left)
    harness.log("selftest: %d targets started, answered and stopped; nothing left behind "
                "(runc list, cgroups, mounts, processes, bundles, app copies) in %.1fs"
                % (len(targets), time.time() - t0))


if __name__ == "__main__":
    if sys.argv[1:] != ["--selftest"]:
        sys.exit("usage: containers.py --selftest")
    if os.geteuid() != 0:
        sys.exit("containers.py --selftest runs runc and chroot: run it as root")
    try:
        selftest()
    except TestFailure as e:
        sys.exit("selftest FAILED: %s" % e)
