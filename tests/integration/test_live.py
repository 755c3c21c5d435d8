# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Live statistics against a real app: the dashboard in a real terminal
(tmux), its keys and the terminal restored afterwards; --stats-json agreeing
with the JSONL records of the same run; the plain --table view."""
import collections
import json
import os
import re
import subprocess
import tempfile
import threading
import time

from harness import BINARY, DEBIAN_PY, Profiler, Server, check, http, log, run_parallel


class Load:
    """Background HTTP load on a few routes until stopped."""

    def __init__(self, srv):
        self.srv, self.stop_flag, self.sent = srv, threading.Event(), collections.Counter()
        self.t = threading.Thread(target=self.run)
        self.t.start()

    def run(self):
        i = 0
        while not self.stop_flag.is_set():
            path = ("/users/%d" % i, "/hello/x", "/boom", "/users/%d" % (i + 1))[i % 4]
            http(self.srv.url(path))
            self.sent[path.split("/")[1]] += 1
            i += 1

    def stop(self):
        self.stop_flag.set()
        self.t.join()


def tmux(*args):
    return subprocess.run(["tmux"] + list(args), capture_output=True, text=True,
                          check=False).stdout


def screen(session):
    return tmux("capture-pane", "-p", "-t", session)


def wait_screen(session, text, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        s = screen(session)
        if text in s:
            return s
        time.sleep(0.1)
    raise AssertionError("%r not on screen within %ds:\n%s" % (text, timeout, screen(session)))


def test_dashboard_in_tmux():
    session = "pbpf-test-%d" % os.getpid()
    with Server("gunicorn", python=DEBIAN_PY, workers=2) as srv:
        load = Load(srv)
        try:
            # The pane runs a shell so that after we quit, `stty` shows the
            # terminal state profilis-bpf left behind.
            tmux("new-session", "-d", "-s", session, "-x", "120", "-y", "32", "sh")
            tmux("send-keys", "-t", session,
                 "%s -p %d -i 0.5; echo EXITED rc=$?; stty -a | tr ' ;' '\\n\\n' | "
                 "grep -x -e icanon -e -icanon -e echo -e -echo | tr '\\n' ' '; echo" % (
                     BINARY, srv.pid), "Enter")
            s = wait_screen(session, "/users/<int:uid>")
            check("METHOD" in s and "REQ/Sv" in s, "no table heading:\n%s", s)
            check("/boom" in s and "PaymentDeclined" in s, "no /boom row or error:\n%s", s)
            # The first row may carry the selection marker ("GET   > /users...").
            rows = [l.replace(">", " ") for l in s.splitlines()
                    if l.startswith("GET") and "/users/<int:uid>" in l]
            check(rows and float(rows[0].split()[2]) > 1, "implausible req/s: %s", rows)
            tmux("send-keys", "-t", session, "s")
            wait_screen(session, "P50v", 5)
            tmux("send-keys", "-t", session, "r")
            wait_screen(session, "P50^", 5)
            tmux("send-keys", "-t", session, "p")
            wait_screen(session, "[PAUSED]", 5)
            first = [l for l in screen(session).splitlines() if "<int:uid>" in l]
            time.sleep(1.5)
            second = [l for l in screen(session).splitlines() if "<int:uid>" in l]
            check(first == second, "paused dashboard changed:\n%s\n%s", first, second)
            tmux("send-keys", "-t", session, "p")
            time.sleep(1.2)
            third = [l for l in screen(session).splitlines() if "<int:uid>" in l]
            check(third != second, "resumed dashboard did not update")
            tmux("send-keys", "-t", session, "q")
            s = wait_screen(session, "EXITED rc=0")
            # Back on the normal screen, in cooked mode with echo.
            check("Summary (" in s, "no summary table after exit:\n%s", s)
            deadline = time.time() + 5
            while "icanon echo" not in screen(session) and time.time() < deadline:
                time.sleep(0.1)
            check("icanon echo" in screen(session), "terminal left raw:\n%s", screen(session))
        finally:
            load.stop()
            tmux("kill-session", "-t", session)


def test_warnings_kept_off_the_dashboard():
    """A warning raised while the dashboard owns the terminal (JSONL to a full
    device) is held, not drawn into the alternate screen where the next frame
    garbles it and leaving the screen loses it; it appears once the normal
    screen is back."""
    session = "pbpf-warn-%d" % os.getpid()
    with Server("gunicorn", python=DEBIAN_PY, workers=1) as srv:
        try:
            tmux("new-session", "-d", "-s", session, "-x", "160", "-y", "40", "sh")
            tmux("send-keys", "-t", session, "%s -p %d -o /dev/full -i 0.5; echo EXITED rc=$?"
                 % (BINARY, srv.pid), "Enter")
            wait_screen(session, "METHOD")
            for i in range(3):
                check(http(srv.url("/users/%d" % i)) == 200, "request failed")
            s = wait_screen(session, "/users/<int:uid>")
            time.sleep(1)  # several frames after the failed write
            s = screen(session)
            check("warning" not in s, "a warning drawn over the dashboard:\n%s", s)
            tmux("send-keys", "-t", session, "q")
            s = wait_screen(session, "EXITED rc=0")
            flat = s.replace("\n", "")
            check("warning: writing JSONL to /dev/full failed" in flat,
                  "the held warning was not shown after the dashboard:\n%s", s)
            check(flat.index("writing JSONL to /dev/full") < flat.index("Summary ("),
                  "held warning after the summary:\n%s", s)
        finally:
            tmux("kill-session", "-t", session)


def test_stats_json_agrees_with_records():
    d = tempfile.mkdtemp(prefix="pbpf-stats-")
    stats, jsonl = os.path.join(d, "metrics.json"), os.path.join(d, "req.jsonl")
    try:
        with Server("gunicorn", python=DEBIAN_PY, workers=2) as srv:
            prof = Profiler(srv.pid, ["-o", jsonl, "--stats-json", stats, "-i", "0.3"])
            try:
                run_parallel(lambda i: http(srv.url("/users/%d" % i)), range(300))
                run_parallel(lambda i: http(srv.url("/boom")), range(30))
                run_parallel(lambda i: http(srv.url("/nope")), range(20))
                time.sleep(1.2)  # several intervals: the file has caught up
                with open(stats) as f:
                    doc = json.load(f)
            finally:
                prof.stop()
                prof.close()
        with open(jsonl) as f:
            recs = [r for r in map(json.loads, f) if r["kind"] == "REQ"]
        check(len(recs) == 350, "%d records", len(recs))
        for k in ("rps", "error_pct", "p50", "p95", "p99", "spark", "routes", "errors"):
            check(k in doc, "metrics.json lacks %s", k)
        check(doc["count"] == 350, "total count %s, records 350", doc["count"])
        # A request no rule matched (endpoint null) is keyed "(unmatched)" in
        # the statistics, its raw path kept in its record only.
        by_route = collections.Counter(
            (r["method"], r["route"] if r["endpoint"] is not None else "(unmatched)")
            for r in recs)
        check(by_route[("GET", "(unmatched)")] == 20, "unmatched: %s", by_route)
        got = {(r["method"], r["route"]): r["count"] for r in doc["routes"]}
        check(got == dict(by_route), "per-route counts differ: %s vs %s", got, dict(by_route))
        fives = sum(1 for r in recs if r["status"] >= 500)
        check(abs(doc["error_pct"] - 100.0 * fives / 350) < 1e-6, "error_pct %s", doc["error_pct"])
        check(len(doc["errors"]) == 30 and doc["errors"][0]["exception_type"] == "PaymentDeclined",
              "errors: %s", doc["errors"][:2])
        durs = sorted(r["dur_ns"] for r in recs if r["route"] == "/users/<int:uid>")
        exact_p95 = durs[int(0.95 * len(durs) + 0.999999) - 1] / 1e6
        row = [r for r in doc["routes"] if r["route"] == "/users/<int:uid>"][0]
        check(abs(row["p95"] - exact_p95) <= 0.01 * exact_p95, "p95 %s vs exact %s",
              row["p95"], exact_p95)
        log("    350 records, %d routes, p95 %.3f ms (exact %.3f)" % (len(got), row["p95"],
                                                                     exact_p95))
    finally:
        for n in os.listdir(d):
            os.unlink(os.path.join(d, n))
        os.rmdir(d)


def test_table_mode_when_not_a_terminal():
    with Server("gunicorn", python=DEBIAN_PY, workers=1) as srv:
        prof = Profiler(srv.pid, ["--table", "-i", "0.5"])
        try:
            for i in range(20):
                http(srv.url("/users/%d" % i))
            time.sleep(1.3)
            prof.stop()
            with open(prof.out.name) as f:
                text = f.read()
        finally:
            prof.close()
    check("METHOD  ROUTE" in text and "/users/<int:uid>" in text, "no table:\n%s", text)
    check('"kind":"REQ"' not in text, "records on stdout in --table mode:\n%s", text)


def test_dashboard_restores_terminal_on_signals():
    session = "pbpf-sig-%d" % os.getpid()
    with Server("gunicorn", python=DEBIAN_PY, workers=1) as srv:
        try:
            tmux("new-session", "-d", "-s", session, "-x", "100", "-y", "24", "sh")
            for how in ("ctrl-c", "sigterm"):
                tmux("send-keys", "-t", session, "clear", "Enter")
                tmux("send-keys", "-t", session,
                     "%s -p %d; echo EXITED-%s rc=$?; stty -a | tr ' ;' '\\n\\n' | "
                     "grep -x -e icanon -e -icanon -e echo -e -echo | tr '\\n' ' '; echo" % (
                         BINARY, srv.pid, how), "Enter")
                wait_screen(session, "METHOD")
                if how == "ctrl-c":
                    tmux("send-keys", "-t", session, "C-c")
                else:
                    subprocess.run(["pkill", "-TERM", "-f", "%s -p %d" % (BINARY, srv.pid)])
                s = wait_screen(session, "EXITED-%s rc=0" % how)
                deadline = time.time() + 5
                while "icanon echo" not in screen(session) and time.time() < deadline:
                    time.sleep(0.1)
                check("icanon echo" in screen(session), "%s left the terminal raw:\n%s", how,
                      screen(session))
                check("METHOD" not in s.split("EXITED")[0].splitlines()[0],
                      "%s: still on the dashboard screen", how)
        finally:
            tmux("kill-session", "-t", session)


def test_no_color():
    """NO_COLOR drops the colors (bold and reverse video stay: they are not color)."""
    session = "pbpf-nc-%d" % os.getpid()
    red = "\x1b[31m"
    with Server("gunicorn", python=DEBIAN_PY, workers=1) as srv:
        try:
            for env, want_red in (("", True), ("NO_COLOR=1 ", False)):
                tmux("new-session", "-d", "-s", session, "-x", "100", "-y", "24",
                     "%s%s -p %d -i 0.3" % (env, BINARY, srv.pid))
                wait_screen(session, "METHOD")
                for _ in range(3):
                    http(srv.url("/boom"))
                wait_screen(session, "PaymentDeclined")
                raw = tmux("capture-pane", "-p", "-e", "-t", session)
                check((red in raw) == want_red, "%s: red present=%s:\n%r", env or "colors",
                      red in raw, raw[:400])
                tmux("send-keys", "-t", session, "q")
                time.sleep(0.5)
                tmux("kill-session", "-t", session)
        finally:
            tmux("kill-session", "-t", session)


def test_hot_functions_pane():
    """The dashboard's hot functions, for all routes and, after Enter, for the
    selected route only."""
    session = "pbpf-hot-%d" % os.getpid()
    with Server("gunicorn", app="profiled", python=DEBIAN_PY, workers=1) as srv:
        stop = threading.Event()

        def load():
            while not stop.is_set():
                http(srv.url("/mixed"))
                http(srv.url("/json"))

        t = threading.Thread(target=load)
        t.start()
        try:
            tmux("new-session", "-d", "-s", session, "-x", "120", "-y", "40",
                 "%s -p %d -F 499 -i 0.3" % (BINARY, srv.pid))
            s = wait_screen(session, "burn_cpu (profiled.py)", 15)
            check("HOT FUNCTIONS (all routes" in s, "no hot pane:\n%s", s)
            deadline = time.time() + 10
            while time.time() < deadline and not ("coder.py" in s or "encode_payload" in s):
                time.sleep(0.3)
                s = screen(session)
            check("coder.py" in s or "encode_payload" in s,
                  "/json's functions missing from the all-routes pane:\n%s", s)
            # Select /mixed (sorted by name: /json, /mixed) and drill in.
            tmux("send-keys", "-t", session, "<")
            wait_screen(session, "ROUTEv", 5)
            tmux("send-keys", "-t", session, "j", "Enter")
            s = wait_screen(session, "HOT FUNCTIONS (GET /mixed)", 5)
            pane = s.split("HOT FUNCTIONS (GET /mixed)")[1].split("RECENT ERRORS")[0]
            check("burn_cpu" in pane and "wait_io" in pane, "drilled pane:\n%s", pane)
            check("coder.py" not in pane and "encode_payload" not in pane,
                  "/json's functions under /mixed:\n%s", pane)
            tmux("send-keys", "-t", session, "Enter")
            wait_screen(session, "HOT FUNCTIONS (all routes", 5)
            tmux("send-keys", "-t", session, "q")
        finally:
            stop.set()
            t.join()
            tmux("kill-session", "-t", session)


def test_two_services_stats_json_and_table():
    """Two servers traced at once (-p A -p B), told apart by OTEL_SERVICE_NAME:
    --stats-json has one "services" object per service and every route under
    its own service, with exact counts; --table gets a SERVICE column; the
    same route of the two services is two rows."""
    d = tempfile.mkdtemp(prefix="pbpf-svc-")
    stats = os.path.join(d, "metrics.json")
    try:
        with Server("gunicorn", python=DEBIAN_PY, workers=1,
                    env={"OTEL_SERVICE_NAME": "alpha"}) as a, \
                Server("gunicorn", python=DEBIAN_PY, workers=1,
                       env={"OTEL_SERVICE_NAME": "beta"}) as b:
            prof = Profiler(a.pid, ["-p", str(b.pid), "--table", "--stats-json", stats,
                                    "-i", "0.3"], ready=False)
            try:
                prof.wait_stderr("Ctrl-C to stop")
                run_parallel(lambda i: http(a.url("/users/%d" % i)), range(40))
                run_parallel(lambda i: http(a.url("/boom")), range(5))
                run_parallel(lambda i: http(b.url("/users/%d" % i)), range(25))
                run_parallel(lambda i: http(b.url("/nope")), range(3))
                time.sleep(1.2)  # several intervals: the file and the table caught up
                with open(stats) as f:
                    doc = json.load(f)
                check(prof.stop() == 0, "exit:\n%s", prof.stderr())
                with open(prof.out.name) as f:
                    text = f.read()
                err = prof.stderr()
            finally:
                prof.close()
        check(doc["count"] == 73, "total count %s, sent 73", doc["count"])
        svcs = {s["service"]: s for s in doc["services"]}
        check(sorted(svcs) == ["alpha", "beta"], "services: %s", sorted(svcs))
        check(svcs["alpha"]["count"] == 45 and svcs["beta"]["count"] == 28,
              "per-service counts: alpha %s beta %s", svcs["alpha"]["count"],
              svcs["beta"]["count"])
        check(abs(svcs["alpha"]["error_pct"] - 100.0 * 5 / 45) < 1e-9 and
              svcs["alpha"]["pct_4xx"] == 0, "alpha shares: %s", svcs["alpha"])
        check(abs(svcs["beta"]["pct_4xx"] - 100.0 * 3 / 28) < 1e-9 and
              svcs["beta"]["error_pct"] == 0, "beta shares: %s", svcs["beta"])
        for k in ("rps", "p50", "p95", "p99", "max", "spark", "pct_5xx"):
            check(k in svcs["alpha"], "a service lacks %s", k)
        got = {(r["service"], r["method"], r["route"]): r["count"] for r in doc["routes"]}
        want = {("alpha", "GET", "/users/<int:uid>"): 40, ("alpha", "GET", "/boom"): 5,
                ("beta", "GET", "/users/<int:uid>"): 25, ("beta", "GET", "(unmatched)"): 3}
        check(got == want, "per-route counts: %s", got)
        check(len(doc["errors"]) == 5 and all(e["service"] == "alpha" for e in doc["errors"]),
              "errors: %s", doc["errors"][:2])
        # The last periodic table ("HH:MM:SS  N req/s  ..."; the exit summary
        # follows it): a SERVICE column, the route once per service.
        tables = [b.strip("\n").splitlines() for b in text.split("\n\n")]
        tables = [t for t in tables if t and re.match(r"\d\d:\d\d:\d\d  ", t[0])]
        check(tables, "no periodic table on stdout:\n%s", text[-2000:])
        last = tables[-1]
        check(any(l.endswith("routes  2 services") for l in last), "table header:\n%s",
              "\n".join(last))
        heading = [l for l in last if l.startswith("METHOD")]
        check(heading and heading[0].split()[:3] == ["METHOD", "SERVICE", "ROUTE"],
              "no SERVICE column:\n%s", text[-2000:])
        rows = {tuple(l.split()[:3]): l.split()[3:] for l in last if l.startswith("GET")}
        check(("GET", "alpha", "/users/<int:uid>") in rows and
              ("GET", "beta", "/users/<int:uid>") in rows, "rows:\n%s", "\n".join(last))
        summary = text + err
        check("  alpha: 45 requests" in summary and "  beta: 28 requests" in summary,
              "exit summary per service:\n%s", summary[-1500:])
        log("    alpha 45, beta 28 requests; %d route rows" % len(got))
    finally:
        for n in os.listdir(d):
            os.unlink(os.path.join(d, n))
        os.rmdir(d)


TESTS = [test_dashboard_in_tmux, test_warnings_kept_off_the_dashboard, test_hot_functions_pane, test_dashboard_restores_terminal_on_signals, test_no_color, test_stats_json_agrees_with_records,
         test_table_mode_when_not_a_terminal, test_two_services_stats_json_and_table]
