# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""Where the time goes, against a real app (tests/apps/profiled.py): /mixed
spends ~70 ms on the CPU in burn_cpu() and ~30 ms blocked in wait_io();
/json only does JSON work; /deep/200 recurses past --max-depth.  Checked on
the speedscope file (validated against the schema of the speedscope npm
package), the folded file and the JSONL PROFILE records."""
import json
import os
import re
import subprocess
import tempfile
import time

from harness import DEBIAN_PY, PYENV_311, ROOT, Profiler, Server, check, http, log

HZ = 499
VALIDATOR = os.path.join(ROOT, "tests", "speedscope", "validate.js")


def profiles_by_name(doc):
    return {p["name"]: p for p in doc["profiles"]}


def share(doc, profile, func):
    """Weight share of a profile's stacks that contain a frame named func."""
    frames = doc["shared"]["frames"]
    total = sum(profile["weights"])
    hit = sum(w for s, w in zip(profile["samples"], profile["weights"])
              if any(frames[i]["name"] == func for i in s))
    return hit / total if total else 0.0, total


def names_in(doc, profile):
    frames = doc["shared"]["frames"]
    return {frames[i]["name"] for s in profile["samples"] for i in s}


def run_profiled(server, extra=()):
    # gunicorn's workers import the app after the fork: let that finish, or
    # samples of module bodies (freed right after import) stay <unknown>.
    check(http(server.url("/json")) == 200, "warm-up request failed")
    d = tempfile.mkdtemp(prefix="pbpf-prof-")
    paths = {k: os.path.join(d, k) for k in ("folded.txt", "profile.speedscope.json",
                                             "records.jsonl")}
    prof = Profiler(server.pid, ["-F", str(HZ), "--folded", paths["folded.txt"],
                                 "--speedscope", paths["profile.speedscope.json"],
                                 "-o", paths["records.jsonl"]] + list(extra))
    try:
        for _ in range(25):
            check(http(server.url("/mixed")) == 200, "/mixed failed")
            check(http(server.url("/json")) == 200, "/json failed")
        # A few: one /deep request is short enough to fall between samples.
        for _ in range(5):
            check(http(server.url("/deep/200")) == 200, "/deep failed")
        time.sleep(0.3)
        check(prof.stop() == 0, "exit:\n%s", prof.stderr())
        err = prof.stderr()
    finally:
        prof.close()
    return d, paths, err


def leaf_lines(doc, profile, func):
    """Weight per line of `func` where it is the innermost frame."""
    frames = doc["shared"]["frames"]
    lines = {}
    for s, w in zip(profile["samples"], profile["weights"]):
        leaf = frames[s[-1]] if s else {}
        if leaf.get("name") == func:
            lines[leaf.get("line")] = lines.get(leaf.get("line"), 0) + w
    return lines


def check_frames(doc, label):
    """Every frame names real code: a qualname, a file and a line; no shim
    frames (3.12+ entry frames, 3.13's __init__ clean-up).  A code object
    freed before userspace reads it stays <unknown>: rare, under 1%."""
    frames = doc["shared"]["frames"]
    bad = [f for f in frames if f.get("file") and f["name"] != "<unknown>" and
           (f["file"] == "__init__" or not f.get("line", 0) > 0)]
    check(not bad, "%s: frames that are not real code: %s", label, bad[:5])
    unknown = {i for i, f in enumerate(frames) if f["name"] == "<unknown>"}
    for p in doc["profiles"]:  # per profile: on-CPU weighs samples, off-CPU ns
        total = sum(p["weights"])
        weight = sum(w for s, w in zip(p["samples"], p["weights"]) if unknown & set(s))
        check(weight <= 0.01 * total, "%s: %s: %d of %d weight has unknown frames", label,
              p["name"], weight, total)


def app_line(text):
    """The line number of `text` in tests/apps/profiled.py."""
    with open(os.path.join(ROOT, "tests", "apps", "profiled.py")) as f:
        for n, line in enumerate(f, 1):
            if line.strip() == text:
                return n
    raise AssertionError("%r not in profiled.py" % text)


def check_lines(doc, cpu, off, label):
    """Line numbers come from each version's own line table: burn_cpu's
    samples sit on its loop's two lines, the blocked time on the sleep."""
    loop_at = app_line("while time.perf_counter() < end:")
    sleep_at = app_line("time.sleep(seconds)")
    loop = leaf_lines(doc, cpu, "burn_cpu")
    total = sum(loop.values())
    check(total and (loop.get(loop_at, 0) + loop.get(loop_at + 1, 0)) >= 0.9 * total,
          "%s: burn_cpu samples by line: %s (loop at %d)", label, loop, loop_at)
    sleep = leaf_lines(doc, off, "wait_io")
    check(sleep and set(sleep) == {sleep_at}, "%s: wait_io blocked time by line: %s "
          "(sleep at %d)", label, sleep, sleep_at)


