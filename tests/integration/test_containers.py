# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""CPython 3.14 and 3.15 (Debian sid), and 3.11 (Debian bookworm), each
serving from a REAL runc container (own PID and mount namespaces, a
read-only root reached by pivot_root, a kubelet-style cgroup), and a 3.11
gunicorn under a plain chroot: profilis-bpf runs on the host, is given the
host PID of the gunicorn master and records exact requests and stacks.
The root file systems come from tools/rootfs (cached outside the checkout);
when they cannot be built these tests fail with the reason."""
import json
import os
import subprocess
import tempfile
import time

from containers import Chroot, Container
from harness import BINARY, Profiler, check, http, log
from test_profile import app_line, leaf_lines, profiles_by_name

# (root file system, interpreter, the version --list and the log must name)
TARGETS = (("sid", "python3.14", "3.14.10"), ("sid", "python3.15", "3.15.2"),
           ("bookworm", "python3.11", "3.11.2"))


def exercise_shop(t):
    """10 distinct /users, one failing /boom, one POST: what each record must
    say, keyed by path."""
    want = {}
    for i in range(10):
        check(http(t.url("/users/%d" % i)) == 200, "%s: /users failed", t.name)
        want["/users/%d" % i] = ("GET", "/users/<int:uid>", "get_user", 200, None)
    check(http(t.url("/boom")) == 500, "%s: /boom did not fail", t.name)
    want["/boom"] = ("GET", "/boom", "boom", 500, "PaymentDeclined")
    check(http(t.url("/orders"), method="POST", body=b'{"item": "book"}',
               headers={"Content-Type": "application/json"}) == 201, "%s: POST failed", t.name)
    want["/orders"] = ("POST", "/orders", "create_order", 201, None)
    return want


def check_records(t, recs, want):
    got = {r["path"]: (r["method"], r["route"], r["endpoint"], r["status"],
                       r["exception_type"]) for r in recs}
    check(len(recs) == len(want) and got == want, "%s: records %s, want %s", t.name, got, want)
    workers = set(t.children())
    check(all(r["pid"] in workers for r in recs), "%s: pids %s, workers %s", t.name,
          sorted({r["pid"] for r in recs}), sorted(workers))


def test_requests_in_containers():
    """Exact records from 3.14, 3.15 and 3.11 servers in runc containers, the
    host PID given; ns_pid is the worker's PID inside the container."""
    for rootfs, python, version in TARGETS:
        with Container(rootfs=rootfs, python=python, app="shop", workers=2) as c:
            prof = Profiler(c.pid, ["-F", "0", "--no-offcpu"])
            try:
                check("CPython %s" % version in prof.stderr(), "%s: %s", c.name, prof.stderr())
                want = exercise_shop(c)
                time.sleep(0.3)
                check(prof.stop() == 0, "%s: exit:\n%s", c.name, prof.stderr())
                recs = prof.records()
            finally:
                prof.close()
            check_records(c, recs, want)
            ns = {r["pid"]: r.get("ns_pid") for r in recs}
            check(c.ns_pid == 1 and all(v and v != p and 1 < v < 1000 for p, v in ns.items()),
                  "%s: ns_pid by host pid %s (master ns pid %s)", c.name, ns, c.ns_pid)
            log("    %s: %d records, ns pids %s" % (c.name, len(recs), sorted(set(ns.values()))))


