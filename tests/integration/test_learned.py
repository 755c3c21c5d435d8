# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""What the request probe learns once per process (bpf/requests.bpf.c,
bpf/pydict.bpf.h, bpf/pyindex.bpf.h) is what it uses: on every CPython, after a
worker's first request no WSGI environ or Request __dict__ is scanned (each is
looked up through its hash index with the hashes userspace computed from the
process's hash secret), every attribute comes from attr_cache but the first of
each (type, name), and the ContextVars and the wsgi_app frame are learned once
per worker.  Requests the fast paths cannot serve (an environ grown past the
scratch buffers, a Request with more attributes than its class's shared keys)
are scanned, and every record stays exact.  profilis-bpf -v prints the counters
at exit."""
import re
import time

from containers import Container
from harness import DEBIAN_PY, PYENV, Profiler, Server, check, http, log

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
# path -> (status, route, endpoint, exception_type)
ORDINARY = {
    "/": (200, "/", "index", None),
    "/users/7": (200, "/users/<int:uid>", "get_user", None),
    "/boom": (500, "/boom", "boom", "KeyError"),
    "/nowhere": (404, "/nowhere", None, None),
}
COUNTERS = re.compile(r"attribute lookups: (\d+) from the cache, (\d+) scanned; (\d+) dicts "
                      r"scanned \(not found by hash\); (\d+) facts learned")


def counters(prof, label):
    m = COUNTERS.search(prof.stderr())
    check(m, "%s: no cache counters in -v output:\n%s", label, prof.stderr()[-2000:])
    return [int(x) for x in m.groups()]


def send(srv, paths, rounds):
    sent = []
    for i in range(rounds):
        for p in paths:
            headers = {"traceparent": TRACEPARENT} if i % 2 else {}
            status = http(srv.url(p), headers=headers)
            check(status == (ORDINARY[p][0] if p in ORDINARY else 200), "GET %s: %s", p, status)
            sent.append((p, bool(headers)))
    return sent


def check_records(label, records, sent):
    check(len(records) == len(sent), "%s: %d records for %d requests", label, len(records),
          len(sent))
    check(all(r["method"] == "GET" for r in records), "%s: methods %s", label,
          sorted(set(str(r["method"]) for r in records)))
    for rec, (path, traced) in zip(sorted(records, key=lambda r: r["ts_ns"]), sent):
        status, route, endpoint, exc = ORDINARY.get(path, (200, path, path[1:].replace("-", "_"),
                                                           None))
        got = (rec["path"], rec["status"], rec["route"], rec["endpoint"], rec["exception_type"],
               rec["parent_span_id"] if traced else None)
        want = (path, status, route, endpoint, exc, "00f067aa0ba902b7" if traced else None)
        check(got == want, "%s: record %s, want %s", label, got, want)


def run(label, srv, workers):
    prof = Profiler(srv.pid, ["-v", "-F", "0"])
    try:
        sent = send(srv, list(ORDINARY), 10)
        time.sleep(0.3)
        check(prof.stop() == 0, "%s: profilis-bpf failed:\n%s", label, prof.stderr())
        hits, misses, scans, learned = counters(prof, label)
        check_records(label, prof.records(), sent)
        # Per worker: ctx.request, request.url_rule, rule.(rule, endpoint) and
        # response._status_code once each, and again when a type's shared
        # keys grow into a new keys object (3.13+ may, once): not per request.
        check(scans == 0, "%s: %d dicts scanned, want every one looked up by hash", label,
              scans)
        check(misses <= 6 * workers, "%s: %d attribute lookups scanned for %d workers", label,
              misses, workers)
        check(hits >= 2 * len(sent), "%s: only %d attribute lookups from the cache for %d "
              "requests", label, hits, len(sent))
        # request_ctx var, app_ctx var, wsgi_app frame; a few more if a worker
        # saw other ContextVars.
        check(3 <= learned <= 6 * workers, "%s: %d facts learned by %d workers", label,
              learned, workers)
        log("%s: %d requests exact; attribute lookups %d cached / %d scanned, 0 dicts scanned, "
            "%d facts learned" % (label, len(sent), hits, misses, learned))
    finally:
        prof.close()


def test_learned_once_every_version():
    with Server("gunicorn", app="learned", python=DEBIAN_PY) as srv:
        run("debian 3.11 gunicorn", srv, 2)
    for v, py in sorted(PYENV.items()):
        with Server("werkzeug", app="learned", python=py) as srv:
            run("pyenv %s werkzeug" % v, srv, 1)


def test_learned_once_in_containers():
    """The same on Debian sid's 3.14, 3.15 and 3.14d (a debug build: other
    struct sizes) under gunicorn in runc containers."""
    for python in ("python3.14", "python3.15", "python3.14d"):
        with Container(rootfs="sid", python=python, app="learned", workers=2) as c:
            run("sid %s gunicorn in a container" % python, c, 2)


def test_off_the_fast_paths_still_exact():
    """An environ of 600+ keys and a Request of 60 more attributes: scanned,
    counted, exact.  An environ of exactly 128 entries whose last one is
    REQUEST_METHOD: looked up by hash at the very end of the entries read,
    exact.  A view pushing eight more request contexts on its thread (past
    the slots a thread keeps, into the map): its own record stays exact."""
    for label, py in (("debian 3.11", DEBIAN_PY), ("pyenv 3.13", PYENV["3.13"]),
                      ("pyenv 3.9", PYENV["3.9"])):
        with Server("werkzeug", app="learned", python=py) as srv:
            prof = Profiler(srv.pid, ["-v", "-F", "0"])
            try:
                sent = send(srv, ["/users/7", "/big-environ", "/many-attrs", "/edge-environ",
                                  "/nested-contexts", "/"], 3)
                time.sleep(0.3)
                check(prof.stop() == 0, "%s: profilis-bpf failed:\n%s", label, prof.stderr())
                hits, misses, scans, learned = counters(prof, label)
                check_records(label, prof.records(), sent)
                check("in-flight table full 0," in prof.stderr(), "%s: summary:\n%s", label,
                      prof.stderr())
                check(scans >= 3, "%s: the 600-key environs were not scanned (%d scans)",
                      label, scans)
                log("%s: %d requests exact; %d dicts scanned" % (label, len(sent), scans))
            finally:
                prof.close()


TESTS = [test_learned_once_every_version, test_learned_once_in_containers,
         test_off_the_fast_paths_still_exact]
