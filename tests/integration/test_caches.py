# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Whatever the request path learns once and re-uses must be re-checked on
use: these tests change, at run time, each fact a cache could keep, and
assert exact records (method, path, route, endpoint, status, exception
type) for every request before and after, on Debian's 3.11 and pyenv 3.13.

- The URL map rebuilt (tests/apps/reload.py): new werkzeug Rule objects at
  the addresses of freed old ones, with other templates and endpoints.
- Flask's ContextVars re-created (tests/apps/ctxswap.py): flask re-imported
  in the same process, the new `flask.request_ctx` at the address of the
  freed old `flask.app_ctx` and the other way round.
- An environ built differently per request (tests/apps/shuffled.py): key
  order, extra and deleted keys, non-interned keys, a non-str key.
- Hash seeds: workers exec'd with PYTHONHASHSEED 0, 1, 2, 3 and random
  under one launcher (tests/apps/hashseed.py), so hash("PATH_INFO")
  differs per process.
Each app reports the id()s it reused, and the tests check that an address
was really reused before they trust a pass."""
import json
import os
import random
import subprocess
import tempfile
import time
import urllib.request

from harness import (APPS, DEBIAN_PY, PYENV, Launched, Profiler, check, flask_path, free_port,
                     http, log, python_env, wait_port)
from test_requests import SCRIPT

FIELDS = ("method", "path", "route", "endpoint", "status", "exception_type")
VERSIONS = (("debian 3.11", DEBIAN_PY), ("pyenv 3.13", PYENV["3.13"]))
TRACEPARENT = "00-%032x-%016x-01"


class App(Launched):
    """A script from tests/apps as its own process group: `python script args`."""

    def __init__(self, python, script, *args, ports=()):
        self.port = free_port()
        self.log = tempfile.NamedTemporaryFile(prefix="cache-app-", suffix=".log", delete=False)
        argv = [python, os.path.join(APPS, script)] + [a if a is not None else str(self.port)
                                                       for a in args]
        self.proc = subprocess.Popen(argv, cwd=APPS, env=python_env(python), stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.pid = self.proc.pid
        for port in ports or (self.port,):
            wait_port(port, self.proc)

    def url(self, path, port=None):
        return "http://127.0.0.1:%d%s" % (port or self.port, path)

    def output(self):
        with open(self.log.name, errors="replace") as f:
            return f.read()



def control(url, method="POST"):
    """A control request the app answers outside Flask: its JSON."""
    req = urllib.request.Request(url, method=method)
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)


class Expect:
    """Sends requests one at a time and keeps the record each must give."""

    def __init__(self, app):
        self.app = app
        self.want = []

    def send(self, method, path, status, route, endpoint, exc=None, port=None, headers=None,
             body=None):
        if body is None and method in ("POST", "PUT"):
            body = b""
        got = http(self.app.url(path, port), method, body, headers)
        check(got == status, "%s %s answered %s, want %s", method, path, got, status)
        self.want.append((method, path, route, endpoint, status, exc))


def compare(label, records, want, pid=None):
    """Records equal the requests, in order, field for field."""
    got = [tuple(r.get(k) for k in FIELDS) for r in records]
    bad = [(i, g, w) for i, (g, w) in enumerate(zip(got, want)) if g != w]
    check(len(got) == len(want) and not bad, "%s: %d records for %d requests; first "
          "differences (index, got, want): %s", label, len(got), len(want), bad[:5])
    for r in records:
        check(r["error"] == (r["exception_type"] is not None), "%s: error flag: %s", label, r)
        check(pid is None or r["pid"] == pid, "%s: record from pid %s, want %s", label,
              r["pid"], pid)


def profiled(app, drive, pid=None):
    """Runs drive() with profilis-bpf attached to app; returns the records."""
    prof = Profiler(pid or app.pid, ["-F", "0", "--no-offcpu"])
    try:
        drive()
        time.sleep(0.3)
        check(prof.stop() == 0, "profilis-bpf failed:\n%s", prof.stderr())
        return prof.records(), prof.stderr()
    finally:
        prof.close()


# --- 1. URL map reloaded: new Rule objects at freed rules' addresses ---

def rule_requests(ex, rules, stale):
    """Every rule twice (a cache is filled, then used), a failing view, a
    405, and the previous generation's paths, now 404s."""
    for r in rules:
        for _ in range(2):
            ex.send("GET", r["path"], 200, r["rule"], r["endpoint"])
        if r["rule"].endswith("<int:n>"):
            ex.send("GET", r["path"][:-2] + "/13", 500, r["rule"], r["endpoint"], "Unlucky")
    ex.send("POST", rules[0]["path"], 405, rules[0]["path"], None)
    for r in stale:
        ex.send("GET", r["path"], 404, r["path"], None)


