# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""A launcher of werkzeug servers for the shop app, one exec'd interpreter
per worker, each with its own PYTHONHASHSEED, all children of this process
(so `profilis-bpf -p LAUNCHER` covers them).  Arguments:
PYTHON,SEED,PORT,PYTHONPATH ... (PYTHONPATH may be empty); each worker answers GET /_hash (outside Flask) with its pid, seed and
hash("PATH_INFO"), so a test sees the seeds took effect.  The launcher
itself never imports Flask."""
import os
import subprocess
import sys

WORKER = r'''
import json, os, sys
sys.path.insert(0, os.getcwd())
from shop import app
from werkzeug.serving import run_simple

def application(environ, start_response):
    if environ.get("PATH_INFO") == "/_hash":
        body = json.dumps({"pid": os.getpid(), "seed": os.environ.get("PYTHONHASHSEED"),
                           "hash": hash("PATH_INFO")}).encode()
        start_response("200 OK", [("Content-Length", str(len(body)))])
        return [body]
    return app(environ, start_response)

run_simple("127.0.0.1", int(sys.argv[1]), application)
'''


def main():
    procs = []
    for spec in sys.argv[1:]:
        python, seed, port, path = spec.split(",", 3)
        env = dict(os.environ, PYTHONHASHSEED=seed)
        env.pop("PYTHONPATH", None)
        if path:
            env["PYTHONPATH"] = path
        procs.append(subprocess.Popen([python, "-c", WORKER, port], env=env))
    for p in procs:
        p.wait()


if __name__ == "__main__":
    main()
