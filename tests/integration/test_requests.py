# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Acceptance of the request slice: a scripted mix of requests against the
shop app under real servers must come out as exactly one record per request
with the right fields, and nothing else."""
import collections
import os
import signal
import subprocess
import time
import urllib.request

from harness import (DEBIAN_PY, PYENV_311, Profiler, Server, check, counter, http, log,
                     our_programs, run_parallel)

# (method, path, body, expected route, endpoint, status, exception type)
SCRIPT = [
    ("GET", "/", None, "/", "index", 200, None),
    ("GET", "/users/42", None, "/users/<int:uid>", "get_user", 200, None),
    ("GET", "/users/7", None, "/users/<int:uid>", "get_user", 200, None),
    ("GET", "/hello/ana", None, "/hello/<name>", "hello", 200, None),
    ("POST", "/orders", b'{"sku": "x-1", "qty": 2}', "/orders", "create_order", 201, None),
    ("GET", "/api/v1/items/9", None, "/api/v1/items/<int:item_id>", "api.get_item", 200, None),
    ("POST", "/api/v1/items", b"{}", "/api/v1/items", "api.items", 200, None),
    ("GET", "/no/such/page", None, "/no/such/page", None, 404, None),
    ("GET", "/orders", None, "/orders", None, 405, None),
    ("GET", "/boom", None, "/boom", "boom", 500, "PaymentDeclined"),
    ("GET", "/divide/0", None, "/divide/<int:n>", "divide", 500, "ZeroDivisionError"),
    ("GET", "/divide/4", None, "/divide/<int:n>", "divide", 200, None),
    ("GET", "/admin", None, "/admin", "admin", 403, None),
    ("GET", "/old", None, "/old", "old", 302, None),
    ("GET", "/slow", None, "/slow", "slow", 200, None),
]
FIELDS = ("method", "path", "route", "endpoint", "status", "exception_type")
TRACE_IDS = ["%032x" % (0x4bf92f3577b34da6a3ce929d0e0e4700 + i) for i in range(5)]


def send(server, item):
    method, path, body, route, endpoint, status, exc = item
    headers = {"Content-Type": "application/json"} if body is not None else {}
    got = http(server.url(path), method, body, headers)
    check(got == status, "%s %s answered %s, the test expects %s", method, path, got, status)


def drive(server, rounds=15):
    """Sends the script `rounds` times on 4 threads plus traced requests;
    returns the expected records as a Counter over FIELDS."""
    items = SCRIPT * rounds
    run_parallel(lambda it: send(server, it), items)
    for i, tid in enumerate(TRACE_IDS):
        tp = "00-%s-%016x-01" % (tid, 0xb7 + i)
        check(http(server.url("/hello/traced"), headers={"traceparent": tp}) == 200,
              "traced request failed")
    expected = collections.Counter(
        (m, p, r, e, s, x) for m, p, _, r, e, s, x in items)
    expected[("GET", "/hello/traced", "/hello/<name>", "hello", 200, None)] += len(TRACE_IDS)
    return expected


def check_records(records, expected, pids):
    got = counter(records, FIELDS)
    missing = expected - got
    extra = got - expected
    check(not missing and not extra, "records differ from requests:\n missing %s\n extra %s",
          dict(missing), dict(extra))
    spans = set()
    for r in records:
        check(r["kind"] == "REQ" and r["schema_version"] == 1, "bad kind/schema: %s", r)
        check(len(r["trace_id"]) == 32 and len(r["span_id"]) == 16, "bad ids: %s", r)
        check(r["span_id"] not in spans, "duplicate span id %s", r["span_id"])
        spans.add(r["span_id"])
        check(r["pid"] in pids, "record from pid %s outside the tree %s", r["pid"], pids)
        check(r["error"] == (r["exception_type"] is not None), "error flag: %s", r)
        check(0 < r["dur_ns"] < 5e9, "implausible duration: %s", r)
        check(abs(r["time_unix_ns"] / 1e9 - time.time()) < 600, "wall clock off: %s", r)
        if r["path"] == "/slow":
            check(50e6 <= r["dur_ns"] < 1e9, "/slow took %d ns", r["dur_ns"])
    traced = {r["trace_id"]: r for r in records if r["path"] == "/hello/traced"}
    for i, tid in enumerate(TRACE_IDS):
        check(tid in traced, "trace id %s from traceparent not recorded", tid)
        check(traced[tid]["parent_span_id"] == "%016x" % (0xb7 + i), "parent span id: %s",
              traced[tid])


def acceptance(server, pids_fn):
    prof = Profiler(server.pid)
    try:
        expected = drive(server)
        time.sleep(0.3)
        rc = prof.stop()
        check(rc == 0, "profilis-bpf exited %s:\n%s", rc, prof.stderr())
        records = prof.records()
        check_records(records, expected, pids_fn())
        total = sum(expected.values())
        check("%d requests recorded, 0 lost" % total in prof.stderr(),
              "summary does not say %d recorded, 0 lost:\n%s", total, prof.stderr())
        log("    %d requests, %d records, %d routes" % (total, len(records),
                                                      len({r['route'] for r in records})))
        return records
    finally:
        prof.close()


def test_gunicorn_debian_master_pid():
    """Debian python3.11 + Flask 2.2.2, gunicorn 2 sync workers, master PID."""
    with Server("gunicorn", python=DEBIAN_PY, workers=2) as srv:
        pids = set([srv.pid] + srv.children())
        check(len(pids) == 3, "expected a master and 2 workers, got %s", pids)
        acceptance(srv, lambda: pids)


def test_werkzeug_pyenv_threaded():
    """pyenv 3.11.7 (shared libpython) + Flask 3.1.3, werkzeug threaded=True."""
    with Server("werkzeug", python=PYENV_311) as srv:
        acceptance(srv, lambda: {srv.pid})


def test_gunicorn_worker_respawn():
    """A killed worker's replacement, forked after attach, is traced."""
    with Server("gunicorn", python=DEBIAN_PY, workers=2) as srv:
        prof = Profiler(srv.pid)
        try:
            old = set(srv.children())
            victim = sorted(old)[0]
            os.kill(victim, signal.SIGKILL)
            deadline = time.time() + 20
            while time.time() < deadline:
                kids = set(srv.children())
                if len(kids) == 2 and victim not in kids:
                    break
                time.sleep(0.1)
            new = set(srv.children()) - old
            check(len(new) == 1, "gunicorn did not replace worker %d: %s", victim,
                  srv.children())
            (fresh,) = new
            # Ask until the replacement (which imports the app after the fork)
            # has answered 20 times; each answer names the worker.
            served = collections.Counter()
            for _ in range(3000):
                served[int(urllib.request.urlopen(srv.url("/pid"), timeout=10).read())] += 1
                if served[fresh] >= 20:
                    break
            check(served[fresh] >= 20, "the replacement %d never answered: %s", fresh,
                  dict(served))
            time.sleep(0.3)
            check(prof.stop() == 0, "profilis-bpf failed:\n%s", prof.stderr())
            by_pid = collections.Counter(r["pid"] for r in prof.records())
            check(by_pid == served, "records per worker %s, answers per worker %s",
                  dict(by_pid), dict(served))
            check(victim not in by_pid, "records from the killed worker: %s", dict(by_pid))
            seen = sum(served.values())
            log("    replacement worker %d served %d of %d" % (fresh, by_pid[fresh], seen))
        finally:
            prof.close()