def test_url_map_reload():
    """Rules freed and re-made at the same addresses, with other strings."""
    for label, python in VERSIONS:
        with App(python, "reload.py", None) as app:
            ex, reloads = Expect(app), []

            def drive():
                rules = control(app.url("/_rules"), "GET")["new"]
                rule_requests(ex, rules, ())
                for mode in ("natural", "placed", "natural", "placed"):
                    d = control(app.url("/_reload?mode=" + mode))
                    check(d["freed"] == d["old_count"] == len(rules), "%s: %d of %d old rules "
                          "freed", label, d["freed"], d["old_count"])
                    reloads.append(d)
                    rule_requests(ex, d["new"], rules)
                    rules = d["new"]
            records, _ = profiled(app, drive)
            compare(label, records, ex.want, app.pid)
            for d in reloads:
                check(d["mode"] == "natural" or d["reused"], "%s: placed reload %d reused no "
                      "address (%d tries)", label, d["gen"], d["tries"])
                for u in d["reused"]:
                    check((u["old_rule"], u["old_endpoint"]) != (u["new_rule"], u["new_endpoint"]),
                          "%s: a reused address kept its strings: %s", label, u)
            log("    %s: %d records exact; rule addresses reused per reload (of %d): %s" % (
                label, len(records), len(reloads[0]["new"]),
                ", ".join("%s %d" % (d["mode"], len(d["reused"])) for d in reloads)))


# --- 2. Flask's ContextVars re-created, addresses crossed ---

def ctx_requests(ex):
    for _ in range(2):
        ex.send("GET", "/item/5", 200, "/item/<int:n>", "item")
        ex.send("GET", "/hello", 200, "/hello", "hello")
        ex.send("POST", "/hello", 200, "/hello", "hello")
        ex.send("GET", "/fail/3", 500, "/fail/<int:n>", "fail", "Unlucky")
        ex.send("GET", "/nope", 404, "/nope", None)
        ex.send("PUT", "/hello", 405, "/hello", None)


def test_contextvars_recreated():
    """flask re-imported: new request_ctx at the old app_ctx and vice versa."""
    for label, python in VERSIONS:
        with App(python, "ctxswap.py", None) as app:
            ex, swaps = Expect(app), []

            def drive():
                ctx_requests(ex)
                for mode in ("req_at_app", "natural", "app_at_req", "req_at_app"):
                    swaps.append(control(app.url("/_swap?mode=" + mode)))
                    ctx_requests(ex)
            records, _ = profiled(app, drive)
            compare(label, records, ex.want, app.pid)
            crossed = []
            for d in swaps:
                old, new = d["old"], d["new"]
                check(d["names"] == ["flask.app_ctx", "flask.request_ctx"], "%s: %s", label, d)
                req_at_app = new["request_ctx"] == old["app_ctx"]
                app_at_req = new["app_ctx"] == old["request_ctx"]
                check(d["mode"] != "req_at_app" or req_at_app, "%s: swap %d: the new "
                      "request_ctx is not at the old app_ctx's address: %s", label, d["gen"], d)
                check(d["mode"] != "app_at_req" or app_at_req, "%s: swap %d: the new app_ctx "
                      "is not at the old request_ctx's address: %s", label, d["gen"], d)
                crossed.append("%s: %s" % (d["mode"], "both crossed" if req_at_app and app_at_req
                                           else "req@app" if req_at_app else
                                           "app@req" if app_at_req else "none"))
            log("    %s: %d records exact; %s" % (label, len(records), "; ".join(crossed)))


