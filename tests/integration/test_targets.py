# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""One run, several interpreters: -p given twice traces a Debian 3.11
gunicorn and a pyenv 3.13 werkzeug server at once, each process read with
its own interpreter descriptor (offsets of its build, addresses of its
address space); and a traced process that execs another CPython is
resolved again."""
import collections
import json
import os
import signal
import subprocess
import tempfile
import time

from harness import (APPS, DEBIAN_PY, PYENV, Profiler, Server, check, free_port, http, log,
                     python_env, wait_port)


def frames_by_profile(path):
    """{"GET /route (on-CPU)": {(name, file), ...}} from a --speedscope file."""
    with open(path) as f:
        doc = json.load(f)
    frames = doc["shared"]["frames"]
    return {p["name"]: {(frames[i]["name"], os.path.basename(frames[i].get("file", "")))
                        for s in p["samples"] for i in s}
            for p in doc["profiles"]}


def test_two_versions_in_one_run():
    """Exact records from both servers, and stack profiles whose frames are
    named from each one's own code objects (3.11 and 3.13 lay them out
    differently: read with the other's offsets they would be <unknown>)."""
    scope = tempfile.NamedTemporaryFile(prefix="pbpf-", suffix=".speedscope.json", delete=False)
    scope.close()
    with Server("gunicorn", app="profiled", python=DEBIAN_PY, workers=2) as a, \
            Server("werkzeug", app="shop", python=PYENV["3.13"]) as b:
        check(http(a.url("/json")) == 200, "warm-up request failed")
        prof = Profiler(a.pid, ["-p", str(b.pid), "-F", "499", "--speedscope", scope.name],
                        ready=False)
        try:
            prof.wait_stderr("Ctrl-C to stop")
            err = prof.stderr()
            check("CPython 3.11" in err and "CPython 3.13" in err,
                  "both interpreters named:\n%s", err)
            for i in range(15):
                check(http(a.url("/mixed")) == 200, "/mixed failed")
                check(http(b.url("/users/%d" % i)) == 200, "/users failed")
            for _ in range(5):
                check(http(b.url("/slow")) == 200, "/slow failed")
            time.sleep(0.3)
            check(prof.stop() == 0, "exit:\n%s", prof.stderr())
            recs = prof.records()
        finally:
            prof.close()
        workers = set(a.children())
    by_route = collections.Counter((r["route"], r["pid"] in workers, r["pid"] == b.pid)
                                   for r in recs)
    check(by_route == {("/mixed", True, False): 15, ("/users/<int:uid>", False, True): 15,
                       ("/slow", False, True): 5},
          "records by (route, from gunicorn's workers, from werkzeug): %s", dict(by_route))
    paths = sorted(r["path"] for r in recs if r["pid"] == b.pid and r["route"] != "/slow")
    check(paths == sorted("/users/%d" % i for i in range(15)), "paths: %s", paths)
    check(all(r["status"] == 200 and r["method"] == "GET" for r in recs), "status or method")
    frames = frames_by_profile(scope.name)
    os.unlink(scope.name)
    mixed = frames.get("GET /mixed (on-CPU)", set()) | frames.get("GET /mixed (off-CPU)", set())
    slow = frames.get("GET /slow (off-CPU)", set())
    check({("burn_cpu", "profiled.py"), ("wait_io", "profiled.py"), ("mixed", "profiled.py")}
          <= mixed, "3.11's /mixed stacks: %s", sorted(mixed))
    check(("slow", "shop.py") in slow, "3.13's /slow stacks: %s", sorted(slow))
    unknown = sorted(p for p, fs in frames.items() if any(n == "<unknown>" for n, _ in fs))
    check(not unknown, "frames read with the wrong layout in %s", unknown)
    log("    15 + 20 records; 3.11 /mixed %d frames, 3.13 /slow %d frames, none unknown"
        % (len(mixed), len(slow)))

EXEC_SCRIPT = """
import os, sys, time
time.sleep(float(sys.argv[1]))
os.execv(sys.argv[2], sys.argv[2:])
"""


def test_exec_into_another_version_is_traced_again():
    """A traced pyenv 3.11 process execs a 3.13 werkzeug server (a launcher,
    or gunicorn's USR2 upgrade, does this): the old descriptor is dropped at
    the exec, the new image is resolved (another interpreter file, so new
    uprobes) and its requests are recorded exactly."""
    port = free_port()
    script = tempfile.NamedTemporaryFile("w", prefix="pbpf-exec-", suffix=".py", delete=False)
    script.write(EXEC_SCRIPT)
    script.close()
    py313 = PYENV["3.13"]
    proc = subprocess.Popen([PYENV["3.11"], script.name, "1.5", py313,
                             os.path.join(APPS, "shop.py"), str(port)],
                            cwd=APPS, env=python_env(py313), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    prof = None
    try:
        prof = Profiler(proc.pid, ["-v", "-F", "0", "--no-offcpu"])
        check("CPython 3.11" in prof.stderr(), "attached to 3.11 first:\n%s", prof.stderr())
        wait_port(port, proc)
        for i in range(12):
            check(http("http://127.0.0.1:%d/users/%d" % (port, i)) == 200, "request failed")
        time.sleep(0.3)
        check(prof.stop() == 0, "exit:\n%s", prof.stderr())
        recs, err = prof.records(), prof.stderr()
    finally:
        if prof:
            prof.close()
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        os.unlink(script.name)
    check("exec'd CPython 3.13" in err and
          "1 traced processes called exec: 1 traced again as CPython, 0 not" in err,
          "the exec not resolved, or not reported:\n%s", err)
    check(sorted(r["path"] for r in recs) == sorted("/users/%d" % i for i in range(12)) and
          all(r["pid"] == proc.pid and r["route"] == "/users/<int:uid>" for r in recs),
          "records after the exec: %s", [(r["pid"], r["path"]) for r in recs])
    log("    12 of 12 requests recorded after exec from 3.11 into 3.13")


TESTS = [test_two_versions_in_one_run, test_exec_into_another_version_is_traced_again]
