# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Shared plumbing for the integration tests: real servers on loopback, the
real profilis-bpf binary, real HTTP requests.  Nothing here mocks the kernel,
libbpf or the target: a test that passes has seen the BPF programs read a
live interpreter."""
import atexit
import collections
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BINARY = os.path.join(ROOT, "profilis-bpf")
APPS = os.path.join(ROOT, "tests", "apps")
DEBIAN_PY = "/usr/bin/python3.11"
PYENV_ROOT = os.environ.get("PYENV_ROOT", "/root/.pyenv")
PYENV_311 = os.path.join(PYENV_ROOT, "versions", "3.11.7", "bin", "python3.11")
# Every CPython the tool supports, as the pyenv builds (shared libpython).
PYENV = dict((v.rsplit(".", 1)[0], os.path.join(PYENV_ROOT, "versions", v, "bin",
                                                "python" + v.rsplit(".", 1)[0]))
             for v in ("3.9.18", "3.10.13", "3.11.7", "3.12.1", "3.13.0"))
PYENV_38 = os.path.join(PYENV_ROOT, "versions", "3.8.18", "bin", "python3.8")
# Too old for the request hook: 3.6 has no ContextVars, 3.7 no ContextVar-based Flask.
PYENV_OLD = dict((v.rsplit(".", 1)[0], os.path.join(PYENV_ROOT, "versions", v, "bin",
                                                    "python" + v.rsplit(".", 1)[0]))
                 for v in ("3.6.15", "3.7.16"))
PYENV_SITE = os.path.join(PYENV_ROOT, "versions", "3.11.7", "lib", "python3.11", "site-packages")
DEBIAN_SITE = "/usr/lib/python3/dist-packages"
FLASK_DISTS = ("flask", "werkzeug", "jinja2", "markupsafe", "itsdangerous", "click", "blinker")
# Debian's gunicorn is pure Python: the pyenv interpreters run it too.
GUNICORN_DISTS = ("gunicorn", "pkg_resources")
OUR_PROGS = ("ctxvar_set", "ctxvar_reset", "on_fork", "on_exit")


class TestFailure(Exception):
    pass


def check(cond, msg, *args):
    if not cond:
        raise TestFailure(msg % args if args else msg)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc=None, timeout=20):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise TestFailure("server exited early with %s" % proc.returncode)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TestFailure("nothing listens on port %d after %ds" % (port, timeout))


def clean_env():
    env = dict(os.environ)
    for k in ("PYTHONPATH", "PYTHONHOME", "PYENV_VERSION"):
        env.pop(k, None)
    return env


_flask_paths = {}
atexit.register(lambda: [shutil.rmtree(d, ignore_errors=True) for d in _flask_paths.values()])


def flask_path(python):
    """A PYTHONPATH directory of symlinks that lets `python` import Flask
    (DESIGN.md section 3); None when it has its own.  3.10+ get pyenv
    3.11.7's Flask 3.1.3; 3.9 gets Debian's Flask 2.2.2, the newest Flask here
    that still runs on it (click 8.4 needs 3.10).  Debian's gunicorn comes
    along."""
    if python == DEBIAN_PY or not python.startswith(PYENV_ROOT):
        return None
    # pyenv 3.11.7 has Flask 3.1.3 installed: it only borrows gunicorn.
    site = (None if python == PYENV_311 else
            DEBIAN_SITE if python in (PYENV["3.9"], PYENV_38) else PYENV_SITE)
    if site not in _flask_paths:
        d = tempfile.mkdtemp(prefix="flaskpath-")
        for name in os.listdir(site) if site else ():
            if name.split("-")[0].lower() in FLASK_DISTS:
                os.symlink(os.path.join(site, name), os.path.join(d, name))
        for name in os.listdir(DEBIAN_SITE):
            if name.split("-")[0].lower() in GUNICORN_DISTS:
                os.symlink(os.path.join(DEBIAN_SITE, name), os.path.join(d, name))
        _flask_paths[site] = d
    return _flask_paths[site]


def python_env(python):
    env = clean_env()
    path = flask_path(python)
    if path:
        env["PYTHONPATH"] = path
    return env


class Served:
    """A server some process serves on 127.0.0.1:port: its URLs and the
    children of its master (pid)."""
    pid = None
    port = None

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def children(self):
        try:
            with open("/proc/%d/task/%d/children" % (self.pid, self.pid)) as f:
                return [int(p) for p in f.read().split()]
        except OSError:
            return []


def wait_for_text(read, proc, text, timeout, who, more=lambda: ""):
    """Waits until read() contains text; fails when proc exits first."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if text in read():
            return
        if proc.poll() is not None:
            raise TestFailure("%s exited %s before printing %r:\n%s%s"
                              % (who, proc.returncode, text, read(), more()))
        time.sleep(0.05)
    raise TestFailure("%s did not print %r in %ds:\n%s" % (who, text, timeout, read()))


