# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Request fields at their limits and from a hostile app (tests/apps/fields.py):
an 8 KiB path (over real HTTP) is cut at 2 KiB and marked, a method at 32
bytes, an exception class name of 150 characters at 128; a UCS-4 PATH_INFO
is decoded as UCS-4 up to the cap; "%00" stays in the path as \\u0000; a
bytes or int PATH_INFO, a bytes REQUEST_METHOD or traceparent, a rule whose
template and endpoint are not strs, and a _status_code of None or "200" give
null, never their payload or 0.  Streamed bodies (a generator view, with and
without stream_with_context) are not part of dur_ns: the record ends when
Flask.wsgi_app returns, before the server iterates the body.  On every
pyenv CPython (werkzeug) and Debian's 3.11 under gunicorn."""
import http.client
import time

from harness import DEBIAN_PY, PYENV, Profiler, Server, check, log

PATH_MAX, METHOD_MAX, EXC_MAX = 2048, 32, 128
LONG_PATH = "/long/" + "a" * (8192 - 6)
UNMATCHED_PATH = "/nomatch/" + "b" * (8192 - 9)
LONG_NAME = "Long" + "N" * 146
UCS4_PATH = "/ucs4/" + "\U0001F600" * 1000
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
BODY_NS = 50e6  # the streamed views sleep 5 x 10 ms while yielding
TEXT = ("method", "path", "route", "endpoint", "exception_type")

# path sent -> (HTTP status, fields the record must have exactly).
CASES = {
    LONG_PATH: (200, dict(path=LONG_PATH[:PATH_MAX], path_truncated=True,
                          route="/long/<path:rest>", endpoint="long_path", status=200)),
    UNMATCHED_PATH: (404, dict(path=UNMATCHED_PATH[:PATH_MAX], path_truncated=True,
                               route=UNMATCHED_PATH[:PATH_MAX], route_truncated=True,
                               endpoint=None, status=404)),
    "/echo/a%00b/c": (200, dict(path="/echo/a\x00b/c", route="/echo/<path:rest>", status=200)),
    "/hostile/path-bytes": (200, dict(path=None, route="/hostile/<what>", endpoint="hostile",
                                      status=200)),
    "/hostile/path-int": (200, dict(path=None, route="/hostile/<what>", status=200)),
    "/hostile/path-ucs4": (200, dict(path=UCS4_PATH[:PATH_MAX // 4], path_truncated=True,
                                     route="/hostile/<what>")),
    "/hostile/path-ucs2": (200, dict(path="/\u65e5\u672c/\u8def", route="/hostile/<what>")),
    "/hostile/method-long": (200, dict(method="M" * METHOD_MAX, method_truncated=True,
                                       path="/hostile/method-long")),
    "/hostile/method-bytes": (200, dict(method=None, path="/hostile/method-bytes")),
    "/hostile/traceparent-bytes": (200, dict(parent_span_id=None,
                                             path="/hostile/traceparent-bytes")),
    "/hostile/rule": (200, dict(path="/hostile/rule", route=None, endpoint=None, status=200)),
    # werkzeug then fails to send that response (None < 100): the server
    # answers 500 itself, after wsgi_app popped the context with no error.
    "/status/none": (500, dict(status=None, route="/status/<what>", error=False)),
    "/status/str": (500, dict(status=None, route="/status/<what>", error=False)),
    "/long-exception": (500, dict(exception_type=LONG_NAME[:EXC_MAX],
                                  exception_type_truncated=True, error=True, status=500)),
    "/stream": (200, dict(route="/stream", status=200)),
    "/stream-ctx": (200, dict(route="/stream-ctx", status=200)),
}


def get(port, path):
    """GET on a fresh connection: (status, seconds until the body ended)."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        t0 = time.monotonic()
        c.request("GET", path)
        r = c.getresponse()
        r.read()
        return r.status, time.monotonic() - t0
    finally:
        c.close()


def show(v):
    return "%r (%d chars)" % (v[:60], len(v)) if isinstance(v, str) and len(v) > 60 else repr(v)


def record_errors(rec, path, want):
    """What differs from the expected fields, in words."""
    errs = ["%s is %s, want %s" % (k, show(rec.get(k, "absent")), show(v))
            for k, v in want.items() if rec.get(k, "absent") != v]
    errs += ["%s marked truncated" % f for f in TEXT
             if f + "_truncated" in rec and f + "_truncated" not in want]
    if path.startswith("/hostile/traceparent") and rec["trace_id"] == TRACEPARENT[3:35]:
        errs.append("a bytes traceparent was adopted")
    return ["GET %s: %s" % (path[:30], e) for e in errs]


def run_cases(srv, label):
    prof = Profiler(srv.pid)
    try:
        elapsed = {}
        for path, (status, _) in CASES.items():
            got, secs = get(srv.port, path)
            check(got == status, "%s: GET %s answered %s, want %s", label, path[:40], got, status)
            elapsed[path] = secs
        time.sleep(0.3)
        check(prof.stop() == 0, "%s: profilis-bpf failed:\n%s", label, prof.stderr())
        records = prof.records()
        check(len(records) == len(CASES), "%s: %d records for %d requests: %s", label,
              len(records), len(CASES), [r["path"] and r["path"][:30] for r in records])
        check("%d requests recorded, 0 lost" % len(CASES) in prof.stderr(),
              "%s: summary:\n%s", label, prof.stderr())
        # Flask 2.2's stream_with_context pushes the context a second time in
        # the view: that is neither a request begun before attach nor a new start.
        check("; 0 began before attach" in prof.stderr(), "%s: summary:\n%s", label,
              prof.stderr())
        errs = []
        for rec, (path, (_, want)) in zip(records, CASES.items()):
            errs += record_errors(rec, path, want)
        check(not errs, "%s:\n  %s", label, "\n  ".join(errs))
        for path in ("/stream", "/stream-ctx"):
            rec = records[list(CASES).index(path)]
            check(elapsed[path] * 1e9 >= BODY_NS, "%s: %s took only %.1f ms", label, path,
                  elapsed[path] * 1e3)
            # The body is streamed after wsgi_app returned: not in dur_ns.
            check(rec["dur_ns"] < BODY_NS / 2, "%s: %s dur_ns %d includes the body", label,
                  path, rec["dur_ns"])
        log("    %s: %d records exact; /stream %.1f ms on the wire, dur_ns %.2f ms" % (
            label, len(records), elapsed["/stream"] * 1e3,
            records[list(CASES).index("/stream")]["dur_ns"] / 1e6))
    finally:
        prof.close()


def test_fields_every_version():
    """werkzeug (threaded) on every pyenv CPython; its HTTP server takes 8 KiB lines."""
    for v in sorted(PYENV, key=lambda v: int(v.split(".")[1])):
        with Server("werkzeug", app="fields", python=PYENV[v]) as srv:
            run_cases(srv, "pyenv " + v)


def test_fields_debian_gunicorn():
    """Debian python3.11 + Flask 2.2.2 under gunicorn (no request-line limit)."""
    with Server("gunicorn", app="fields", python=DEBIAN_PY, workers=1,
                extra=("--limit-request-line", "0")) as srv:
        run_cases(srv, "debian 3.11 gunicorn")


TESTS = [test_fields_every_version, test_fields_debian_gunicorn]