def check_profile(paths, err, label):
    with open(paths["profile.speedscope.json"]) as f:
        doc = json.load(f)
    v = subprocess.run(["node", VALIDATOR, paths["profile.speedscope.json"]],
                       capture_output=True, text=True)
    check(v.returncode == 0, "speedscope schema: %s%s", v.stdout, v.stderr)
    byname = profiles_by_name(doc)
    cpu, off = byname.get("GET /mixed (on-CPU)"), byname.get("GET /mixed (off-CPU)")
    check(cpu and off, "no /mixed profiles: %s", sorted(byname))
    check_frames(doc, label)
    check_lines(doc, cpu, off, label)
    loop, cpu_samples = share(doc, cpu, "burn_cpu")
    sleep, off_ns = share(doc, off, "wait_io")
    # Wall-clock share of the loop: its samples' time over on-CPU + blocked time.
    wall = cpu_samples / HZ + off_ns / 1e9
    loop_wall = loop * cpu_samples / HZ / wall
    # 70% when the worker runs whenever it wants; on this 2-vCPU VM under
    # load, time spent runnable but preempted counts neither as on-CPU nor as
    # blocked, and took the share to 59% once.  Before off-CPU time was
    # weighted at -F it was 94%.
    check(0.50 <= loop_wall <= 0.85, "%s: burn_cpu has %.0f%% of /mixed's time", label,
          100 * loop_wall)
    check(sleep >= 0.9, "%s: wait_io has only %.0f%% of /mixed's blocked time", label,
          100 * sleep)
    check(0.6 <= off_ns / 1e9 <= 1.5, "%s: /mixed blocked %.2f s, 25 x 30 ms expected", label,
          off_ns / 1e9)
    json_names = set()
    for name, p in byname.items():
        if name.startswith("GET /json"):
            json_names |= names_in(doc, p)
    check(json_names and not json_names & {"burn_cpu", "wait_io", "mixed"},
          "%s: /mixed functions under /json: %s", label, json_names & {"burn_cpu", "wait_io"})
    check("encode_payload" in json_names, "%s: encode_payload missing under /json", label)
    deep = byname.get("GET /deep/<int:n> (on-CPU)")
    m = re.search(r"profile: (\d+) stack samples .* (\d+) cut at --max-depth", err)
    lost = re.search(r"\d+ requests recorded, \d+ lost[^;]*", err)
    check(deep and "[truncated]" in names_in(doc, deep), "%s: /deep not truncated: %s", label,
          (sorted(byname), deep and len(deep["samples"]), m and m.group(0),
           lost and lost.group(0)))
    check(m and int(m.group(2)) > 0, "%s: no truncation counted:\n%s", label, err)
    with open(paths["folded.txt"]) as f:
        folded = [l.rsplit(" ", 1) for l in f.read().splitlines()]
    check(all(";" in s and c.isdigit() for s, c in folded), "folded shape")
    check(sum(int(c) for _, c in folded) == int(m.group(1)),
          "%s: folded counts %d != %s samples taken", label,
          sum(int(c) for _, c in folded), m.group(1))
    with open(paths["records.jsonl"]) as f:
        profiles = [r for r in map(json.loads, f) if r["kind"] == "PROFILE"]
    mixed = [r for r in profiles if r["route"] == "/mixed"]
    check(mixed and mixed[-1]["functions"][0]["function"].startswith("burn_cpu"),
          "%s: PROFILE record of /mixed: %s", label, mixed[-1:] or profiles[:1])
    log("    %s: burn_cpu %.0f%% of /mixed wall time, wait_io %.0f%% of its blocked time, "
        "%d samples" % (label, 100 * loop_wall, 100 * sleep, int(m.group(1))))


def cleanup(d):
    for n in os.listdir(d):
        os.unlink(os.path.join(d, n))
    os.rmdir(d)


def test_profile_debian_gunicorn():
    with Server("gunicorn", app="profiled", python=DEBIAN_PY, workers=1) as srv:
        d, paths, err = run_profiled(srv, ["--max-depth", "40"])
    try:
        check_profile(paths, err, "Debian 3.11 static")
    finally:
        cleanup(d)


def test_profile_pyenv_shared_libpython():
    with Server("werkzeug", app="profiled", python=PYENV_311) as srv:
        d, paths, err = run_profiled(srv, ["--max-depth", "40"])
    try:
        check_profile(paths, err, "pyenv 3.11 shared")
    finally:
        cleanup(d)


