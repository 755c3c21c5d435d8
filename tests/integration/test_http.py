# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""--http against real parts: a real Prometheus (Debian's `prometheus`,
started here on loopback with a scrape config that sends the bearer token)
scrapes /metrics of profilis-bpf tracing a real gunicorn; Prometheus's HTTP
API must then return per-route counts equal to the requests sent and each
`le` bucket of the 50 ms route equal to what the records' durations say;
`promtool check metrics` finds nothing to say about our exposition; 10,000
requests to random unmatched paths add no series.  Debian's headless
chromium, driven by playwright-core (tests/ui-browser), loads the page with
?token= and must show the rows and counts of metrics.json.  Without the
token, or with a wrong one, every path answers 401."""
import json
import os
import secrets
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

from harness import (BINARY, DEBIAN_PY, ROOT, Profiler, Server, check, free_port, http, log,
                     run_parallel, wait_port)

UI_DIR = os.path.join(ROOT, "tests", "ui-browser")
SHOT_DIR = os.path.join(ROOT, ".output", "tests")
# The shop app's routes, what each answers, and how often the mix asks.
MIX = [("GET", "/", "/", 200, 7), ("GET", "/users/5", "/users/<int:uid>", 200, 11),
       ("GET", "/slow", "/slow", 200, 5), ("POST", "/orders", "/orders", 201, 3),
       ("GET", "/boom", "/boom", 500, 2), ("GET", "/admin", "/admin", 403, 4),
       ("GET", "/nope", "(unmatched)", 404, 6)]
MIX_TOTAL = sum(m[4] for m in MIX)
PAGE_PATHS = ["/_profilis", "/_profilis/", "/_profilis/metrics.json", "/_profilis/errors.json",
              "/_profilis/agent.json", "/_profilis/hot.json"]


def get(url, token=None, headers=None, method="GET"):
    """(status, body, headers) of one request, with the bearer token if given."""
    h = dict(headers or {})
    if token is not None:
        h["Authorization"] = "Bearer " + token
    req = urllib.request.Request(url, method=method, headers=h,
                                 data=b"x" if method == "POST" else None)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read(), r.headers
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers


def send_mix(srv, times=1):
    items = [(m, p) for m, p, _, _, n in MIX for _ in range(n * times)]
    run_parallel(lambda mp: http(srv.url(mp[1]), method=mp[0],
                                 body=b'{"a": 1}' if mp[0] == "POST" else None,
                                 headers={"Content-Type": "application/json"}), items)


def wait_records(prof, n, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        recs = prof.records()
        if len(recs) >= n:
            check(len(recs) == n, "%d records, %d requests sent", len(recs), n)
            return recs
        time.sleep(0.2)
    raise AssertionError("%d records after %ds, %d requests sent"
                         % (len(prof.records()), timeout, n))


def route_label(rec):
    return rec["route"] if rec["endpoint"] is not None else "(unmatched)"


def series_of(text):
    """The label sets of profilis_http_requests_total in an exposition."""
    return {line.rsplit(" ", 1)[0] for line in text.splitlines()
            if line.startswith("profilis_http_requests_total{")}


def label(series, name):
    start = series.index(name + '="') + len(name) + 2
    return series[start:series.index('"', start)]


class Prometheus:
    """Debian's Prometheus on loopback, scraping one target every second
    with the bearer token; stopped by its PID."""

    def __init__(self, target_port, token):
        self.dir = tempfile.mkdtemp(prefix="pbpf-prom-")
        self.port = free_port()
        cfg = os.path.join(self.dir, "prometheus.yml")
        with open(cfg, "w") as f:
            f.write(SCRAPE_CONFIG % {"token": token, "port": target_port})
        self.log = open(os.path.join(self.dir, "log"), "w")
        self.proc = subprocess.Popen(
            ["/usr/bin/prometheus", "--config.file=" + cfg,
             "--storage.tsdb.path=" + os.path.join(self.dir, "data"),
             "--web.listen-address=127.0.0.1:%d" % self.port], stdout=self.log,
            stderr=subprocess.STDOUT)
        wait_port(self.port, self.proc)
        deadline = time.time() + 30
        while get(self.url("/-/ready"))[0] != 200:
            check(time.time() < deadline, "prometheus not ready in 30 s")
            time.sleep(0.2)

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def query(self, q):
        status, body, _ = get(self.url("/api/v1/query?query=" + urllib.parse.quote(q)))
        check(status == 200, "prometheus query %s: %d %s", q, status, body[:300])
        return json.loads(body)["data"]["result"]

    def wait(self, q, want, key, timeout=30):
        """Polls q until {key(sample): value} equals want; returns it."""
        deadline = time.time() + timeout
        while True:
            got = {key(r["metric"]): float(r["value"][1]) for r in self.query(q)}
            if got == want or time.time() > deadline:
                check(got == want, "%s:\n got  %s\n want %s", q, sorted(got.items()),
                      sorted(want.items()))
                return got
            time.sleep(0.5)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


# The README's scrape config, with the test's token and port.  honor_labels
# keeps our `instance` (the node) instead of Prometheus's target address.
SCRAPE_CONFIG = """\
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: profilis-bpf
    honor_labels: true
    authorization:
      credentials: %(token)s
    static_configs:
      - targets: ["127.0.0.1:%(port)d"]
