# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""One run, several interpreters: -p given twice traces a Debian 3.11
gunicorn and a pyenv 3.13 werkzeug server at once, each process read with
its own interpreter descriptor (offsets of its build, addresses of its
address space); and a traced process that execs another CPython is
resolved again."""
import collections
import json
import os
import tempfile
import time

from harness import DEBIAN_PY, PYENV, Profiler, Server, check, http, log


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

TESTS = [test_two_versions_in_one_run]