def test_flask_imported_after_attach():
    """A Python process that imports Flask only later is waited for."""
    with Server("werkzeug", app="late_flask", python=PYENV_311) as srv:
        prof = Profiler(srv.pid, ["-v"])
        try:
            prof.wait_stderr("waiting for Flask requests")
            check(http(srv.url("/start")) == 200, "could not trigger the import")
            for i in range(10):
                check(http(srv.url("/flask/users/%d" % i)) == 200, "flask request failed")
            prof.wait_stderr("first Flask request context seen")
            time.sleep(0.3)
            check(prof.stop() == 0, "profilis-bpf failed:\n%s", prof.stderr())
            records = prof.records()
            check(len(records) == 10, "10 Flask requests, %d records", len(records))
            check(all(r["route"] == "/flask/users/<int:uid>" for r in records),
                  "routes: %s", [r["route"] for r in records])
        finally:
            prof.close()


TESTS = [test_gunicorn_debian_master_pid, test_werkzeug_pyenv_threaded,
         test_gunicorn_worker_respawn, test_flask_imported_after_attach]


def uprobe_run_counts(ids):
    """run_cnt of our uprobe programs among `ids` (the fork/exit tracepoints
    run for every process on the host by design: they are left out)."""
    out = subprocess.run(["bpftool", "prog", "show"], capture_output=True, text=True,
                         env=dict(os.environ, PATH=os.environ.get("PATH", "") + ":/usr/sbin"))
    counts, cur = {}, None
    for line in out.stdout.splitlines():
        if line[:1].isdigit():
            cur = int(line.split(":")[0]) if "name ctxvar_" in line else None
        if cur in ids and "run_cnt" in line:
            parts = line.split()
            counts[cur] = int(parts[parts.index("run_cnt") + 1])
    return counts


