# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""The profiler's test app: /mixed spends ~70 ms on the CPU in burn_cpu()
and ~30 ms blocked in wait_io() (time.sleep); /json only does JSON work in
encode_payload(); /deep/<n> recurses n frames deep in descend();
/background starts a thread that burns 300 ms in background_work() outside
any request."""
import json
import threading
import time

from flask import Flask

app = Flask(__name__)


def burn_cpu(seconds):
    end = time.perf_counter() + seconds
    n = 0
    while time.perf_counter() < end:
        n += 1
    return n


def wait_io(seconds):
    time.sleep(seconds)


def encode_payload():
    data = [{"id": i, "name": "item-%d" % i, "tags": ["a", "b"]} for i in range(300)]
    for _ in range(20):
        data = json.loads(json.dumps(data))
    return len(data)


def descend(n):
    if n <= 0:
        return burn_cpu(0.01)
    return descend(n - 1)


@app.route("/mixed")
def mixed():
    burn_cpu(0.07)
    wait_io(0.03)
    return "ok"


@app.route("/json")
def json_route():
    return str(encode_payload())


@app.route("/deep/<int:n>")
def deep(n):
    return str(descend(n))


def background_work():
    burn_cpu(0.3)


@app.route("/background")
def background():
    threading.Thread(target=background_work).start()
    return "started"


if __name__ == "__main__":
    import sys
    app.run(host="127.0.0.1", port=int(sys.argv[1]), threaded=True)
