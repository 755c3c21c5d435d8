# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""The node agent: `profilis-bpf --all` started before its targets finds
every Flask process on the host as it starts, whatever its CPython and
container (two pods in two namespaces, a 3.11 and a 3.14, and a host
gunicorn), records exactly their requests (the first one included) and
nothing from a Python process without Flask, and survives a worker killed
in the middle of a request."""
import collections
import os
import re
import signal
import subprocess
import threading
import time

from containers import Container
from harness import DEBIAN_PY, PYENV, PYENV_38, Profiler, Server, check, http, log

NO_FLASK = """
import contextvars, time
v = contextvars.ContextVar("not.flask")
end = time.time() + 60
while time.time() < end:
    v.reset(v.set(1))
    time.sleep(0.001)
"""


def start_agent(extra=()):
    agent = Profiler(None, ["--all", "-F", "0", "--no-offcpu"] + list(extra), ready=False)
    agent.wait_stderr("tracing every CPython on this node")
    return agent


def drive(t, n):
    """n distinct paths; the first request of a new process is among them."""
    for i in range(n):
        check(http(t.url("/users/%d" % i)) == 200, "%s: request %d failed", t.name, i)
    return {"/users/%d" % i for i in range(n)}


def tree(t):
    return set([t.pid] + t.children())


def test_all_finds_targets_started_after_it():
    agent = start_agent(["-v"])
    plain = old = None
    brief = []
    try:
        with Container(rootfs="bookworm", python="python3.11", app="shop", workers=2,
                       pod="shop-a-5d8f7c-x2x9q", namespace="team-a") as a, \
                Container(rootfs="sid", python="python3.14", app="shop", workers=2,
                          pod="shop-b-6c9d4b-k7m2p", namespace="team-b") as b, \
                Server("gunicorn", python=DEBIAN_PY, workers=2) as h:
            h.name = "host gunicorn"
            plain = subprocess.Popen([PYENV["3.12"], "-c", NO_FLASK])
            # Reported once and skipped: a CPython we do not read (3.8), and
            # processes that exit while they are being looked at.
            old = subprocess.Popen([PYENV_38, "-c", "import time; time.sleep(60)"])
            brief = [subprocess.Popen([DEBIAN_PY, "-c", "pass"]) for _ in range(20)]
            want = {t.name: (tree(t), drive(t, 12)) for t in (a, b, h)}
            meta = {p: expected_meta(t) for t in (a, b, h) for p in tree(t)}
            killed = kill_mid_request(a)
            # The replacement worker, forked after the kill, is traced too.
            want[a.name] = (tree(a) | want[a.name][0], want[a.name][1] | drive_more(a))
            meta.update({p: expected_meta(a) for p in tree(a)})
            for p in brief:
                p.wait()
            time.sleep(0.5)
            check(agent.stop() == 0, "agent exit:\n%s", agent.stderr())
            recs, err = agent.records(), agent.stderr()
        by_target = collections.defaultdict(set)
        strays = []
        for r in recs:
            owner = [name for name, (pids, _) in want.items() if r["pid"] in pids]
            if owner:
                by_target[owner[0]].add(r["path"])
            else:
                strays.append((r["pid"], r["path"]))
        for name, (_, paths) in want.items():
            check(by_target[name] == paths, "%s: recorded %s, want %s", name,
                  sorted(by_target[name]), sorted(paths))
        check_metadata(recs, meta)
        ours = {plain.pid, old.pid} | {p.pid for p in brief}
        check(not [s for s in strays if s[0] in ours], "records from our processes without "
              "Flask: %s", strays)
        if strays:  # another suite's server on this machine: --all traces it too
            log("    (records from other processes on the node: %s)" % strays[:3])
        check(len(recs) - len(strays) == sum(len(p) for _, p in want.values()),
              "%d records, want %d (one each)", len(recs) - len(strays),
              sum(len(p) for _, p in want.values()))
        said = [l for l in err.splitlines() if "CPython 3.8" in l and ": debug:" not in l]
        check(len(said) == 1 and "PID %d" % old.pid in said[0] and
              re.search(r", [1-9]\d* of unsupported versions", err),
              "the 3.8 process not reported exactly once:\n%s", err)
        log("    3 targets started after the agent: %s records; worker %d killed in a request"
            % ({n: len(p) for n, p in by_target.items()}, killed))
    finally:
        agent.close()
        for p in (plain, old):
            if p:
                p.kill()
                p.wait()


def wchan(pid):
    try:
        with open("/proc/%d/wchan" % pid) as f:
            return f.read()
    except OSError:
        return ""


HOST = os.uname().nodename


def expected_meta(t):
    """What every record of target t must say about where it ran."""
    if isinstance(t, Container):
        return dict(service_name=t.pod.rsplit("-", 2)[0], container_id=t.id,
                    k8s_pod_uid=t.pod_uid, k8s_pod_name=t.pod, k8s_namespace=t.namespace,
                    host_name=HOST)
    # A host gunicorn: no container, no pod; its service is the app module.
    return dict(service_name="shop", container_id=None, k8s_pod_uid=None, k8s_pod_name=None,
                k8s_namespace=None, host_name=HOST)


def check_metadata(recs, meta):
    for r in recs:
        want = meta.get(r["pid"])
        if want is None:
            continue  # a stray, reported by the caller
        got = {k: r.get(k, "absent") for k in want}
        check(got == want, "pid %d: metadata %s, want %s", r["pid"], got, want)


def test_namespace_selects_one_pod():
    """--k8s-namespace team-b: the agent traces the pod in team-b only; the
    pod in team-a and the host gunicorn give no record."""
    agent = start_agent(["--k8s-namespace", "team-b"])
    try:
        with Container(rootfs="bookworm", python="python3.11", app="shop", workers=1,
                       pod="shop-a-5d8f7c-x2x9q", namespace="team-a") as a, \
                Container(rootfs="sid", python="python3.15", app="shop", workers=1,
                          pod="shop-b-6c9d4b-k7m2p", namespace="team-b") as b, \
                Server("gunicorn", python=DEBIAN_PY, workers=1) as h:
            h.name = "host gunicorn"
            for t in (a, b, h):
                drive(t, 10)
            pods_b = tree(b)
            time.sleep(0.5)
            check(agent.stop() == 0, "agent exit:\n%s", agent.stderr())
            recs, err = agent.records(), agent.stderr()
        check(len(recs) == 10 and all(r["pid"] in pods_b for r in recs) and
              all(r["k8s_namespace"] == "team-b" and r["k8s_pod_name"] == b.pod for r in recs),
              "records: %s", [(r["pid"], r["k8s_namespace"], r["path"]) for r in recs])
        check(re.search(r"--all: \d+ CPython processes traced, [1-9]\d* left out", err),
              "no process left out by the selector:\n%s", err)
        log("    --k8s-namespace team-b: 10 records, all from %s" % b.pod)
    finally:
        agent.close()


def kill_mid_request(t):
    """SIGKILLs the worker that sleeps inside a /slow request (the one in a
    nanosleep; an idle sync worker waits in select), so that request dies
    unfinished; gunicorn forks a replacement."""
    result = {}
    old = t.children()
    th = threading.Thread(target=lambda: result.update(code=slow_request(t)))
    th.start()
    busy, deadline = None, time.time() + 5
    while busy is None and time.time() < deadline:
        busy = next((w for w in old if "nanosleep" in wchan(w)), None)
    check(busy, "%s: no worker found sleeping in /slow", t.name)
    os.kill(busy, signal.SIGKILL)
    th.join(10)
    check(result.get("code") != 200, "%s: /slow finished: %s", t.name, result)
    deadline = time.time() + 30
    while time.time() < deadline and (busy in t.children() or len(t.children()) < 2):
        time.sleep(0.1)
    check(busy not in t.children() and len(t.children()) == 2,
          "%s: no replacement worker: %s", t.name, t.children())
    return busy


def slow_request(t):
    try:
        return http(t.url("/slow"))
    except Exception as e:  # the connection dies with the worker
        return repr(e)


def drive_more(t):
    """Requests after the kill: both workers, old and new, answer some."""
    paths = set()
    for i in range(100, 120):
        check(http(t.url("/users/%d" % i)) == 200, "%s: request %d failed", t.name, i)
        paths.add("/users/%d" % i)
    return paths


TESTS = [test_all_finds_targets_started_after_it, test_namespace_selects_one_pod]
