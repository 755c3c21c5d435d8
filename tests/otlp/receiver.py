# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""A strict OTLP/HTTP JSON traces receiver for the tests.

Every POST /v1/traces is parsed with the OFFICIAL protobuf definitions
(Debian's python3-opentelemetry-proto, ExportTraceServiceRequest) by
protobuf's json_format.Parse, which refuses unknown fields and values of the
wrong type.  OTLP's JSON encoding differs from the plain protobuf JSON
mapping in one respect (the OTLP specification, "JSON Protobuf Encoding"):
traceId, spanId and parentSpanId (also in links) are hex strings, not
base64; as the OpenTelemetry Collector does, they are checked (hex, 32 or 16
digits) and turned into bytes before the message is parsed.  On top of the
mapping, 64-bit integers must be decimal strings (json_format would also take
numbers), and the body must be UTF-8 JSON without duplicate keys.

It runs with the python3 of the "otlp" root file system (tools/rootfs otlp:
Debian sid), under chroot: `chroot ROOT python3 -c "$(cat receiver.py)" ARGS`.
Output: one JSON line per POST on stdout, {"t": seconds, "status": answered,
"error": why it was refused or null, "spans": [...]} where each span is
flattened (ids hex, attributes and resource as dicts).

    --port N             listen on 127.0.0.1:N
    --fail-for S         answer --fail-status to every POST of the first S
                         seconds after the first POST, then 200
    --fail-status CODE   (default 503)
    --retry-after VALUE  send "Retry-After: VALUE" with those answers
"""
import argparse
import base64
import binascii
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

ID_HEX = {"traceId": 32, "spanId": 16, "parentSpanId": 16}
INT64_STRINGS = ("startTimeUnixNano", "endTimeUnixNano")


class Refused(Exception):
    pass


def no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        raise Refused("duplicate key in %s" % keys)
    return dict(pairs)


def hex_to_base64(obj, key, allow_empty):
    if key not in obj:
        return
    v = obj[key]
    if not isinstance(v, str):
        raise Refused("%s is %r, not a string" % (key, v))
    if v == "" and allow_empty:
        return
    if len(v) != ID_HEX[key]:
        raise Refused("%s %r is not %d hex digits" % (key, v, ID_HEX[key]))
    try:
        raw = binascii.unhexlify(v)
    except (binascii.Error, ValueError) as e:
        raise Refused("%s %r is not hex: %s" % (key, v, e)) from e
    if raw == b"\0" * len(raw):
        raise Refused("%s is all zeros (invalid)" % key)
    obj[key] = base64.b64encode(raw).decode()


def check_int64(value, where):
    if "intValue" in value and not isinstance(value["intValue"], str):
        raise Refused("%s intValue %r is not a decimal string" % (where, value["intValue"]))


def prepare(doc):
    """OTLP's hex ids to the protobuf mapping's base64; 64-bit ints as strings."""
    if not isinstance(doc, dict):
        raise Refused("the body is not a JSON object")
    for rs in doc.get("resourceSpans") or []:
        for a in ((rs.get("resource") or {}).get("attributes") or []):
            check_int64(a.get("value") or {}, "resource " + str(a.get("key")))
        for ss in rs.get("scopeSpans") or []:
            for span in ss.get("spans") or []:
                hex_to_base64(span, "traceId", False)
                hex_to_base64(span, "spanId", False)
                hex_to_base64(span, "parentSpanId", True)
                for k in INT64_STRINGS:
                    if k in span and not isinstance(span[k], str):
                        raise Refused("%s %r is not a decimal string" % (k, span[k]))
                for a in span.get("attributes") or []:
                    check_int64(a.get("value") or {}, "span " + str(a.get("key")))
                for link in span.get("links") or []:
                    hex_to_base64(link, "traceId", False)
                    hex_to_base64(link, "spanId", False)


def value_of(v):
    kind = v.WhichOneof("value")
    return getattr(v, kind) if kind else None


def flatten(req):
    spans = []
    for rs in req.resource_spans:
        resource = dict((a.key, value_of(a.value)) for a in rs.resource.attributes)
        for ss in rs.scope_spans:
            for s in ss.spans:
                if len(s.trace_id) != 16 or len(s.span_id) != 8 or len(s.parent_span_id) not in (0, 8):
                    raise Refused("an id has the wrong length")
                spans.append({
                    "traceId": s.trace_id.hex(), "spanId": s.span_id.hex(),
                    "parentSpanId": s.parent_span_id.hex(), "name": s.name, "kind": s.kind,
                    "start": s.start_time_unix_nano, "end": s.end_time_unix_nano,
                    "attributes": dict((a.key, value_of(a.value)) for a in s.attributes),
                    "status": s.status.code, "scope": ss.scope.name, "resource": resource,
                })
    return spans


def parse(body):
    """The flattened spans of a body, or Refused."""
    try:
        doc = json.loads(body.decode("utf-8"), object_pairs_hook=no_duplicates)
    except (UnicodeDecodeError, ValueError) as e:
        raise Refused("not UTF-8 JSON: %s" % e) from e
    prepare(doc)
    try:
        req = json_format.Parse(json.dumps(doc), ExportTraceServiceRequest())
    except json_format.ParseError as e:
        raise Refused("ExportTraceServiceRequest: %s" % e) from e
    return flatten(req)


class State:
    def __init__(self, args):
        self.args = args
        self.first = None
        self.lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real receiver
    # Headers and body are two writes: without TCP_NODELAY the body waits for
    # the client's delayed ACK (40 ms a request), which a real receiver does not.
    disable_nagle_algorithm = True

    def log_message(self, *a):
        pass

    def answer(self, status, body=b"{}", extra=()):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):  # noqa: N802 - the http.server API
        st = self.server.state
        n = int(self.headers.get("Content-Length", "-1"))
        body = self.rfile.read(n) if n >= 0 else b""
        now = time.time()
        with st.lock:
            if st.first is None:
                st.first = now
            failing = now - st.first < st.args.fail_for
        spans, error, status = [], None, 200
        try:
            if self.path != "/v1/traces":
                raise Refused("POST to %s, not /v1/traces" % self.path)
            if self.headers.get("Content-Type") != "application/json":
                raise Refused("Content-Type %r" % self.headers.get("Content-Type"))
            if n < 0:
                raise Refused("no Content-Length")
            spans = parse(body)
        except Refused as e:
            error, status = str(e), 400
        if status == 200 and failing:
            status = st.args.fail_status
        extra = [("Retry-After", st.args.retry_after)] if status != 200 and st.args.retry_after \
            else []
        line = json.dumps({"t": now, "status": status, "error": error, "spans": spans,
                           "headers": {k.lower(): v for k, v in self.headers.items()
                                       if k.lower().startswith("x-")}})
        with st.lock:
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
        self.answer(status, json.dumps({"error": error}).encode() if error else b"{}", extra)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--fail-for", type=float, default=0)
    ap.add_argument("--fail-status", type=int, default=503)
    ap.add_argument("--retry-after")
    args = ap.parse_args()
    srv = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    srv.state = State(args)
    sys.stderr.write("receiver listening on 127.0.0.1:%d\n" % args.port)
    sys.stderr.flush()
    srv.serve_forever()


if __name__ == "__main__":
    main()