"""


def check_slow_buckets(prom, recs):
    """Every le of the 50 ms route holds exactly the records at or under it."""
    bounds = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.0", "5.0",
              "10.0", "+Inf"]
    durs = [r["dur_ns"] for r in recs if r["route"] == "/slow"]
    want = {le: float(sum(1 for d in durs if le == "+Inf" or d <= float(le) * 1e9))
            for le in bounds}
    check(want["0.05"] == 0 and want["+Inf"] == 5, "the 50 ms route: %s", sorted(durs))
    prom.wait('sum by (le) (profilis_http_request_duration_seconds_bucket{route="/slow"})',
              want, lambda m: m["le"])
    first = min(le for le in bounds[:-1] if want[le] == 5)
    log("    /slow: all 5 in le=%s (durations %s ms)"
        % (first, ", ".join("%.1f" % (d / 1e6) for d in sorted(durs))))


def check_promtool(text):
    out = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                         text=True)
    check(out.returncode == 0 and not out.stdout.strip() and not out.stderr.strip(),
          "promtool check metrics: rc %d: %s%s", out.returncode, out.stdout, out.stderr)


def unmatched_workers(base, token):
    text = get(base + "/metrics", token)[1].decode()
    return {label(s, "worker") for s in series_of(text) if label(s, "route") == "(unmatched)"}


def scan_unmatched(srv, prof, prom, base, token, recorded):
    """10,000 random unmatched paths add no series: once every worker has
    answered one 404 (its one (unmatched) series), the set of series stays
    the same, here and in Prometheus, and only their counts grow, by exactly
    10,000."""
    workers = {str(p) for p in srv.children()}
    warm = 0
    while unmatched_workers(base, token) != workers:
        check(warm < 500, "404s never reached workers %s", workers - unmatched_workers(base, token))
        http(srv.url("/warm/%d" % warm))
        warm += 1
        recorded += 1
        wait_records(prof, recorded)
    before = get(base + "/metrics", token)[1].decode()
    prom.wait('count(profilis_http_requests_total{route="(unmatched)"})',
              {None: float(len(workers))}, lambda m: None)
    n_before = prom.query("count(profilis_http_requests_total)")[0]["value"][1]
    t0 = time.time()
    run_parallel(lambda i: http(srv.url("/scan/%s/%d" % (secrets.token_hex(6), i))),
                 range(10000), threads=8)
    elapsed = time.time() - t0
    wait_records(prof, recorded + 10000, timeout=120)
    after = get(base + "/metrics", token)[1].decode()
    check(series_of(after) == series_of(before), "series added: %s",
          series_of(after) - series_of(before))
    check("/scan/" not in after, "a raw path reached /metrics")

    def unmatched(text):
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("profilis_http_requests_total{")
                   and 'route="(unmatched)"' in line)
    check(unmatched(after) - unmatched(before) == 10000, "(unmatched) grew by %s",
          unmatched(after) - unmatched(before))
    prom.wait('sum(profilis_http_requests_total{route="(unmatched)"})',
              {None: unmatched(after)}, lambda m: None)
    n_after = prom.query("count(profilis_http_requests_total)")[0]["value"][1]
    check(n_after == n_before, "Prometheus series %s -> %s", n_before, n_after)
    log("    10,000 unmatched paths in %.1f s (%d warm-up 404s): %s series before and after"
        % (elapsed, warm, n_after))


def test_prometheus_scrapes_profilis_metrics():
    token = "tok-" + secrets.token_hex(12)
    with Server("gunicorn", python=DEBIAN_PY, workers=2) as srv:
        port = free_port()
        prof = Profiler(srv.pid, ["--http", "127.0.0.1:%d" % port, "--ui-token", token])
        prom = Prometheus(port, token)
        base = "http://127.0.0.1:%d" % port
        try:
            send_mix(srv)
            recs = wait_records(prof, MIX_TOTAL)
            want = {}
            for r in recs:
                k = (r["method"], route_label(r), str(r["status"]))
                want[k] = want.get(k, 0) + 1.0
            check(want == {(m, lbl, str(st)): float(n) for m, _, lbl, st, n in MIX},
                  "the records are not the mix: %s", want)
            prom.wait("sum by (method, route, status) (profilis_http_requests_total)", want,
                      lambda m: (m["method"], m["route"], m["status"]))
            check_slow_buckets(prom, recs)
            info = prom.query("profilis_bpf_build_info")
            check(len(info) == 1 and info[0]["metric"].get("version") and
                  info[0]["value"][1] == "1", "build_info: %s", info)
            up = prom.query('up{job="profilis-bpf"}')
            check(up and up[0]["value"][1] == "1", "up: %s", up)
            lost = prom.query("sum(profilis_bpf_records_lost_total)")
            check(lost and lost[0]["value"][1] == "0", "losses: %s", lost)
            status, body, hdrs = get(base + "/metrics", token)
            check(status == 200 and hdrs["Content-Type"].startswith("text/plain; version=0.0.4"),
                  "/metrics: %d %s", status, hdrs["Content-Type"])
            check_promtool(body.decode())
            scan_unmatched(srv, prof, prom, base, token, MIX_TOTAL)
            dur = prom.query('scrape_duration_seconds{job="profilis-bpf"}')
            size = len(get(base + "/metrics", token)[1])
            log("    last scrape %.2f ms, %d bytes" % (float(dur[0]["value"][1]) * 1e3, size))
            check(prof.proc.poll() is None, "profilis-bpf exited")
        finally:
            prom.stop()
            prof.stop()
            err = prof.stderr()
            prof.close()
    check(token not in err, "the token was logged:\n%s", err)


def check_guarded(base, token):
    """Every path, unknown ones too, answers 401 without the right token."""
    wrong = [None, "", token[:-1], token + "x", token.upper(), "x" * len(token)]
    for path in ["/metrics", "/", "/nope", "/_profilis/nope"] + PAGE_PATHS:
        for w in wrong:
            status, body, hdrs = get(base + path, w)
            check(status == 401, "%s with token %r: %d", path, w, status)
            check(hdrs.get("WWW-Authenticate", "").startswith("Bearer"), "%s: %s", path, hdrs)
            check(token.encode() not in body, "a 401 quoted the token")
        status = get(base + path, headers={"Authorization": "Basic " + token})[0]
        check(status == 401, "%s with Basic: %d", path, status)
        status = get(base + path + "?token=" + token[:-1])[0]
        check(status == 401, "%s?token=wrong: %d", path, status)
    # ?token= is for opening the page only; the JSON and /metrics want the header.
    for path in ["/metrics", "/_profilis/metrics.json", "/_profilis/errors.json"]:
        check(get(base + path + "?token=" + token)[0] == 401, "%s took ?token=", path)


def check_served(base, token, sent):
    for path in ["/metrics"] + PAGE_PATHS:
        status, _, _ = get(base + path, token)
        check(status == 200, "%s with the token: %d", path, status)
    check(get(base + "/nope", token)[0] == 404, "unknown path with the token")
    check(get(base + "/metrics", token, method="POST")[0] == 405, "POST /metrics")
    check(get(base + "/metrics", headers={"Authorization": "bearer  " + token + " "})[0] == 200,
          "scheme is case-insensitive, spaces ignored")
    status, body, hdrs = get(base + "/_profilis/?token=" + token)
    check(status == 200 and hdrs["Content-Type"].startswith("text/html"), "page: %d", status)
    csp = hdrs.get("Content-Security-Policy", "")
    check("default-src 'none'" in csp and "connect-src 'self'" in csp, "CSP: %s", csp)
    own = body.replace(b"http://www.w3.org/2000/svg", b"")  # a namespace name, not fetched
    check(b"http://" not in own and b"https://" not in own and b"//" not in own.replace(
        b"://", b""), "the page refers to another site")
    doc = json.loads(get(base + "/_profilis/metrics.json", token)[1])
    check(doc["count"] == sent, "metrics.json count %s, sent %d", doc["count"], sent)
    for k in ("rps", "error_pct", "p50", "p95", "p99", "spark", "routes", "services", "errors"):
        check(k in doc, "metrics.json lacks %s", k)
    errs = json.loads(get(base + "/_profilis/errors.json", token)[1])
    check(errs["errors"] == doc["errors"] and errs["errors_total"] == 2, "errors.json: %s", errs)
    deadline = time.time() + 5  # the main loop publishes its counters once a second
    while True:
        agent = json.loads(get(base + "/_profilis/agent.json", token)[1])
        if agent["events"] >= sent or time.time() > deadline:
            break
        time.sleep(0.2)
    check(agent["traced_processes"] == 2 and agent["events"] == sent and
          sum(agent["lost"].values()) == 0, "agent.json: %s", agent)


def test_token_guards_every_path():
    token = "tok-" + secrets.token_hex(12)
    with Server("gunicorn", python=DEBIAN_PY, workers=1) as srv:
        port = free_port()
        # From the environment, as a DaemonSet passes it (ps does not show it).
        prof = Profiler(srv.pid, ["--http", "127.0.0.1:%d" % port, "-v"],
                        env={"PROFILIS_UI_TOKEN": token})
        base = "http://127.0.0.1:%d" % port
        try:
            send_mix(srv)
            wait_records(prof, MIX_TOTAL)
            check_guarded(base, token)
            check_served(base, token, MIX_TOTAL)
            # The same port again: a clear runtime error, before attaching.
            taken = subprocess.run([BINARY, "-p", str(srv.pid), "--http",
                                    "127.0.0.1:%d" % port], capture_output=True, text=True,
                                   timeout=30)
            check(taken.returncode == 1 and "cannot listen: Address already in use"
                  in taken.stderr and "attached" not in taken.stderr,
                  "port taken: %d %s", taken.returncode, taken.stderr)
            # Beyond loopback: allowed, and said so.
            wide = Profiler(srv.pid, ["--http", "0.0.0.0:0", "-d", "1"])
            wide.stop()
            check("not a loopback address" in wide.stderr() and "without --ui-token"
                  in wide.stderr(), "no warning for 0.0.0.0:\n%s", wide.stderr())
            wide.close()
        finally:
            prof.stop()
            err = prof.stderr()
            prof.close()
    check(token not in err, "the token was logged:\n%s", err)
    check("--ui-token is visible" not in err, "a token from the environment is not in ps")


def test_page_in_chromium():
    check(os.path.isdir(os.path.join(UI_DIR, "node_modules", "playwright-core")),
          "tests/ui-browser has no node_modules: run tools/install-deps")
    token = "tok-" + secrets.token_hex(12)
    os.makedirs(SHOT_DIR, exist_ok=True)
    shot = os.path.join(SHOT_DIR, "web-ui.png")
    with Server("gunicorn", python=DEBIAN_PY, workers=2) as srv:
        port = free_port()
        prof = Profiler(srv.pid, ["--http", "127.0.0.1:%d" % port, "--ui-token", token])
        base = "http://127.0.0.1:%d" % port
        try:
            send_mix(srv, times=2)
            wait_records(prof, 2 * MIX_TOTAL)
            doc = json.loads(get(base + "/_profilis/metrics.json", token)[1])
            out = subprocess.run(["node", os.path.join(UI_DIR, "check.js"),
                                  base + "/_profilis/?token=" + token, shot, "/slow"],
                                 capture_output=True, text=True, timeout=90)
            check(out.returncode == 0, "check.js: %s%s", out.stdout, out.stderr)
            page = json.loads(out.stdout)
            after = json.loads(get(base + "/_profilis/metrics.json", token)[1])
        finally:
            prof.stop()
            prof.close()
    check(page["status"] == 200 and page["statusText"] == "live", "page: %s", page)
    want = sorted((r["method"], r["route"], r["service"] or "", r["count"]) for r in doc["routes"])
    got = sorted((r["method"], r["route"], r["service"], r["count"]) for r in page["rows"])
    check(got == want, "page rows\n %s\nmetrics.json\n %s", got, want)
    check(want == sorted((r["method"], r["route"], r["service"] or "", r["count"])
                         for r in after["routes"]), "metrics.json changed meanwhile")
    check(all(r["shown"] == "{:,}".format(int(r["count"])) for r in page["rows"]),
          "counts shown: %s", page["rows"])
    check(page["totalShown"] == str(2 * MIX_TOTAL), "total shown %s", page["totalShown"])
    check(page["errorsShown"] == 4, "errors shown: %d", page["errorsShown"])
    check(page["hotTitle"] == "GET /slow", "hot functions of %r", page["hotTitle"])
    check("token" not in page["urlAfter"], "the token stayed in the address bar")
    check(all(u.startswith(base + "/_profilis/") for u in page["requests"]),
          "the page fetched from elsewhere: %s", page["requests"])
    check(not page["pageErrors"], "page errors: %s", page["pageErrors"])
    check(page["noTokenStatus"] == 401, "page without token: %d", page["noTokenStatus"])
    log("    %d rows equal metrics.json; screenshot %s" % (len(got), shot))


TESTS = [test_token_guards_every_path, test_prometheus_scrapes_profilis_metrics,
         test_page_in_chromium]
