# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""The request acceptance (≥ 200 requests over ≥ 8 routes, exact fields) on
the other common WSGI servers, all under Debian's CPython 3.11: gunicorn
gthread, waitress (threads) and uWSGI with the python3 plugin, whose
interpreter is Debian's shared libpython3.11.so."""
from harness import DEBIAN_PY, Server, check
from test_requests import acceptance


def run(kind, workers):
    with Server(kind, python=DEBIAN_PY, workers=workers) as srv:
        pids = {srv.pid} | set(srv.children())
        if kind in ("gthread", "uwsgi"):
            check(len(pids) == workers + 1, "%s: master and %d workers expected: %s", kind,
                  workers, pids)
        acceptance(srv, lambda: pids)


def test_gunicorn_gthread():
    run("gthread", 2)


def test_waitress_threads():
    run("waitress", 1)


def test_uwsgi_python3_plugin_shared_libpython():
    run("uwsgi", 2)


TESTS = [test_gunicorn_gthread, test_waitress_threads,
         test_uwsgi_python3_plugin_shared_libpython]
