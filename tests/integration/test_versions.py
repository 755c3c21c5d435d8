# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Every supported CPython, as the pyenv builds (shared libpython, PIE, no
USDT, like the official Docker images): the request acceptance (≥ 200
requests over ≥ 8 routes, exact fields) and the stack sampler's profile of
/mixed on 3.9, 3.10, 3.11, 3.12 and 3.13, with Flask imported through a
PYTHONPATH directory of symlinks (Flask 3.1.3; Debian's 2.2.2 on 3.9); --list
shows each with its version; 3.8 is refused with a message that names the
supported versions.  Debian's gunicorn (pure Python) runs on each as well."""
import json
import os
import subprocess
import tempfile
import time

from harness import BINARY, PYENV, PYENV_38, Profiler, Server, check, http, log, python_env
from test_profile import check_profile, cleanup, run_profiled, share
from test_requests import acceptance

VERSIONS = sorted(PYENV, key=lambda v: int(v.split(".")[1]))


def test_request_acceptance_every_version():
    for v in VERSIONS:
        log("    CPython %s (werkzeug, threaded)" % v)
        with Server("werkzeug", python=PYENV[v]) as srv:
            acceptance(srv, lambda: {srv.pid})


def test_gunicorn_workers_every_version():
    """Forked workers (Debian's gunicorn 20.1, sync, 2 workers, attached
    through the master): the GIL-holder address resolved in the master holds
    in every worker."""
    for v in VERSIONS:
        log("    CPython %s (gunicorn, 2 sync workers)" % v)
        with Server("gunicorn", python=PYENV[v], workers=2) as srv:
            pids = {srv.pid} | set(srv.children())
            check(len(pids) == 3, "%s: master and 2 workers expected: %s", v, pids)
            acceptance(srv, lambda: pids)


def test_profile_every_version():
    for v in VERSIONS:
        if v == "3.11":
            continue  # test_profile covers 3.11, Debian's and pyenv's
        with Server("werkzeug", app="profiled", python=PYENV[v]) as srv:
            d, paths, err = run_profiled(srv, ["--max-depth", "40"])
        try:
            check_profile(paths, err, "pyenv %s" % v)
        finally:
            cleanup(d)


def test_thread_outside_requests_every_version():
    """A thread that never served a request is still recognised when it holds
    the GIL (3.11+ by native_thread_id, 3.9/3.10 by pthread_self): its work
    is Python code outside a request, not [no Python]."""
    for v in VERSIONS:
        with Server("werkzeug", app="profiled", python=PYENV[v]) as srv:
            check(http(srv.url("/json")) == 200, "warm-up request failed")
            path = os.path.join(tempfile.mkdtemp(prefix="pbpf-bg-"), "p.json")
            prof = Profiler(srv.pid, ["-F", "499", "--speedscope", path, "-o", os.devnull])
            try:
                check(http(srv.url("/background")) == 200, "/background failed")
                time.sleep(0.6)
                check(prof.stop() == 0, "exit:\n%s", prof.stderr())
            finally:
                prof.close()
        with open(path) as f:
            doc = json.load(f)
        os.unlink(path)
        os.rmdir(os.path.dirname(path))
        outside = [p for p in doc["profiles"] if p["name"] == "(outside a request) (on-CPU)"]
        check(outside, "%s: no outside-a-request profile", v)
        got, samples = share(doc, outside[0], "background_work")
        # 300 ms at 499 Hz is ~150 samples; the thread holds the GIL throughout.
        check(samples >= 75 and got >= 0.8, "%s: background_work has %.0f%% of %d samples",
              v, 100 * got, samples)
        log("    %s: background_work %.0f%% of %d samples outside requests" %
            (v, 100 * got, samples))


def test_list_every_version():
    servers = [Server("werkzeug", python=PYENV[v]) for v in VERSIONS]
    old = subprocess.Popen([PYENV_38, "-c", "import time; time.sleep(60)"],
                           env=python_env(PYENV_38))
    try:
        time.sleep(0.5)
        p = subprocess.run([BINARY, "--list"], capture_output=True, text=True, timeout=60)
        check(p.returncode == 0, "--list exit %s: %s", p.returncode, p.stderr)
        rows = {int(l.split()[0]): l.split() for l in p.stdout.splitlines()[1:]
                if l[:1].isdigit()}
        for v, srv in zip(VERSIONS, servers):
            r = rows.get(srv.pid)
            micro = "" if v in ("3.9", "3.10") else "."  # no Py_Version before 3.11
            check(r and (r[3] == v if not micro else r[3].startswith(v + ".")) and
                  r[5] == str(srv.port) and r[6] == "yes" and
                  r[7].endswith("libpython%s.so.1.0" % v), "%s row: %s\n%s", v, r, p.stdout)
        r = rows.get(old.pid)
        check(r and r[3] == "3.8" and r[6] == "?", "3.8 row: %s", r)
        p = subprocess.run([BINARY, "-p", str(old.pid)], capture_output=True, text=True,
                           timeout=30)
        check(p.returncode == 1 and "CPython 3.8" in p.stderr and "not supported" in p.stderr
              and "supported: CPython 3.9, 3.10, 3.11, 3.12, 3.13" in p.stderr,
              "3.8 refusal: %s %s", p.returncode, p.stderr)
    finally:
        old.kill()
        old.wait()
        for srv in servers:
            srv.stop()


TESTS = [test_request_acceptance_every_version, test_gunicorn_workers_every_version,
         test_profile_every_version,
         test_thread_outside_requests_every_version, test_list_every_version]
