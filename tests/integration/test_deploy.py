# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""The deployment files (issue 13): deploy/kubernetes/daemonset.yaml is valid
against the Kubernetes API schema, and the agent runs as that manifest says,
from deploy/Dockerfile's image (built without docker, agent_image.py) in a
runc container generated from the manifest (k8s_oci.py: capabilities, host
PID namespace, read-only root, hostPath and emptyDir volumes, limits, not
privileged), and records exact requests from a gunicorn in another runc
container; every capability the manifest adds is needed (without it the agent
fails, with the error it prints), the Dockerfile's runtime packages are those
ldd asks for, and the liveness probe tells a running agent from a stuck one."""
import atexit
import copy
import glob
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

import yaml

import agent_image
import k8s_oci
from containers import Container
from harness import APPS, BINARY, ROOT, check, http, log, wait_port, free_port
from test_requests import check_records, drive

VALIDATOR = os.path.join(ROOT, "tests", "k8s-schema", "validate.mjs")
OUTPUT = "/var/log/profilis-bpf"
AGENT = "profilis-bpf"
WARMUP = "/hello/warmup"
_image = []


def image():
    """The image, built once per run (about 10 s from the cached stage bases)."""
    if not _image:
        steps = []
        _image.append(agent_image.Image(steps))
        log("    image built: %s" % "; ".join(steps))
    return _image[0]


def validate(path):
    return subprocess.run(["node", VALIDATOR, path], capture_output=True, text=True,
                          timeout=60)


def test_manifest_schema():
    """daemonset.yaml against the Kubernetes API schema (npm kubernetes-models,
    pinned in tests/k8s-schema): valid; the same manifest with one field of
    the wrong type, or an unknown capability form, is rejected."""
    good = validate(k8s_oci.MANIFEST)
    check(good.returncode == 0 and "apps/v1 DaemonSet profilis-bpf" in good.stdout,
          "the manifest does not validate (exit %d):\n%s%s", good.returncode, good.stdout,
          good.stderr)
    docs = k8s_oci.load()
    broken = [("hostPID", lambda s: s.update(hostPID="true"), "hostPID must be boolean"),
              ("tolerations", lambda s: s.update(tolerations={"operator": "Exists"}),
               "tolerations must be array"),
              ("readOnlyRootFilesystem",
               lambda s: s["containers"][0]["securityContext"].update(
                   readOnlyRootFilesystem=1), "readOnlyRootFilesystem must be boolean")]
    with tempfile.TemporaryDirectory() as d:
        for field, mutate, expect in broken:
            bad = copy.deepcopy(docs)
            mutate(k8s_oci.pod_spec(bad))
            path = os.path.join(d, "bad.yaml")
            with open(path, "w") as f:
                yaml.safe_dump_all(bad, f)
            out = validate(path)
            check(out.returncode == 1 and expect in out.stderr,
                  "a manifest with a bad %s passed or failed otherwise (exit %d): %s",
                  field, out.returncode, out.stdout + out.stderr)
    log("    valid: %s; bad hostPID, tolerations, readOnlyRootFilesystem rejected"
        % ", ".join(ln.split(": ", 2)[-1] for ln in good.stdout.splitlines()))


def test_dockerfile_runtime_packages():
    """The runtime stage installs every package of a library profilis-bpf
    links (its DT_NEEDED entries; libc6 comes with the base image) and none
    that `ldd profilis-bpf` does not resolve to (apt brings the libraries'
    own dependencies, such as libcurl4's TLS and HTTP/2 libraries, so they
    may be listed or not), and in the image built from the Dockerfile every
    library resolves."""
    stages = agent_image.parse()
    listed = set(agent_image.apt_packages(stages[-1]))
    needed = agent_image.needed_packages(BINARY) - {"libc6"}
    used = agent_image.ldd_packages(BINARY) - {"libc6"}
    check(needed <= listed <= used, "deploy/Dockerfile's runtime stage installs %s; "
          "profilis-bpf links the libraries of %s and ldd resolves to those of %s (missing %s, "
          "not needed %s)", sorted(listed), sorted(needed), sorted(used),
          sorted(needed - listed), sorted(listed - used))
    img = image()
    out = subprocess.run(["chroot", img.rootfs, "ldd", img.entrypoint[0]], capture_output=True,
                         text=True)
    check(out.returncode == 0 and "not found" not in out.stdout,
          "in the image, ldd %s: %s%s", img.entrypoint[0], out.stdout, out.stderr)
    log("    runtime packages %s = ldd's; in the image: %s" % (
        " ".join(sorted(listed)), " ".join(ln.split()[0] for ln in out.stdout.splitlines()
                                           if "=>" in ln)))


def agent_argv(img, c, pids):
    """The manifest's command line; `--all` becomes `-p PID...` while the
    binary does not have it yet."""
    argv = img.entrypoint + c["args"]
    help_text = subprocess.run([img.binary(), "--help"], capture_output=True, text=True).stdout
    if "--all" in argv and "--all" not in help_text:
        i = argv.index("--all")
        argv[i:i + 1] = [a for p in pids for a in ("-p", str(p))]
    return argv


def records(path_or_text):
    return [json.loads(ln) for ln in path_or_text.splitlines() if ln.strip()]


def file_records(out_dir):
    recs = []
    for path in sorted(glob.glob(os.path.join(out_dir, "*.jsonl"))):
        with open(path) as f:
            text = f.read()
        check(text.endswith("\n"), "%s ends in a partial line", path)
        recs += records(text)
    return recs


def warm_up(agent, target, timeout=30):
    """Requests until the agent records one: it is attached (with -p or --all)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        check(http(target.url(WARMUP)) == 200, "GET %s failed", WARMUP)
        if WARMUP in agent.stdout():
            return
        check(agent.proc.poll() is None, "the agent exited %s:\n%s", agent.proc.returncode,
              agent.stderr())
        time.sleep(0.2)
    raise AssertionError("no record of %s after %ds:\n%s" % (WARMUP, timeout, agent.stderr()))


