#!/usr/bin/python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""HTTP load for the demo shop (tools/demo_app.py), standard library only so it
runs on any Python 3 without wrk or pip.

  load.py wait URL [--timeout S]         poll URL/health until it answers 200
  load.py run URL [--seconds N] [--threads T]

`run` drives a fixed, weighted mix of requests (every route, 404s, a JSON POST,
the checkout that fails every 10th call, a W3C traceparent on one route) from T
closed-loop threads for N seconds, then prints one JSON object on stdout with
what the client saw, so the caller can compare it with what profilis-bpf
recorded.  No randomness: each thread walks the same list from its own offset."""
import argparse
import collections
import http.client
import json
import sys
import threading
import time
import urllib.parse
import urllib.request

# The W3C spec's example context: the demo can show it coming back as trace_id.
TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

# (method, path, JSON body or None, extra headers); repetition is the weight.
MIX = [
    ("GET", "/", None, {}),
    ("GET", "/health", None, {}),
    ("GET", "/products", None, {}),
    ("GET", "/products/1", None, {}),
    ("GET", "/products/2", None, {}),
    ("GET", "/products/4", None, {}),
    ("GET", "/products/99", None, {}),  # abort(404)
    ("GET", "/categories/brewers", None, {}),
    ("GET", "/categories/tea", None, {}),  # abort(404) in a str-converter route
    ("GET", "/search?q=moka", None, {}),  # ~20 ms "db query"
    ("GET", "/api/v1/users/alice/cart", None, {"traceparent": TRACEPARENT}),
    ("GET", "/api/v1/users/bob/cart", None, {}),
    ("POST", "/api/v1/orders", {"product_id": 2, "qty": 1}, {}),
    ("POST", "/api/v1/orders", {"product_id": 42}, {}),  # 404 from a POST
    ("POST", "/api/v1/checkout", {"cart": "alice"}, {}),  # 500 every 10th call
    ("POST", "/api/v1/checkout", {"cart": "bob"}, {}),
    ("GET", "/products/3", None, {}),
    ("GET", "/health", None, {}),
]


def request_once(host, port, method, path, body, headers):
    """Returns the HTTP status, or None when the exchange itself failed."""
    data = None
    headers = dict(headers)
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        resp.read()
        return resp.status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def worker(url, offset, deadline, counts):
    host, port = url.hostname, url.port or 80
    i = offset
    while time.monotonic() < deadline:
        method, path, body, headers = MIX[i % len(MIX)]
        status = request_once(host, port, method, path, body, headers)
        counts["error" if status is None else str(status)] += 1
        i += 1


def run(args):
    url = urllib.parse.urlsplit(args.url)
    deadline = time.monotonic() + args.seconds
    per_thread = [collections.Counter() for _ in range(args.threads)]
    # Spread the offsets so the threads do not all hit /search together.
    step = max(1, len(MIX) // args.threads)
    threads = [
        threading.Thread(target=worker, args=(url, n * step, deadline, per_thread[n]))
        for n in range(args.threads)
    ]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - start
    total = sum(per_thread, collections.Counter())
    answered = sum(v for k, v in total.items() if k != "error")
    json.dump({"requests": answered, "failed": total["error"], "seconds": round(elapsed, 2),
               "status": {k: v for k, v in sorted(total.items()) if k != "error"}},
              sys.stdout)
    print()
    return 0 if answered else 1


def wait(args):
    deadline = time.monotonic() + args.timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(args.url.rstrip("/") + "/health", timeout=2) as r:
                if r.status == 200:
                    return 0
        except OSError:
            pass
        time.sleep(0.2)
    print(f"load.py: {args.url}/health did not answer within {args.timeout} s", file=sys.stderr)
    return 1


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    w = sub.add_parser("wait", help="wait until URL/health answers 200")
    w.add_argument("url")
    w.add_argument("--timeout", type=float, default=20)
    r = sub.add_parser("run", help="drive the mixed load")
    r.add_argument("url")
    r.add_argument("--seconds", type=float, default=10)
    r.add_argument("--threads", type=int, default=4)
    args = p.parse_args()
    if args.cmd == "run" and (args.seconds <= 0 or args.threads < 1):
        p.error("--seconds must be > 0 and --threads >= 1")
    return wait(args) if args.cmd == "wait" else run(args)


if __name__ == "__main__":
    sys.exit(main())