class BpfStats:
    """kernel.bpf_stats_enabled on for the duration, restored after."""

    def __enter__(self):
        with open("/proc/sys/kernel/bpf_stats_enabled") as f:
            self.before = f.read().strip()
        with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
            f.write("1")
        return self

    def __exit__(self, *exc):
        with open("/proc/sys/kernel/bpf_stats_enabled", "w") as f:
            f.write(self.before)


def test_other_pythons_filtered_in_kernel():
    """The uprobes sit on the interpreter's file, so an untraced Python using
    the same file traps on its ContextVar calls; the traced set turns it away
    before anything is read or counted, and it yields no records."""
    loops = 20000
    with BpfStats(), Server("gunicorn", python=DEBIAN_PY, workers=1) as srv:
        before = our_programs()
        prof = Profiler(srv.pid, ["-v"])
        try:
            ours = our_programs() - before
            start = uprobe_run_counts(ours)
            other = subprocess.run(
                [DEBIAN_PY, "-c", "import contextvars\nv = contextvars.ContextVar('x')\n"
                 "for i in range(%d):\n    v.reset(v.set(i))\n" % loops], timeout=60)
            check(other.returncode == 0, "the other python failed")
            traps = sum(uprobe_run_counts(ours).values()) - sum(start.values())
            # The same file, so the same uprobes: every set and reset trapped.
            check(traps >= 2 * loops, "the untraced python trapped %d times, expected >= %d",
                  traps, 2 * loops)
            check(http(srv.url("/users/1")) == 200, "request failed")
            time.sleep(0.3)
            check(prof.stop() == 0, "profilis-bpf failed:\n%s", prof.stderr())
            records = prof.records()
            check([r["path"] for r in records] == ["/users/1"], "records: %s", records)
            # Only the traced worker's 2 sets + 2 resets got past the filter.
            check(" 4 context-var traps" in prof.stderr(), "traps counted past the filter:\n%s",
                  prof.stderr())
        finally:
            prof.close()


def test_short_lived_workers_every_request():
    """gunicorn --preload --max-requests 50: each worker is forked from the
    master with the app loaded and serves its first request within
    milliseconds; it is traced from that first request (the traced set grows
    in the kernel at the fork), so every request of every worker is recorded."""
    extra = ["--preload", "--max-requests", "50", "--max-requests-jitter", "0"]
    with Server("gunicorn", app="shop", python=DEBIAN_PY, workers=2, extra=extra) as srv:
        prof = Profiler(srv.pid)
        try:
            def one(_):
                with urllib.request.urlopen(srv.url("/pid"), timeout=10) as r:
                    return int(r.read())
            served = collections.Counter(run_parallel(one, range(800), threads=4))
            time.sleep(0.5)
            check(prof.stop() == 0, "profilis-bpf failed:\n%s", prof.stderr())
            by_pid = collections.Counter(r["pid"] for r in prof.records())
            check(len(served) >= 12, "only %d workers served 800 requests: %s", len(served),
                  dict(served))
            check(by_pid == served, "records per worker %s\n answers per worker %s",
                  dict(by_pid), dict(served))
            check("800 requests recorded, 0 lost" in prof.stderr(), "summary:\n%s",
                  prof.stderr())
            log("    800 requests from %d short-lived workers, all recorded" % len(served))
        finally:
            prof.close()


TESTS.append(test_other_pythons_filtered_in_kernel)
TESTS.append(test_short_lived_workers_every_request)
