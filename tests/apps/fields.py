# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""A Flask app for the field tests: long paths and names, and a hostile app
that puts what is not a str where the WSGI environ or a rule should have one
(views rewrite request.environ, which is wsgi_app's own environ dict, as a
middleware or an odd server would), a response whose _status_code is not an
int, and streamed responses.  Works with Flask 2.2 and 3.x."""
import time

from flask import Flask, Response, request, stream_with_context

app = Flask(__name__)

# type(e).__name__ of 150 characters, as a class statement would make it.
LONG_NAME = "Long" + "N" * 146
LongError = type(LONG_NAME, (Exception,), {})
UCS4_PATH = "/ucs4/" + "\U0001F600" * 1000
UCS2_PATH = "/\u65e5\u672c/\u8def"
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
LONG_METHOD = "M" * 40
CHUNKS, CHUNK_SLEEP = 5, 0.01


# bytes whose first byte, read as a str's state word, says "compact ASCII":
# read as a str, such an object shows its payload as text.
BYTES_PATH = b"d" * 16 + b"/hostile/path-bytes"


class Endpoint:
    """Not a str, but enough of one for Flask's `"." in endpoint`."""

    def __contains__(self, item):
        return False


class FakeRule:
    """What a hostile app could put in request.url_rule: not a str inside."""

    def __init__(self):
        self.rule = b"d" * 16 + b"/fake/<rule>"
        self.endpoint = Endpoint()


@app.route("/long/<path:rest>")
def long_path(rest):
    return str(len(rest))


@app.route("/echo/<path:rest>")
def echo(rest):
    return str(len(rest))


ENVIRON = {
    "path-bytes": ("PATH_INFO", BYTES_PATH),
    "path-int": ("PATH_INFO", 7),
    "path-ucs4": ("PATH_INFO", UCS4_PATH),
    "path-ucs2": ("PATH_INFO", UCS2_PATH),
    "method-long": ("REQUEST_METHOD", LONG_METHOD),
    "method-bytes": ("REQUEST_METHOD", b"delete"),
    "traceparent-bytes": ("HTTP_TRACEPARENT", TRACEPARENT.encode()),
}


@app.route("/hostile/<what>")
def hostile(what):
    if what == "rule":
        request.url_rule = FakeRule()
    else:
        key, value = ENVIRON[what]
        request.environ[key] = value
    return what


@app.route("/status/<what>")
def status(what):
    return what


@app.after_request
def spoil_status(response):
    if request.path == "/status/none":
        response._status_code = None
    elif request.path == "/status/str":
        response._status_code = "200"
    return response


@app.route("/long-exception")
def long_exception():
    raise LongError("a class with a 150-character name")


def chunks():
    for i in range(CHUNKS):
        time.sleep(CHUNK_SLEEP)
        yield "chunk %d\n" % i


@app.route("/stream")
def stream():
    return Response(chunks())


@app.route("/stream-ctx")
def stream_ctx():
    return Response(stream_with_context(chunks()))


if __name__ == "__main__":
    import sys
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
    app.run(host="127.0.0.1", port=port, threaded=True)
