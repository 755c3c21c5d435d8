# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""An app for tests/integration/test_learned.py: ordinary routes, and two that
push the request probe off its fast paths: /big-environ grows the WSGI
environ past what BPF reads in one go (its index then has more than 512
bytes), /many-attrs gives the Request more attributes than its class's shared
keys hold.  Works with Flask 2.2 and 3.x."""
import sys

from flask import Flask, request

app = Flask(__name__)


@app.route("/")
def index():
    return "hello"


@app.route("/users/<int:uid>")
def get_user(uid):
    return {"uid": uid}


@app.route("/boom")
def boom():
    raise KeyError("boom")


@app.route("/big-environ")
def big_environ():
    for i in range(600):
        request.environ["X_FILLER_%d" % i] = "x"
    return "grown"


@app.route("/edge-environ")
def edge_environ():
    """The environ rebuilt with exactly 128 entries, REQUEST_METHOD the last:
    its entry is the last word pair of what BPF reads in one go."""
    env = request.environ
    items = [(k, v) for k, v in env.items() if k != "REQUEST_METHOD"]
    method = env["REQUEST_METHOD"]
    env.clear()
    for k, v in items:
        env[k] = v
    for i in range(127 - len(items)):
        env["X_EDGE_%d" % i] = "x"
    env["REQUEST_METHOD"] = method
    return "edge %d" % len(env)


@app.route("/nested-contexts")
def nested_contexts():
    """Eight more request contexts pushed on this thread while it serves this
    request (more than a thread's in-flight slots hold), then popped."""
    ctxs = [app.test_request_context("/inner/%d" % i) for i in range(8)]
    for c in ctxs:
        c.push()
    for c in reversed(ctxs):
        c.pop()
    return "nested"


@app.route("/many-attrs")
def many_attrs():
    for i in range(60):
        setattr(request, "extra_%d" % i, i)
    return "many"


if __name__ == "__main__":
    app.run(host="127.0.0.1", port=int(sys.argv[1]), threaded=True)