def requests_of(recs, pids):
    return [r for r in recs if r.get("kind") == "REQ" and r["pid"] in pids
            and r["path"] != WARMUP]


def status_caps(pid):
    with open("/proc/%d/status" % pid) as f:
        fields = dict(ln.split(":", 1) for ln in f.read().splitlines() if ":" in ln)
    return int(fields["CapEff"], 16), fields["NoNewPrivs"].strip()


def cap_mask(names):
    numbers = {"CAP_DAC_READ_SEARCH": 2, "CAP_SYS_PTRACE": 19, "CAP_SYS_ADMIN": 21,
               "CAP_PERFMON": 38, "CAP_BPF": 39}
    return sum(1 << numbers[n] for n in names)


def check_container(agent, caps, c):
    """What the kernel says about the running agent: exactly the manifest's
    capabilities, the host's PID namespace, a read-only root, the limits."""
    eff, nnp = status_caps(agent.pid)
    check(eff == cap_mask(caps), "the agent's CapEff is %x, the manifest says %s (%x)", eff,
          caps, cap_mask(caps))
    check(os.readlink("/proc/%d/ns/pid" % agent.pid) == os.readlink("/proc/self/ns/pid"),
          "the agent is not in the host's PID namespace")
    check(os.readlink("/proc/%d/ns/net" % agent.pid) != os.readlink("/proc/self/ns/net"),
          "the agent shares the host's network namespace; the manifest does not ask for it")
    with open("/proc/%d/mountinfo" % agent.pid) as f:
        root = [ln.split() for ln in f if ln.split()[4] == "/"][-1]
    check("ro" in root[5].split(","), "the agent's root is mounted %s", root[5])
    base = "/sys/fs/cgroup/memory/%s/%s/" % (agent.pod_cgroup, agent.id)
    with open(base + "memory.limit_in_bytes") as f:
        limit = int(f.read())
    want = k8s_oci.quantity(c["resources"]["limits"]["memory"])
    check(limit == want, "memory limit %d, the manifest says %d", limit, want)
    check(not [m for m in agent.config["mounts"] if m["destination"].startswith("/dev/")
               and m["type"] == "bind"], "devices passed into the container")
    return nnp