def test_stacks_in_containers():
    """On- and off-CPU stacks of 3.14 and 3.15 (tagged stack references,
    new frame owners) symbolized with the right line numbers: burn_cpu's
    samples on its loop, wait_io blocked on its sleep; none unknown."""
    loop_at = app_line("while time.perf_counter() < end:")
    sleep_at = app_line("time.sleep(seconds)")
    for rootfs, python, version in TARGETS[:2]:
        scope = tempfile.NamedTemporaryFile(prefix="pbpf-", suffix=".json", delete=False)
        scope.close()
        try:
            with Container(rootfs=rootfs, python=python, app="profiled", workers=1) as c:
                check(http(c.url("/json")) == 200, "warm-up failed")
                prof = Profiler(c.pid, ["-F", "499", "--speedscope", scope.name])
                try:
                    for _ in range(20):
                        check(http(c.url("/mixed")) == 200, "%s: /mixed failed", c.name)
                    time.sleep(0.3)
                    check(prof.stop() == 0, "%s: exit:\n%s", c.name, prof.stderr())
                    n = len(prof.records())
                finally:
                    prof.close()
            with open(scope.name) as f:
                doc = json.load(f)
        finally:
            os.unlink(scope.name)
        check(n == 20, "%s: %d records for 20 requests", c.name, n)
        byname = profiles_by_name(doc)
        cpu, off = byname.get("GET /mixed (on-CPU)"), byname.get("GET /mixed (off-CPU)")
        check(cpu and off, "%s: no /mixed profiles: %s", c.name, sorted(byname))
        loop = leaf_lines(doc, cpu, "burn_cpu")
        total = sum(loop.values())
        check(total and loop.get(loop_at, 0) + loop.get(loop_at + 1, 0) >= 0.9 * total,
              "%s: burn_cpu samples by line: %s (loop at %d)", c.name, loop, loop_at)
        sleep = leaf_lines(doc, off, "wait_io")
        check(sleep and set(sleep) == {sleep_at}, "%s: wait_io blocked by line: %s (sleep "
              "at %d)", c.name, sleep, sleep_at)
        unknown = [f for f in doc["shared"]["frames"] if f["name"] == "<unknown>"]
        check(not unknown, "%s: unknown frames: %s", c.name, unknown)
        log("    %s: burn_cpu %d samples on lines %s, wait_io blocked on line %d" % (
            c.name, total, sorted(loop), sleep_at))


def test_chroot_target():
    """A gunicorn under chroot(1): its maps name files from our root, so the
    interpreter is opened through the mapping itself (it failed with "No such
    file or directory" when read via /proc/PID/root)."""
    with Chroot(rootfs="bookworm", python="python3.11", app="shop", workers=2) as t:
        prof = Profiler(t.pid, ["-F", "0", "--no-offcpu"])
        try:
            want = exercise_shop(t)
            time.sleep(0.3)
            check(prof.stop() == 0, "exit:\n%s", prof.stderr())
            recs = prof.records()
        finally:
            prof.close()
        check_records(t, recs, want)
        check(all("ns_pid" not in r for r in recs), "a chroot shares our PID namespace")
        log("    %s: %d records" % (t.name, len(recs)))


def test_list_and_check_see_containers():
    """--list names the containers' interpreters, versions and Flask workers
    by host PID; --check passes."""
    with Container(rootfs="sid", python="python3.14", app="shop", workers=1) as a, \
            Container(rootfs="sid", python="python3.15", app="shop", workers=1) as b:
        for t in (a, b):
            check(http(t.url("/users/1")) == 200, "request failed")
        out = subprocess.run([BINARY, "--list"], capture_output=True, text=True, timeout=60)
        check(out.returncode == 0, "--list: %s", out.stderr)
        rows = {int(l.split()[0]): l.split() for l in out.stdout.splitlines()[1:] if l.strip()}
        for t, version in ((a, "3.14.10"), (b, "3.15.2")):
            worker = t.children()[0]
            check(t.pid in rows and rows[t.pid][3] == version, "%s master: %s", t.name,
                  rows.get(t.pid))
            check(worker in rows and rows[worker][6] == "yes", "%s worker Flask: %s",
                  t.name, rows.get(worker))
        chk = subprocess.run([BINARY, "--check"], capture_output=True, text=True, timeout=60)
        check(chk.returncode == 0, "--check: %s%s", chk.stdout, chk.stderr)


TESTS = [test_requests_in_containers, test_stacks_in_containers, test_chroot_target,
         test_list_and_check_see_containers]
