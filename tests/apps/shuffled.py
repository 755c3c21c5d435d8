# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""A hand-rolled HTTP/1.0 server for the shop app whose WSGI environ differs
per request: keys inserted in a seeded random order, up to 40 extra keys
(some deleted again, leaving dummy slots in the dict's index), keys that
are fresh non-interned strs, and now and then a non-str key (which turns a
3.11+ dict from the unicode-keys into the general layout).  The seed is the
first argument after the port; every request's layout is printed to stdout
so a failure can be replayed.  `shuffled.py PORT SEED`."""
import io
import random
import socket
import sys

from shop import app


def fresh(s):
    """An equal str that is not the interned literal."""
    return "".join(list(s))


def build_environ(rng, method, target, headers, port):
    path, _, query = target.partition("?")
    items = [("REQUEST_METHOD", method), ("SCRIPT_NAME", ""), ("PATH_INFO", path),
             ("QUERY_STRING", query), ("SERVER_NAME", "127.0.0.1"), ("SERVER_PORT", str(port)),
             ("SERVER_PROTOCOL", "HTTP/1.0"), ("REMOTE_ADDR", "127.0.0.1"),
             ("wsgi.version", (1, 0)), ("wsgi.url_scheme", "http"), ("wsgi.multithread", False),
             ("wsgi.multiprocess", False), ("wsgi.run_once", False),
             ("wsgi.errors", sys.stderr)]
    for k, v in headers:
        k = k.upper().replace("-", "_")
        if k in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            items.append((k, v))
        else:
            items.append(("HTTP_" + k, v))
    extra = [("X_EXTRA_%d_%s" % (i, "x" * rng.randrange(20)), "v" * rng.randrange(50))
             for i in range(rng.randrange(41))]
    items += extra
    rng.shuffle(items)
    env = {}
    for k, v in items:
        env[fresh(k) if rng.random() < 0.5 else k] = v
    for k, _ in extra[:rng.randrange(len(extra) + 1) // 2]:
        del env[k]
    general = rng.random() < 0.25
    if general:
        env[("not", "a", "str")] = 1
    return env, "keys=%d extra=%d general=%s" % (len(env), len(extra), general)


def handle(conn, rng, port):
    f = conn.makefile("rb")
    request_line = f.readline().decode("latin-1").split(" ", 2)
    if len(request_line) != 3:
        return  # a port probe: connected and closed
    method, target, _ = request_line
    headers = []
    while True:
        line = f.readline().decode("latin-1").rstrip("\r\n")
        if not line:
            break
        k, _, v = line.partition(":")
        headers.append((k.strip(), v.strip()))
    length = int(dict((k.lower(), v) for k, v in headers).get("content-length", 0) or 0)
    body = f.read(length) if length else b""
    env, layout = build_environ(rng, method, target, headers, port)
    env["wsgi.input"] = io.BytesIO(body)
    print("%s %s: %s" % (method, target, layout), flush=True)
    out = {}

    def start_response(status, hdrs, exc_info=None):
        out["status"], out["headers"] = status, hdrs

    chunks = app(env, start_response)
    data = b"".join(chunks)
    if hasattr(chunks, "close"):
        chunks.close()
    head = "HTTP/1.0 %s\r\n" % out["status"] + "".join(
        "%s: %s\r\n" % (k, v) for k, v in out["headers"] if k.lower() != "content-length")
    conn.sendall(head.encode("latin-1") + b"Content-Length: %d\r\n\r\n" % len(data) + data)


def main():
    port, seed = int(sys.argv[1]), int(sys.argv[2])
    rng = random.Random(seed)
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(16)
    print("seed %d" % seed, flush=True)
    while True:
        conn, _ = srv.accept()
        with conn:
            handle(conn, rng, port)


if __name__ == "__main__":
    main()
