# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""The node-agent section of `make bench` (tools/bench runs it; BENCH_NODE=0
skips it, BENCH_ONLY_NODE=1 runs only it): one `profilis-bpf --all -o DIR`
with its default options (request records, stacks at 99 Hz, off-CPU stacks)
on a host running NODE_FLASK Flask processes of mixed CPython versions.

Targets, all started before the agent, which finds them by its /proc scan:
two werkzeug threaded servers (tests/apps/shop.py) on each pyenv build 3.9 to
3.13, and two Debian /usr/bin/gunicorn (python3.11) masters with 5 sync workers
each: 20 Flask processes, plus 2 masters that never import Flask.

Load: one wrk per listening port (12 in parallel, -t1, as many connections as
the server has workers, at least 2) on /users/7 for BENCH_NODE_SECONDS (default
20).  Reported: the agent's peak RSS (ru_maxrss from wait4) and its VmRSS
sampled every 0.5 s (median of the second half of the load: the steady value);
its CPU (utime+stime from /proc) over 3 s with the servers idle, and over
the load window per request recorded;
REQ records written by our 20 processes against wrk's requests, per server
kind; and, where kernel.bpf_stats_enabled can be switched on for the load
window, each BPF program's runs and run time read from the agent's own
program file descriptors (/proc/AGENT/fdinfo), summed per request.  The
sampler and sched_switch programs run for every task on the node, not only
our servers, so their share per request is an upper bound.