def test_agent_in_manifest_container():
    """The request acceptance (230 requests, exact fields) with the agent in a
    runc container made from daemonset.yaml and the Dockerfile's image, the
    target a 3.11 gunicorn in another container: every record in the hostPath
    directory's rotated JSONL files and on stdout (kubectl logs), nothing lost,
    the agent's capabilities, PID namespace, read-only root and memory limit
    as the manifest says; its memory peak and CPU are logged."""
    img = image()
    docs = k8s_oci.load()
    c = k8s_oci.container_spec(docs, AGENT)
    caps = k8s_oci.capabilities(c)
    out_dir = tempfile.mkdtemp(prefix="profilis-hostpath-")
    try:
        with Container(rootfs="bookworm", python="python3.11", app="shop", workers=2) as t:
            pids = set([t.pid] + t.children())
            with k8s_oci.PodContainer(img, argv=agent_argv(img, c, [t.pid]), docs=docs,
                                      host_paths={OUTPUT: out_dir}) as agent:
                warm_up(agent, t)
                nnp = check_container(agent, caps, c)
                cpu0 = agent.cpu_ns()
                expected = drive(t)
                cpu = agent.cpu_ns() - cpu0
                time.sleep(0.3)
                # What the kubelet sends on pod deletion.
                agent.signal("TERM")
                rc = agent.wait(30)
                check(rc == 0, "the agent exited %s on SIGTERM:\n%s", rc, agent.stderr())
                peak = agent.memory_peak()
                stdout, stderr = agent.stdout(), agent.stderr()
        from_files = requests_of(file_records(out_dir), pids)
        check_records(from_files, expected, pids)
        check_records(requests_of(records(stdout), pids), expected, pids)
        # The node's name comes from the manifest's spec.nodeName, not the
        # agent pod's own hostname.
        hosts = {r.get("host_name") for r in from_files}
        check(hosts == {k8s_oci.NODE_NAME}, "host_name in the records: %s", hosts)
        check(" 0 lost " in stderr, "the summary does not say 0 lost:\n%s", stderr)
        check(not glob.glob(os.path.join(out_dir, ".*")), "a hidden active file was left: %s",
              os.listdir(out_dir))
        total = sum(expected.values())
        log("    %d requests: exact in %s and on stdout; caps %s, NoNewPrivs %s; "
            "memory peak %.1f MiB; CPU %.1f ms (%.0f us/request)"
            % (total, ", ".join(os.listdir(out_dir)), ",".join(caps), nnp, peak / 2**20,
               cpu / 1e6, cpu / 1e3 / total))
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)


class PrivateTarget:
    """Debian's gunicorn, run as uid 1000 by a copy of /usr/bin/python3.11 in
    a directory only uid 1000 may search (mode 0700): a service whose
    interpreter lives in its user's home or a private virtualenv."""

    def __init__(self, uid=1000):
        self.dir = tempfile.mkdtemp(prefix="profilis-private-")
        shutil.copy2("/usr/bin/python3.11", self.dir)
        os.chown(self.dir, uid, uid)
        self.port = free_port()
        self.proc = subprocess.Popen(
            ["setpriv", "--reuid", str(uid), "--regid", str(uid), "--clear-groups",
             os.path.join(self.dir, "python3.11"), "/usr/bin/gunicorn", "-w", "1", "-b",
             "127.0.0.1:%d" % self.port, "shop:app"],
            cwd=APPS, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)
        self.pid = self.proc.pid
        try:
            wait_port(self.port, self.proc)
        except BaseException:
            self.stop()
            raise

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def run_with_caps(img, caps, targets):
    """The agent with `caps` on `targets` for 4 s: (exit status, the paths
    recorded per target, its stderr)."""
    argv = img.entrypoint + [a for t in targets for a in ("-p", str(t.pid))] + [
        "-d", "4", "-o", OUTPUT + "/", "--console", "off"]
    out_dir = tempfile.mkdtemp(prefix="profilis-hostpath-")
    try:
        with k8s_oci.PodContainer(img, argv=argv, caps=caps,
                                  host_paths={OUTPUT: out_dir}) as agent:
            time.sleep(1.5)
            for t in targets:
                http(t.url("/users/%d" % t.port))
            rc = agent.wait(30)
            stderr = agent.stderr()
        recs = file_records(out_dir)
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    seen = [sorted(r["path"] for r in recs if r.get("kind") == "REQ"
                   and r["path"] == "/users/%d" % t.port) for t in targets]
    return rc, seen, stderr.strip()


