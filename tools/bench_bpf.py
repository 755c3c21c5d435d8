#!/usr/bin/python3
# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""BPF run time per request, per program and per CPython version: a Flask app
under gunicorn (2 sync workers) on each interpreter, profilis-bpf attached with
stack sampling off, kernel.bpf_stats_enabled on, N keep-alive requests per
route; run_time_ns / requests from the programs profilis-bpf holds open."""
import http.client
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
import harness  # noqa: E402
import bench_node  # noqa: E402


def hammer(port, path, n, conns=4):
    import threading
    each = n // conns

    def one():
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        for _ in range(each):
            c.request("GET", path)
            r = c.getresponse()
            r.read()
            if r.will_close:
                c.close()
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.close()
    ts = [threading.Thread(target=one) for _ in range(conns)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return each * conns


def measure(python, route, n):
    with harness.Server("gunicorn", app="shop", python=python) as srv:
        prof = harness.Profiler(srv.pid, ["-F", "0", "-o", "/dev/null", "-q"], ready=False)
        try:
            time.sleep(1.5)
            hammer(srv.port, route, 200)
            with bench_node.BpfStats():
                p0 = bench_node.prog_stats(prof.proc.pid)
                sent = hammer(srv.port, route, n)
                p1 = bench_node.prog_stats(prof.proc.pid)
            names = bench_node.prog_names(p1)
            out = {}
            for pid, (t1, c1) in p1.items():
                t0, c0 = p0.get(pid, (0, 0))
                if c1 - c0:
                    out[names[pid]] = ((t1 - t0) / sent / 1000.0, (c1 - c0) / sent)
            return out
        finally:
            prof.stop()
            prof.close()


def main():
    n = int(os.environ.get("N", "3000"))
    vers = sys.argv[1:] or ["debian3.11", "3.13"]
    for v in vers:
        py = harness.DEBIAN_PY if v == "debian3.11" else harness.PYENV[v]
        for route in ("/", "/users/7"):
            r = measure(py, route, n)
            tot = sum(us for us, _ in r.values())
            parts = ", ".join(f"{k} {us:.2f} µs x{c:.1f}" for k, (us, c) in sorted(r.items()))
            print(f"{v:11} {route:9} total {tot:6.2f} µs/req   {parts}", flush=True)


if __name__ == "__main__":
    main()