class Launched(Served):
    """A process group this test started (self.proc, its output in self.log):
    killed whole, its log removed, on stop or at the end of a with block."""

    def stop(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)
        self.log.close()
        os.unlink(self.log.name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


class Server(Launched):
    """A Flask app under a real WSGI server, as its own process group."""

    def __init__(self, kind, app="shop", python=DEBIAN_PY, workers=2, extra=(), env=None):
        self.port = free_port()
        self.log = tempfile.NamedTemporaryFile(prefix="server-", suffix=".log", delete=False)
        if kind == "gunicorn":
            # Debian's /usr/bin/gunicorn is what production runs (comm "gunicorn").
            launcher = ["/usr/bin/gunicorn"] if python == DEBIAN_PY else [python, "-m", "gunicorn"]
            argv = launcher + ["-w", str(workers), "-b",
                    "127.0.0.1:%d" % self.port, "--graceful-timeout", "2"] + list(extra) + \
                   ["%s:app" % app]
        elif kind == "gthread":
            argv = ["/usr/bin/gunicorn", "-k", "gthread", "--threads", "4", "-w", str(workers),
                    "-b", "127.0.0.1:%d" % self.port, "%s:app" % app]
        elif kind == "waitress":
            argv = [python, "-m", "waitress", "--threads", "4", "--listen",
                    "127.0.0.1:%d" % self.port, "%s:app" % app]
        elif kind == "uwsgi":
            # Debian's uWSGI with the python3 plugin: libpython3.11.so, shared.
            argv = ["/usr/bin/uwsgi", "--plugin", "python3", "--master", "--processes",
                    str(workers), "--http-socket", "127.0.0.1:%d" % self.port,
                    "--wsgi-file", os.path.join(APPS, app + ".py"), "--callable", "app",
                    "--die-on-term", "--disable-logging"]
        elif kind == "werkzeug":
            argv = [python, os.path.join(APPS, app + ".py"), str(self.port)]
        else:
            raise ValueError(kind)
        self.python = python
        # env: variables added to the server's environment (OTEL_SERVICE_NAME, ...).
        self.proc = subprocess.Popen(argv, cwd=APPS, env=dict(python_env(python), **(env or {})),
                                     stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.pid = self.proc.pid
        wait_port(self.port, self.proc)
        if kind in ("gunicorn", "gthread", "uwsgi"):
            # The master listens before it forks: wait for every worker.
            deadline = time.time() + 20
            while len(self.children()) < workers and time.time() < deadline:
                time.sleep(0.05)


class Profiler:
    """profilis-bpf attached to a PID, writing JSONL to a file."""

    def __init__(self, pid, args=(), ready=True, timeout=30, env=None):
        self.out = tempfile.NamedTemporaryFile(prefix="pbpf-", suffix=".jsonl", delete=False)
        self.err = tempfile.NamedTemporaryFile(prefix="pbpf-", suffix=".err", delete=False)
        target = ["-p", str(pid)] if pid is not None else []  # None: args say (--all)
        # env: variables added to profilis-bpf's environment (PROFILIS_UI_TOKEN, ...).
        self.proc = subprocess.Popen([BINARY] + target + list(args), stdout=self.out,
                                     stderr=self.err, env=dict(os.environ, **(env or {})))
        if ready:
            self.wait_stderr("attached to PID", timeout)

    def stderr(self):
        with open(self.err.name, errors="replace") as f:
            return f.read()

    def wait_stderr(self, text, timeout=30):
        wait_for_text(self.stderr, self.proc, text, timeout, "profilis-bpf")

    def stop(self, sig=signal.SIGINT, timeout=20):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise TestFailure("profilis-bpf did not exit within %ds of a signal" % timeout)
        return rc

    def records(self, kind="REQ"):
        """The records of one kind (REQ by default; PROFILE records are
        interleaved); every line must be whole and parse."""
        recs = []
        with open(self.out.name, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                check(line.endswith("\n"), "line %d is partial: %r", n, line)
                rec = json.loads(line)
                if kind is None or rec.get("kind") == kind:
                    recs.append(rec)
        return recs

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for f in (self.out, self.err):
            f.close()
            os.unlink(f.name)


def http(url, method="GET", body=None, headers=None, timeout=10):
    """One request on a fresh connection; returns the status code."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            r.read()
            return r.status
    except urllib.error.HTTPError as e:
        e.read()
        return e.code


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **k):
        return None


urllib.request.install_opener(urllib.request.build_opener(NoRedirect))


def run_parallel(fn, items, threads=4):
    """Runs fn(item) over items on a few threads; re-raises the first error."""
    errors = []
    it = iter(list(enumerate(items)))
    lock = threading.Lock()
    results = [None] * len(items)

    def worker():
        while True:
            with lock:
                nxt = next(it, None)
            if nxt is None:
                return
            i, item = nxt
            try:
                results[i] = fn(item)
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)
                return

    ts = [threading.Thread(target=worker) for _ in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        raise errors[0]
    return results


def our_programs():
    """IDs of loaded BPF programs with our programs' names."""
    out = subprocess.run(["bpftool", "prog", "show"], capture_output=True, text=True,
                         env=dict(os.environ, PATH=os.environ.get("PATH", "") + ":/usr/sbin"))
    ids = set()
    for line in out.stdout.splitlines():
        parts = line.split()
        if "name" in parts and parts[parts.index("name") + 1] in OUR_PROGS:
            ids.add(int(parts[0].rstrip(":")))
    return ids


def programs_left(ids, grace=3.0):
    """Which of `ids` are still loaded after `grace` seconds (the kernel frees
    a program after an RCU grace period, not at close()).  Tests compare ID
    sets so that another profilis-bpf running on the machine cannot fail them."""
    deadline = time.time() + grace
    while True:
        left = ids & our_programs()
        if not left or time.time() >= deadline:
            return left
        time.sleep(0.1)


def counter(records, keys):
    return collections.Counter(tuple(r.get(k) for k in keys) for r in records)


def log(msg):
    sys.stdout.write(msg + "\n")
    sys.stdout.flush()