def test_capabilities_minimal():
    """Every capability the manifest adds is needed: with the manifest's set
    the agent records a request from a root gunicorn in a container and from
    a uid-1000 gunicorn whose interpreter sits in a 0700 directory; without
    any one of them it does not, and says why (logged: the measurement the
    README's capability table comes from)."""
    img = image()
    caps = k8s_oci.capabilities(k8s_oci.container_spec(k8s_oci.load(), AGENT))
    with Container(rootfs="bookworm", python="python3.11", app="shop", workers=1) as t, \
            PrivateTarget() as p:
        rc, seen, err = run_with_caps(img, caps, [t, p])
        check(rc == 0 and all(len(s) == 1 for s in seen),
              "with the manifest's %s: exit %s, records %s:\n%s", caps, rc, seen, err)
        log("    %s: exit 0, both targets recorded" % ",".join(caps))
        for cap in caps:
            less = [x for x in caps if x != cap]
            rc, seen, err = run_with_caps(img, less, [t, p])
            check(rc != 0 or not all(len(s) == 1 for s in seen),
                  "without %s the agent still records both targets: %s is not needed", cap,
                  cap)
            log("    without %s: exit %s, records %s: %s" % (
                cap, rc, [len(s) for s in seen],
                [ln for ln in err.splitlines() if "error" in ln or "warn" in ln][:2]))


def probe(agent, c):
    return agent.exec(c["livenessProbe"]["exec"]["command"]).returncode


def test_liveness_probe():
    """The manifest's liveness command, run in the agent's container as the
    kubelet runs it: passes while the agent runs (also with no traffic at
    all), fails once the agent is stopped (SIGSTOP) for longer than its limit."""
    img = image()
    docs = k8s_oci.load()
    c = k8s_oci.container_spec(docs, AGENT)
    out_dir = tempfile.mkdtemp(prefix="profilis-hostpath-")
    try:
        with Container(rootfs="bookworm", python="python3.11", app="shop", workers=1) as t:
            with k8s_oci.PodContainer(img, argv=agent_argv(img, c, [t.pid]), docs=docs,
                                      host_paths={OUTPUT: out_dir}) as agent:
                warm_up(agent, t)
                time.sleep(3)
                check(probe(agent, c) == 0, "the probe fails on a running, idle agent")
                os.kill(agent.pid, signal.SIGSTOP)
                t0 = time.time()
                try:
                    while probe(agent, c) == 0 and time.time() - t0 < 60:
                        time.sleep(1)
                    stuck = time.time() - t0
                finally:
                    os.kill(agent.pid, signal.SIGCONT)
                check(stuck < 60, "the probe still passes after the agent was stopped 60 s")
                time.sleep(2)
                check(probe(agent, c) == 0, "the probe fails after the agent resumed")
        log("    probe: passes while running and idle; fails %.0f s after SIGSTOP; passes "
            "again after SIGCONT" % stuck)
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)


def cleanup_image():
    for img in _image:
        img.cleanup()
    _image.clear()


atexit.register(cleanup_image)
TESTS = [test_manifest_schema, test_dockerfile_runtime_packages, test_agent_in_manifest_container,
         test_capabilities_minimal, test_liveness_probe]