def mixed_shares(srv, hz):
    """/mixed profiled at -F hz: from its last PROFILE record, the shares of
    its wall time that burn_cpu and wait_io are innermost in, and the share
    on the CPU (samples at -F against blocked time)."""
    check(http(srv.url("/json")) == 200, "warm-up request failed")
    prof = Profiler(srv.pid, ["-F", str(hz)])
    try:
        for _ in range(20):
            check(http(srv.url("/mixed")) == 200, "/mixed failed")
        time.sleep(0.3)
        check(prof.stop() == 0, "exit:\n%s", prof.stderr())
        recs = [r for r in prof.records("PROFILE") if r["route"] == "/mixed"]
    finally:
        prof.close()
    check(recs, "-F %d: no PROFILE record for /mixed", hz)
    rec = recs[-1]
    check(rec["sample_hz"] == hz, "-F %d: the record says %s Hz", hz, rec["sample_hz"])
    fns = {f["function"].split(" (")[0]: f for f in rec["functions"]}
    check("burn_cpu" in fns and "wait_io" in fns, "-F %d: functions %s", hz, sorted(fns))
    cpu_s, off_s = rec["samples"] / hz, rec["offcpu_ns"] / 1e9
    return (fns["burn_cpu"]["own_wall_pct"], fns["wait_io"]["own_wall_pct"],
            100 * cpu_s / (cpu_s + off_s))


def test_offcpu_weight_follows_frequency():
    """Blocked time weighs as what it is at any -F: /mixed (70 ms burning,
    30 ms asleep) splits the same at -F 99 and -F 999 (weighing blocked time
    as if sampling at 100 Hz gave wait_io ~5% at -F 999).  Preemption on
    this 2-vCPU VM adds blocked time, hence the wide bands."""
    with Server("gunicorn", app="profiled", python=DEBIAN_PY, workers=1) as srv:
        got = {hz: mixed_shares(srv, hz) for hz in (99, 999)}
    for hz, (burn, wait, cpu) in got.items():
        check(45 <= burn <= 85 and 15 <= wait <= 50,
              "-F %d: burn_cpu %.1f%%, wait_io %.1f%% of /mixed's wall time (70/30 expected)",
              hz, burn, wait)
        check(45 <= cpu <= 85, "-F %d: /mixed is %.1f%% on the CPU (70%% expected)", hz, cpu)
    (b1, w1, c1), (b2, w2, c2) = got[99], got[999]
    check(abs(w1 - w2) <= 10 and abs(c1 - c2) <= 10,
          "wait_io %.1f%% at -F 99 but %.1f%% at -F 999; CPU share %.1f%% vs %.1f%%",
          w1, w2, c1, c2)
    log("    /mixed at -F 99: burn_cpu %.1f%%, wait_io %.1f%%; at -F 999: %.1f%%, %.1f%%"
        % (b1, w1, b2, w2))


def test_scanner_paths_are_one_route():
    """A 404 scanner (every request a new path) makes one "(unmatched)" route
    in the profile and in the statistics, not a route per path; the JSONL
    REQ records keep each raw path."""
    d = tempfile.mkdtemp(prefix="pbpf-scan-")
    stats = os.path.join(d, "metrics.json")
    try:
        with Server("gunicorn", app="profiled", python=DEBIAN_PY, workers=1) as srv:
            check(http(srv.url("/json")) == 200, "warm-up request failed")
            prof = Profiler(srv.pid, ["-F", "999", "--stats-json", stats, "-i", "0.3"])
            try:
                for i in range(300):
                    check(http(srv.url("/scan/%d/x.php" % i)) == 404, "not a 404")
                check(http(srv.url("/json")) == 200, "/json failed")
                time.sleep(1)
                check(prof.stop() == 0, "exit:\n%s", prof.stderr())
                reqs, profiles = prof.records("REQ"), prof.records("PROFILE")
            finally:
                prof.close()
        with open(stats) as f:
            doc = json.load(f)
    finally:
        cleanup(d)
    check(len({r["route"] for r in reqs if r["status"] == 404}) == 300,
          "REQ records keep the raw paths")
    rows = {(r["method"], r["route"]): r["count"] for r in doc["routes"]}
    check(rows.get(("GET", "(unmatched)")) == 300 and len(rows) == 2,
          "statistics rows: %s", rows)
    routes = {p["route"] for p in profiles}
    check("(unmatched)" in routes and not any(r.startswith("/scan/") for r in routes),
          "PROFILE routes: %s", sorted(routes)[:10])
    log("    300 scanned paths: 1 statistics row, PROFILE routes %s" % sorted(routes))


TESTS = [test_profile_debian_gunicorn, test_profile_pyenv_shared_libpython,
         test_offcpu_weight_follows_frequency, test_scanner_paths_are_one_route]