# --- 3. An environ built differently per request ---

def environ_requests(ex, rng, n):
    """n requests drawn from the shop script, a third with a traceparent;
    returns {path: [(trace id, parent span id)]} of the traced ones."""
    plain = [s for s in SCRIPT if s[1] != "/slow"]
    traced = []
    for i in range(n):
        method, path, body, route, endpoint, status, exc = rng.choice(plain)
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if i % 3 == 0:
            tid, span = rng.getrandbits(128) | 1, rng.getrandbits(64) | 1
            headers["traceparent"] = TRACEPARENT % (tid, span)
            traced.append((len(ex.want), "%032x" % tid, "%016x" % span))
        got = http(ex.app.url(path), method, body, headers)
        check(got == status, "%s %s answered %s, want %s", method, path, got, status)
        ex.want.append((method, path, route, endpoint, status, exc))
    return traced


def test_environ_layout_per_request():
    """Key order, size, deleted slots and key kinds change every request."""
    seed = random.randrange(1 << 30)
    log("    environ seed %d (replay: shuffled.py PORT %d)" % (seed, seed))
    for label, python in VERSIONS:
        with App(python, "shuffled.py", None, str(seed)) as app:
            ex, rng = Expect(app), random.Random(seed)
            traced = []
            records, _ = profiled(app, lambda: traced.extend(environ_requests(ex, rng, 50)))
            layouts = [line for line in app.output().splitlines() if ": keys=" in line]
            check(len(layouts) == 50, "%s: the server built %d environs", label, len(layouts))
            compare("%s (seed %d)" % (label, seed), records, ex.want, app.pid)
            for i, tid, span in traced:
                check(records[i]["trace_id"] == tid and records[i]["parent_span_id"] == span,
                      "%s: request %d's traceparent not adopted: %s", label, i, records[i])
            log("    %s: 50 records exact (%d traced; %d general-layout environs)" % (
                label, len(traced), sum("general=True" in x for x in layouts)))


# --- 4. A different hash seed per worker ---

def test_hash_seed_per_worker():
    """Ten exec'd workers under one launcher, PYTHONHASHSEED 0-3 and random."""
    workers = [(label, python, seed, free_port()) for label, python in VERSIONS
               for seed in ("0", "1", "2", "3", "random")]
    specs = ["%s,%s,%d,%s" % (python, seed, port, flask_path(python) or "")
             for _, python, seed, port in workers]
    with App(DEBIAN_PY, "hashseed.py", *specs, ports=[w[3] for w in workers]) as app:
        hashes = dict(((w[0], w[2]), control(app.url("/_hash", w[3]), "GET")) for w in workers)
        want = {}

        def drive():
            for label, python, seed, port in workers:
                ex = Expect(app)
                for method, path, body, route, endpoint, status, exc in SCRIPT:
                    if path != "/slow":
                        ex.send(method, path, status, route, endpoint, exc, port,
                                {"Content-Type": "application/json"}, body)
                tp = TRACEPARENT % (int(port) << 64 | 7, port)
                ex.send("GET", "/hello/seed", 200, "/hello/<name>", "hello", None, port,
                        {"traceparent": tp})
                want[hashes[(label, seed)]["pid"]] = (label, seed, ex.want)
        records, _ = profiled(app, drive)
    for pid, (label, seed, expected) in want.items():
        compare("%s PYTHONHASHSEED=%s" % (label, seed),
                [r for r in records if r["pid"] == pid], expected, pid)
    check(len(records) == sum(len(w[2]) for w in want.values()), "records from unknown pids")
    for label, _ in VERSIONS:
        per_seed = dict((s, hashes[(label, s)]["hash"]) for s in ("0", "1", "2", "3", "random"))
        check(len(set(per_seed.values())) == 5, "%s: hash(\"PATH_INFO\") per seed: %s", label,
              per_seed)
    log("    %d workers, %d records exact; hash(\"PATH_INFO\") differs per seed" % (
        len(workers), len(records)))


TESTS = [test_url_map_reload, test_contextvars_recreated, test_environ_layout_per_request,
         test_hash_seed_per_worker]