Untraced process: a CPython that is not a Flask service (Debian python3.11,
a fresh process each run, started after the agent: the exec hook finds it)
times 200,000 ContextVar set+reset pairs and 3,000,000 calls of a one-line
function with process_time, in BENCH_ROUNDS rounds of three rotated arms: no
agent, the --all agent (it admits the process into the traced set, so each
ContextVar call traps and has its variable's name read and compared with
Flask's; it is never stack-sampled because it never served a request), and
an agent given `-p` of a gunicorn master (the process is outside the traced
set, as a selector that excludes it would leave it: each ContextVar call
traps and is turned away by one map lookup).  Medians per arm, the added ns
per ContextVar call and the function-call ratio.  The agent runs with -v in
these arms only so that its log shows whether it admitted the process.

This 2-vCPU VM is shared: other sessions' test suites start Python processes
that the --all agent traces too (their records are counted as strays and left
out), and another profilis-bpf's uprobes tax every process that uses the same
interpreter file; runs it overlaps are flagged and left out of the medians
where two clean ones remain.  Default run time: about 2 minutes."""
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
# The integration tests' recipe for starting each pyenv build with a Flask it
# can import (PYTHONPATH symlink directories): one recipe, not two.
from harness import APPS, DEBIAN_PY, PYENV, free_port, python_env, wait_port  # noqa: E402

import bench_common  # noqa: E402  (tools/, beside this file)
from bench_bpfstats import BpfStats, diff_progs, prog_names, prog_stats  # noqa: E402,F401

GUNICORN = "/usr/bin/gunicorn"
WRK = "/usr/bin/wrk"
PATH = "/users/7"
# (label, kind, python, how many, workers per server)
FLEET = [("werkzeug 3.9", "werkzeug", PYENV["3.9"], 2, 1),
         ("werkzeug 3.10", "werkzeug", PYENV["3.10"], 2, 1),
         ("werkzeug 3.11", "werkzeug", PYENV["3.11"], 2, 1),
         ("werkzeug 3.12", "werkzeug", PYENV["3.12"], 2, 1),
         ("werkzeug 3.13", "werkzeug", PYENV["3.13"], 2, 1),
         ("gunicorn 3.11 (Debian)", "gunicorn", DEBIAN_PY, 2, 5)]
NODE_FLASK = sum(n * w for _, _, _, n, w in FLEET)
PAIRS, CALLS = 200000, 3000000
RUNNING = bench_common.RUNNING  # agents to stop if the bench fails or is interrupted
SETTLE = 1.0  # s after the agent is ready, before the load: its start-up is not per request
IDLE = 3.0  # s of the agent's CPU with the servers idle: what it costs without requests

# Not Flask: sleeps first so that a node agent has admitted it (exec hook,
# then /proc/PID/maps) before the clock starts; process_time excludes sleep.
NOT_FLASK = r'''
import contextvars, sys, time
time.sleep(0.3)
v = contextvars.ContextVar("bench.not_flask")
def f(i):
    return i
pairs, calls = int(sys.argv[1]), int(sys.argv[2])
t = time.process_time_ns()
for i in range(pairs):
    v.reset(v.set(i))
cv = (time.process_time_ns() - t) / pairs
t = time.process_time_ns()
for i in range(calls):
    f(i)
print(cv, (time.process_time_ns() - t) / calls)
'''


# ---- the 20 Flask processes ----------------------------------------------

class Fleet:
    """The servers, each its own process group, all killed on exit."""

    def __init__(self, tmp):
        self.servers = []  # dicts: label, proc, port, workers
        self.log = open(os.path.join(tmp, "servers.log"), "w")
        env_extra = {"PYTHONDONTWRITEBYTECODE": "1"}
        for label, kind, python, count, workers in FLEET:
            for _ in range(count):
                port = free_port()
                if kind == "werkzeug":
                    argv = [python, os.path.join(APPS, "shop.py"), str(port)]
                else:
                    argv = [GUNICORN, "-w", str(workers), "-b", f"127.0.0.1:{port}",
                            "--graceful-timeout", "2", "shop:app"]
                proc = subprocess.Popen(argv, cwd=APPS, env=dict(python_env(python), **env_extra),
                                        stdout=self.log, stderr=subprocess.STDOUT,
                                        start_new_session=True)
                self.servers.append({"label": label, "proc": proc, "port": port,
                                     "workers": workers})

    def wait_up(self):
        deadline = time.monotonic() + 60
        for s in self.servers:
            wait_port(s["port"], s["proc"], timeout=max(1, deadline - time.monotonic()))
            while s["workers"] > 1 and len(children(s["proc"].pid)) < s["workers"]:
                if time.monotonic() > deadline:
                    sys.exit(f"bench: {s['label']} on port {s['port']}: workers missing")
                time.sleep(0.1)
            for _ in range(3):  # first requests: lazy imports and caches
                get(s["port"])

    def pids(self):
        """PID -> label of every process of ours: masters and workers."""
        out = {}
        for s in self.servers:
            for pid in [s["proc"].pid] + children(s["proc"].pid):
                out[pid] = s["label"]
        return out

    def flask_pids(self):
        return {pid for s in self.servers for pid in
                (children(s["proc"].pid) if s["workers"] > 1 else [s["proc"].pid])}

    def stop(self):
        for s in self.servers:
            try:
                os.killpg(s["proc"].pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            s["proc"].wait(10)
        self.log.close()


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(p) for p in f.read().split()]
    except OSError:
        return []


def get(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{PATH}", timeout=5) as r:
            r.read()
    except OSError:
        pass


# ---- the agent -------------------------------------------------------------

class Agent(bench_common.ToolRun):
    """profilis-bpf --all (or other arguments), reaped with wait4 for rusage."""

    def __init__(self, tool, args, ready_text):
        super().__init__(tool, args, ready_text, timeout=60)


def proc_status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0





def wrk_all(fleet, seconds):
    """One wrk per port, all at once; returns {label: requests} and errors."""
    procs = []
    for s in fleet.servers:
        conns = max(2, s["workers"])
        procs.append((s, subprocess.Popen(
            [WRK, "-t1", f"-c{conns}", f"-d{seconds}s", f"http://127.0.0.1:{s['port']}{PATH}"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)))
    sent, errors = {}, []
    for s, p in procs:
        out = p.communicate()[0]
        m = re.search(r"(\d+) requests in", out)
        if not m:
            sys.exit(f"bench: cannot parse wrk output:\n{out}")
        sent[s["label"]] = sent.get(s["label"], 0) + int(m.group(1))
        for pat in (r"Non-2xx or 3xx responses: (\d+)", r"Socket errors: (.*)"):
            e = re.search(pat, out)
            if e:
                errors.append(f"{s['label']} :{s['port']}: {e.group(0)}")
    return sent, errors


def count_records(outdir, pids):
    """REQ records in the agent's JSONL directory: per label of ours, the
    distinct PIDs of ours that have records, and the strays."""
    per_label, seen, strays = {}, set(), 0
    pid_re = re.compile(r'"pid":(\d+)')
    for name in os.listdir(outdir):
        with open(os.path.join(outdir, name), errors="replace") as f:
            for line in f:
                if '"kind":"REQ"' not in line:
                    continue
                pid = int(pid_re.search(line).group(1))
                if pid in pids:
                    per_label[pids[pid]] = per_label.get(pids[pid], 0) + 1
                    seen.add(pid)
                else:
                    strays += 1
    return per_label, seen, strays


def rss_sampler(pid, samples, done):
    while not done.wait(0.5):
        try:
            samples.append(proc_status_kib(pid, "VmRSS"))
        except OSError:
            return


def bench_load(b, fleet, tool, tmp, seconds):
    outdir = os.path.join(tmp, "jsonl")
    os.mkdir(outdir)
    b.wait_quiet({os.getpid()})
    agent = Agent(tool, ["--all", "-o", outdir], "tracing every CPython on this node")
    found = re.search(r"on this node: (\d+) now", "".join(agent.lines))
    start_cpu = b.cpu_seconds([agent.proc.pid])
    time.sleep(SETTLE)
    idle0 = b.cpu_seconds([agent.proc.pid])
    time.sleep(IDLE)
    idle_cpu = b.cpu_seconds([agent.proc.pid]) - idle0
    samples, done = [], threading.Event()
    sampler = threading.Thread(target=rss_sampler, args=(agent.proc.pid, samples, done),
                               daemon=True)
    with BpfStats() as stats, b.ForeignWatch({os.getpid(), agent.proc.pid}) as watch:
        progs0 = prog_stats(agent.proc.pid) if stats.ok else {}
        cpu0 = b.cpu_seconds([agent.proc.pid])
        sampler.start()
        sent, errors = wrk_all(fleet, seconds)
        time.sleep(0.5)  # the collector drains every 100 ms: let the tail be written
        cpu1 = b.cpu_seconds([agent.proc.pid])
        progs1 = prog_stats(agent.proc.pid) if stats.ok else {}
        names = prog_names(progs1)  # while the agent still holds them
        done.set()
        sampler.join()
    pids = fleet.pids()
    ru = agent.stop()
    per_label, seen, strays = count_records(outdir, pids)
    lost = re.search(r"(\d+) lost", agent.err)
    stacks = re.search(r"profile: (\d+) stack samples .*?, (\d+) blocked stacks", agent.err)
    half = samples[len(samples) // 2:] or [0]
    return {"sent": sent, "records": per_label, "seen": seen & fleet.flask_pids(),
            "strays": strays, "errors": errors, "foreign": bool(watch.seen),
            "found": int(found.group(1)) if found else -1, "start_s": agent.start_s,
            "start_cpu": start_cpu, "idle_cpu": idle_cpu, "cpu": cpu1 - cpu0, "seconds": seconds,
            "peak_kib": ru.ru_maxrss, "steady_kib": statistics.median(half),
            "total_cpu": ru.ru_utime + ru.ru_stime,
            "lost": int(lost.group(1)) if lost else -1,
            "stack_samples": int(stacks.group(1)) if stacks else 0,
            "blocked": int(stacks.group(2)) if stacks else 0,
            "progs": diff_progs(progs0, progs1, names)}




# ---- the process that is not Flask -------------------------------------------

def not_flask_run(b, agent_pid=None):
    own = {os.getpid()} | ({agent_pid} if agent_pid else set())
    b.wait_quiet(own)
    with b.ForeignWatch(own) as watch:
        p = subprocess.Popen([DEBIAN_PY, "-c", NOT_FLASK, str(PAIRS), str(CALLS)],
                             stdout=subprocess.PIPE, text=True)
        out = p.communicate()[0]
    if p.returncode != 0:
        sys.exit(f"bench: the process that is not Flask failed ({p.returncode})")
    cv, fc = (float(x) for x in out.split())
    return {"pair_ns": cv, "call_ns": fc, "pid": p.pid, "foreign": bool(watch.seen)}


def bench_not_flask(b, fleet, tool):
    master = next(s["proc"].pid for s in fleet.servers if s["workers"] > 1)
    arms = [("no agent", None, None),
            ("--all (admitted, never sampled)", ["-v", "--all"],
             "tracing every CPython on this node"),
            ("-p other (outside the traced set)", ["-v", "-p", str(master)], "attached to PID")]
    runs = {label: [] for label, _, _ in arms}
    for i in range(b.ROUNDS):
        k = i % len(arms)
        for label, args, ready in arms[k:] + arms[:k]:
            if args is None:
                runs[label].append(not_flask_run(b))
                continue
            agent = Agent(tool, args, ready)
            r = not_flask_run(b, agent.proc.pid)
            agent.stop()
            # A child of this script (a CPython, so traced under --all) is in
            # the set from its fork and traced again at its exec.
            r["admitted"] = (f"tracing PID {r['pid']} " in agent.err or
                             f"PID {r['pid']} exec'd CPython" in agent.err)
            runs[label].append(r)
        b.log(f"  round {i + 1}/{b.ROUNDS}: " + "  ".join(
            f"{label.split(' (')[0]} {runs[label][-1]['pair_ns']:.0f} ns/pair "
            f"{runs[label][-1]['call_ns']:.1f} ns/call"
            + (" [another profilis-bpf ran]" if runs[label][-1]["foreign"] else "")
            for label, _, _ in arms))
    return runs


# ---- the report ----------------------------------------------------------------

def report_load(b, r):
    log = b.log
    sent, recs = sum(r["sent"].values()), sum(r["records"].values())
    mib = lambda kib: kib / 1024
    log("")
    log(f"Node agent: one `profilis-bpf --all -o DIR` (defaults: request records, stacks at "
        f"99 Hz, off-CPU stacks) over {NODE_FLASK} Flask processes on 5 CPython versions "
        f"(10 werkzeug threaded servers, 3.9 to 3.13, two each; 2 Debian gunicorn 3.11 "
        f"masters x 5 sync workers), all started before it; one wrk -t1 per port on {PATH} "
        f"for {r['seconds']} s:")
    log("")
    log("| agent | value |")
    log("|---|---:|")
    log(f"| CPython processes found at start (ours: {NODE_FLASK} + 2 masters + this script) | {r['found']} |")
    log(f"| start-up: to 'tracing every CPython' / its CPU | {r['start_s']:.2f} s / "
        f"{r['start_cpu'] * 1e3:.0f} ms |")
    log(f"| requests sent (wrk) / REQ records written | {sent:,} / {recs:,} "
        f"({recs / max(1, sent):.4f}) |")
    log(f"| Flask processes with records | {len(r['seen'])} of {NODE_FLASK} |")
    log(f"| agent CPU with the servers idle ({IDLE:.0f} s) | "
        f"{100 * r['idle_cpu'] / IDLE:.1f} % of one CPU |")
    log(f"| load | {sent / r['seconds']:,.0f} req/s over the 20 |")
    log(f"| agent CPU during the load (utime+stime) | {r['cpu']:.2f} s = "
        f"{100 * r['cpu'] / r['seconds']:.1f} % of one CPU |")
    log(f"| **agent CPU per request** | **{r['cpu'] / max(1, recs) * 1e6:.1f} µs** |")
    log(f"| agent RSS: peak (ru_maxrss) / steady VmRSS (median, 2nd half) | "
        f"{mib(r['peak_kib']):.1f} MiB / {mib(r['steady_kib']):.1f} MiB |")
    log(f"| stack samples / blocked stacks recorded | {r['stack_samples']:,} / "
        f"{r['blocked']:,} |")
    log("")
    log("| server kind | processes | wrk requests | REQ records |")
    log("|---|---:|---:|---:|")
    for label, _, _, n, w in FLEET:
        log(f"| {label} | {n * w} | {r['sent'].get(label, 0):,} | "
            f"{r['records'].get(label, 0):,} |")
    if r["progs"]:
        log("")
        log(f"BPF programs during the load (kernel.bpf_stats_enabled, from the agent's "
            f"program fds), per request = run time / {recs:,} records:")
        log("")
        log("| program | runs | runs/s | runs per request | µs/run | µs per request |")
        log("|---|---:|---:|---:|---:|---:|")
        total = 0
        for name, (ns, cnt) in sorted(r["progs"].items(), key=lambda kv: -kv[1][0]):
            total += ns
            log(f"| {name} | {cnt:,} | {cnt / r['seconds']:,.0f} | {cnt / max(1, recs):.2f} | "
                f"{ns / max(1, cnt) / 1e3:.2f} | {ns / max(1, recs) / 1e3:.2f} |")
        log(f"| **all** | | | | | **{total / max(1, recs) / 1e3:.1f}** |")
    else:
        log("")
        log("(kernel.bpf_stats_enabled could not be switched on: no BPF run times)")
    log("")
    log(f"Machine: {b.machine()}, shared and noisy; the servers, 12 wrk and the agent share "
        "2 vCPUs. Records exceed wrk's count by the requests in flight when each wrk stops "
        f"(not counted by wrk). Lost: {r['lost']}. Records from other processes on this "
        f"host (other sessions' tests; --all traces them too), left out: {r['strays']}. "
        "The programs run for every task on the node (on_switch at each context switch, "
        "on_cpu_sample at 99 Hz per CPU, the exec/fork/exit hooks, ctxvar_* in every "
        "CPython), so their share per request is an upper bound."
        + (" Another profilis-bpf ran during the load (its uprobes tax every process "
           "using the same interpreter file)." if r["foreign"] else
           " No other profilis-bpf ran during the load.")
        + ("" if not r["errors"] else " wrk: " + "; ".join(r["errors"][:4])))


def report_not_flask(b, runs):
    log = b.log
    labels = list(runs)
    med = lambda label, key: statistics.median(x[key] for x in b.clean(runs[label]))
    pb, cb = med(labels[0], "pair_ns"), med(labels[0], "call_ns")
    log("")
    log(f"A CPython that is not Flask on the same host (Debian python3.11, fresh each run, "
        f"{PAIRS:,} ContextVar set+reset pairs and {CALLS:,} function calls timed with "
        f"process_time; the {NODE_FLASK} servers idle), median of {b.ROUNDS} rounds of "
        f"{len(labels)} rotated arms:")
    log("")
    log("| agent | ns per ContextVar pair | added ns per ContextVar call | ns per function call "
        "| function-call ratio | admitted to the traced set |")
    log("|---|---:|---:|---:|---:|---:|")
    for label in labels:
        p, c = med(label, "pair_ns"), med(label, "call_ns")
        adm = ("–" if label == labels[0] else
               f"{sum(x.get('admitted', False) for x in runs[label])} of {len(runs[label])}")
        log(f"| {label} | {p:.0f} | {'–' if label == labels[0] else f'+{(p - pb) / 2:.0f}'} | "
            f"{c:.1f} | {c / cb:.3f} | {adm} |")
    tainted = sum(x["foreign"] for label in labels for x in runs[label])
    log("")
    log("Under --all every CPython is admitted, Flask or not: its ContextVar calls each "
        "take a uprobe trap and a read of the variable's name (compared with Flask's), "
        "and nothing more (PyContextVar_Set/Reset: ContextVar.set and .reset, decimal's "
        "context switches); it is never stack-sampled (only processes that served a Flask "
        "request are), so code without ContextVar calls pays only the 99 Hz sampler "
        "interrupt that returns at once (the function-call column). Outside the traced "
        "set (-p here; a selector would do the same) a ContextVar call still traps, on "
        "an interpreter file the agent has probed, and is turned away by one map lookup; "
        "a Python whose interpreter file no selected process uses pays nothing."
        + (f" {tainted} of {len(labels) * b.ROUNDS} runs overlapped another profilis-bpf "
           "(left out of the medians where two clean ones remain)." if tainted else
           " No other profilis-bpf ran during any measurement."))


# ---- entry point -----------------------------------------------------------------

def run(b, profilis):
    """b: the tools/bench module (log, ROUNDS, cpu_seconds, ForeignWatch,
    wait_quiet, machine)."""
    seconds = b.env_int("BENCH_NODE_SECONDS", 20, 1)
    for path in (GUNICORN, WRK, *(py for _, _, py, _, _ in FLEET)):
        if not os.access(path, os.X_OK):
            sys.exit(f"bench: {path} is missing: run make deps")
    tmp = tempfile.mkdtemp(prefix="profilis-bench-node.")
    fleet = None
    try:
        tool = os.path.join(tmp, "profilis-bpf")  # a private copy, as in tools/bench
        shutil.copy2(profilis, tool)
        t0 = time.monotonic()
        fleet = Fleet(tmp)
        fleet.wait_up()
        b.log(f"node agent: {NODE_FLASK} Flask processes up in {time.monotonic() - t0:.1f} s; "
              f"load {seconds} s, then {b.ROUNDS} rounds x 3 arms of a process that is not Flask")
        load = bench_load(b, fleet, tool, tmp, seconds)
        runs = bench_not_flask(b, fleet, tool)
    finally:
        for proc in list(RUNNING):
            proc.send_signal(signal.SIGINT)
            proc.wait(10)
        if fleet:
            fleet.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    report_load(b, load)
    report_not_flask(b, runs)
