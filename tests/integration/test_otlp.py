# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""OTLP/HTTP traces (issue 14): a gunicorn Flask app traced with
--otlp-endpoint pointing at tests/otlp/receiver.py, which parses every POST
strictly with the official OpenTelemetry protobuf definitions (Debian sid's
python3-opentelemetry-proto, run from the "otlp" root file system).

- Every request is one span, equal to its JSONL record: ids (a traceparent's
  trace id and parent too), name, kind, times, attributes and status by the
  HTTP semantic conventions, resource (service.name, process.pid, host.name,
  OTEL_RESOURCE_ATTRIBUTES), and OTEL_EXPORTER_OTLP_HEADERS sent.
- A receiver answering 503 for its first 5 s loses nothing within the queue:
  every span arrives exactly once, and the summary's retries equal the 503s.
- A receiver that accepts connections and never answers: no hang, exit within
  2 s of SIGINT, and every span counted lost by reason (queue full, unsent at
  exit), adding up to the records."""
import json
import os
import re
import socket
import subprocess
import tempfile
import threading
import time

from containers import ensure_rootfs
from harness import ROOT, Profiler, Server, check, free_port, log, wait_port
from test_requests import TRACE_IDS, check_records, drive

RECEIVER = os.path.join(ROOT, "tests", "otlp", "receiver.py")
SUMMARY = re.compile(r"OTLP: (\d+) spans sent to (\S+) in (\d+) requests \((\d+) retries\); "
                     r"(\d+) lost \(queue full (\d+), refused (\d+), gave up after retries "
                     r"(\d+), unsent at exit (\d+), out of memory (\d+)\)")


class Receiver:
    """The strict receiver, with the otlp root's python3 under chroot (the
    host's network: it listens on loopback)."""

    def __init__(self, *args):
        root = ensure_rootfs("otlp")
        with open(RECEIVER) as f:
            src = f.read()
        self.port = free_port()
        self.out = tempfile.NamedTemporaryFile(prefix="otlp-recv-", suffix=".jsonl", delete=False)
        self.err = tempfile.NamedTemporaryFile(prefix="otlp-recv-", suffix=".err", delete=False)
        self.proc = subprocess.Popen(
            ["chroot", root, "/usr/bin/env", "-i", "PATH=/usr/bin:/bin", "python3", "-c", src,
             "--port", str(self.port)] + list(args), stdout=self.out, stderr=self.err)
        wait_port(self.port, self.proc)

    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def posts(self):
        with open(self.out.name) as f:
            return [json.loads(ln) for ln in f if ln.endswith("\n")]

    def accepted(self):
        return [s for p in self.posts() if p["status"] == 200 for s in p["spans"]]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.proc.kill()
        self.proc.wait()
        for f in (self.out, self.err):
            f.close()
            os.unlink(f.name)


class Silent:
    """A receiver that accepts every connection and never answers."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.done = False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        self.sock.settimeout(0.1)
        while not self.done:
            try:
                self.conns.append(self.sock.accept()[0])
            except OSError:
                pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.done = True
        self.thread.join()
        for c in self.conns + [self.sock]:
            c.close()


def summary(prof):
    m = SUMMARY.search(prof.stderr())
    check(m, "no OTLP summary line in:\n%s", prof.stderr())
    keys = ("sent", "url", "requests", "retries", "lost", "queue_full", "refused", "gave_up",
            "at_exit", "oom")
    return dict((k, v if k == "url" else int(v)) for k, v in zip(keys, m.groups()))


def expected_span(r):
    """The span the semantic conventions make of JSONL record r."""
    matched = r["endpoint"] is not None  # no rule: no endpoint (404, 405)
    attrs = {"http.request.method": r["method"], "url.path": r["path"],
             "http.response.status_code": r["status"], "thread.id": r["tid"]}
    if matched:
        attrs["http.route"] = r["route"]
    if r["exception_type"]:
        attrs["error.type"] = r["exception_type"]
    elif r["status"] >= 500:
        attrs["error.type"] = str(r["status"])
    return {"traceId": r["trace_id"], "spanId": r["span_id"],
            "parentSpanId": r["parent_span_id"] or "",
            "name": r["method"] + (" " + r["route"] if matched else ""), "kind": 2,
            "start": r["time_unix_ns"] - r["dur_ns"], "end": r["time_unix_ns"],
            "attributes": attrs, "status": 2 if r["status"] >= 500 else 0,
            "scope": "profilis-bpf"}


def check_spans(recs, spans, extra_resource):
    ids = [s["spanId"] for s in spans]
    check(len(ids) == len(set(ids)), "a span arrived twice: %d spans, %d ids", len(ids),
          len(set(ids)))
    by_id = dict((s["spanId"], s) for s in spans)
    check(set(by_id) == set(r["span_id"] for r in recs),
          "%d spans for %d records; missing %s, extra %s", len(spans), len(recs),
          sorted(set(r["span_id"] for r in recs) - set(by_id))[:5],
          sorted(set(by_id) - set(r["span_id"] for r in recs))[:5])
    for r in recs:
        s = dict(by_id[r["span_id"]])
        resource = s.pop("resource")
        want = expected_span(r)
        check(s == want, "span differs from its record:\n span %s\n want %s", s, want)
        want_res = dict({"service.name": r["service_name"], "process.pid": r["pid"],
                         "host.name": r["host_name"]}, **extra_resource)
        check(resource == want_res, "resource %s, want %s", resource, want_res)


def test_spans_equal_requests():
    env = {"OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=ci%20run,service.name=x",
           "OTEL_EXPORTER_OTLP_HEADERS": "X-Scope-OrgID=team-a"}
    saved = dict((k, os.environ.get(k)) for k in env)
    with Server("gunicorn") as srv, Receiver() as rcv:
        os.environ.update(env)
        try:
            # Small batches: spans of both workers meet in some POSTs.
            prof = Profiler(srv.pid, ["--otlp-endpoint", rcv.url(), "--batch-max", "16",
                                      "-F", "0"])
        finally:
            for k, v in saved.items():
                os.environ.pop(k) if v is None else os.environ.update({k: v})
        try:
            expected = drive(srv, rounds=4)
            check(prof.stop() == 0, "profilis-bpf failed:\n%s", prof.stderr())
            recs = prof.records()
            check_records(recs, expected, set([srv.pid] + srv.children()))
            posts = rcv.posts()
            bad = [p["error"] for p in posts if p["error"]]
            check(not bad, "the receiver refused %d POSTs: %s", len(bad), bad[:3])
            check(all(p["headers"].get("x-scope-orgid") == "team-a" for p in posts),
                  "OTEL_EXPORTER_OTLP_HEADERS not sent: %s", [p["headers"] for p in posts][:3])
            check_spans(recs, rcv.accepted(), {"deployment.environment.name": "ci run"})
            traced = [s for s in rcv.accepted() if s["parentSpanId"]]
            check(sorted(s["traceId"] for s in traced) == sorted(TRACE_IDS),
                  "traceparent requests: %s", traced)
            check(len(posts) >= len(recs) // 16 and
                  max(len(p["spans"]) for p in posts) <= 16, "batches of %s spans",
                  [len(p["spans"]) for p in posts])
            got = summary(prof)
            check(got["sent"] == len(recs) and got["lost"] == 0 and got["retries"] == 0 and
                  got["requests"] == len(posts), "summary %s for %d records in %d POSTs", got,
                  len(recs), len(posts))
            log("    %d spans = %d records in %d POSTs, each parsed as an "
                "ExportTraceServiceRequest; %d with a traceparent parent"
                % (len(rcv.accepted()), len(recs), len(posts), len(traced)))
        finally:
            prof.close()


def wait_accepted(rcv, n, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline and len(rcv.accepted()) < n:
        time.sleep(0.2)


def test_receiver_503_for_5s_loses_nothing():
    with Server("gunicorn") as srv, Receiver("--fail-for", "5") as rcv:
        prof = Profiler(srv.pid, ["--otlp-endpoint", rcv.url(), "-F", "0"])
        try:
            t0 = time.time()
            expected = drive(srv, rounds=10)
            n = sum(expected.values())
            # Backoff doubles from 0.5 s: the 5 s outage ends within ~16 s.
            wait_accepted(rcv, n, 40)
            check(prof.stop() == 0, "profilis-bpf failed:\n%s", prof.stderr())
            recs = prof.records()
            check(len(recs) == n, "%d records for %d requests", len(recs), n)
            posts = rcv.posts()
            refused = [p for p in posts if p["status"] == 503]
            check(refused and posts[0]["status"] == 503, "the receiver never failed: %s",
                  [p["status"] for p in posts])
            check(not [p for p in posts if p["error"]], "the receiver refused a body")
            check_spans(recs, rcv.accepted(), {})
            got = summary(prof)
            check(got["lost"] == 0 and got["sent"] == n, "summary %s for %d spans", got, n)
            check(got["retries"] == len(refused),
                  "%d retries counted, the receiver answered 503 %d times", got["retries"],
                  len(refused))
            check("OTLP: POST to %s/v1/traces failed: HTTP 503" % rcv.url() in prof.stderr(),
                  "no warning while retrying:\n%s", prof.stderr())
            log("    %d spans, none lost: %d POSTs answered 503 in the first 5 s, %d retries "
                "counted; all delivered %.1f s after the first request"
                % (n, len(refused), got["retries"],
                   max(p["t"] for p in posts if p["status"] == 200) - t0))
        finally:
            prof.close()


def test_silent_receiver_no_hang():
    with Server("gunicorn") as srv, Silent() as rcv:
        # --queue-size also bounds the records' own queue: --no-drop-oldest
        # keeps every record (a burst waits in the ring buffer) while the
        # span queue of 64 overflows, as the test wants.
        prof = Profiler(srv.pid, ["--otlp-endpoint", "http://127.0.0.1:%d" % rcv.port,
                                  "--queue-size", "64", "--batch-max", "16", "-F", "0",
                                  "--no-drop-oldest"])
        try:
            expected = drive(srv, rounds=10)
            n = sum(expected.values())
            time.sleep(0.5)
            t0 = time.monotonic()
            rc = prof.stop(timeout=10)
            took = time.monotonic() - t0
            check(rc == 0, "profilis-bpf exited %s:\n%s", rc, prof.stderr())
            check(took < 2.0, "profilis-bpf took %.2f s to exit after SIGINT", took)
            recs = prof.records()
            check(len(recs) == n, "%d records for %d requests", len(recs), n)
            got = summary(prof)
            check(got["sent"] == 0 and got["lost"] == n and got["queue_full"] > 0 and
                  got["at_exit"] > 0 and got["queue_full"] + got["at_exit"] == n,
                  "summary %s for %d spans", got, n)
            check(re.search(r"OTLP: dropped \d+ spans \(\d+ in all\): the queue of 64 spans "
                            r"was full", prof.stderr()),
                  "no queue-full warning:\n%s", prof.stderr())
            log("    exit %.2f s after SIGINT; %d spans lost: %d queue full, %d unsent at exit"
                % (took, n, got["queue_full"], got["at_exit"]))
        finally:
            prof.close()


TESTS = [test_spans_equal_requests, test_receiver_503_for_5s_loses_nothing,
         test_silent_receiver_no_hang]
