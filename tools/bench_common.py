# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""The machinery every section of `make bench` shares (tools/bench says what
is measured): the knobs read from the environment, a gunicorn serving the
two-route bench app on one CPython, wrk runs with the workers' CPU time per
request, profilis-bpf attached and reaped with wait4 for its rusage (and,
on request, the run time of its BPF programs from kernel.bpf_stats_enabled),
and the watch for another profilis-bpf on the machine, whose system-wide
uprobes would tax the baseline too."""
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

import bench_bpfstats

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from harness import DEBIAN_PY, PYENV, python_env  # noqa: E402

# BENCH_PROFILIS compares another build of the tool against the same server.
PROFILIS = os.environ.get("BENCH_PROFILIS", os.path.join(ROOT, "profilis-bpf"))
GUNICORN = "/usr/bin/gunicorn"  # Debian's: /usr/bin/python3.11 with Flask 2.2.2
PYTHON = DEBIAN_PY  # the interpreter Debian's gunicorn runs on
WRK = "/usr/bin/wrk"
CLK_TCK = os.sysconf("SC_CLK_TCK")

BENCH_APP = '''\
import time
from flask import Flask

app = Flask(__name__)


@app.route("/")
def hello():
    return "ok"


@app.route("/sleep2ms")
def sleep2ms():
    time.sleep(0.002)
    return "ok"
'''
ROUTES = [("hello world", "/"), ("~2 ms (sleep)", "/sleep2ms")]


def env_int(name, default, low):
    raw = os.environ.get(name, str(default))
    if not raw.isdigit() or int(raw) < low:
        sys.exit(f"bench: {name} must be an integer >= {low}, got {raw!r}")
    return int(raw)


ROUNDS = env_int("BENCH_ROUNDS", 5, 1)
SECONDS = env_int("BENCH_SECONDS", 5, 1)
WORKERS = env_int("BENCH_WORKERS", 2, 1)
SAMPLING = env_int("BENCH_SAMPLING", 1, 0) > 0
PIPELINE = env_int("BENCH_PIPELINE", 1, 0) > 0
BENCH_PIPELINE = os.path.join(ROOT, ".output", "bench-pipeline")
STACKS = env_int("BENCH_STACKS", 1, 0) > 0
# Only the stack sampler's section (BENCH_ONLY_STACKS=1): quicker to repeat.
ONLY_STACKS = env_int("BENCH_ONLY_STACKS", 0, 0) > 0
UNTRACED = env_int("BENCH_UNTRACED", 1, 0) > 0
NODE = env_int("BENCH_NODE", 1, 0) > 0
# The CPythons the gunicorn comparison runs on: "debian3.11" is Debian's
# python3.11 with its gunicorn, the others pyenv builds running the same
# gunicorn (tests/integration/harness.py's flask_path lends it).
VERSIONS = os.environ.get("BENCH_VERSIONS", "debian3.11 3.13").split()
for _v in VERSIONS:
    if _v != "debian3.11" and _v not in PYENV:
        sys.exit(f"bench: BENCH_VERSIONS: unknown version {_v!r}; known: debian3.11 "
                 + " ".join(PYENV))
ONLY_NODE = env_int("BENCH_ONLY_NODE", 0, 0) > 0
THREADS, CONNECTIONS = 2, 8


def log(msg):
    print(msg, flush=True)


# ---- the server ---------------------------------------------------------

def python_of(version):
    return PYTHON if version == "debian3.11" else PYENV[version]


def start_gunicorn(tmp, version="debian3.11"):
    """Debian's gunicorn on the CPython `version` names (see VERSIONS)."""
    with open(os.path.join(tmp, "bench_app.py"), "w") as f:
        f.write(BENCH_APP)
    logf = open(os.path.join(tmp, "gunicorn.log"), "w+")
    python = python_of(version)
    launcher = [GUNICORN] if python == PYTHON else [python, "-m", "gunicorn"]
    # Port 0: the kernel picks a free port, gunicorn logs which.
    proc = subprocess.Popen(
        launcher + ["--workers", str(WORKERS), "--worker-class", "sync",
                    "--bind", "127.0.0.1:0", "--chdir", tmp, "--log-level", "warning",
                    "--error-logfile", "-", "bench_app:app"],
        stdout=logf, stderr=subprocess.STDOUT,
        env=dict(python_env(python), PYTHONDONTWRITEBYTECODE="1"))
    # --log-level warning hides "Listening at", so find the port from /proc.
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        port = listening_port(proc.pid)
        if port and len(worker_pids(proc.pid)) == WORKERS and answers(port):
            return proc, port
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    logf.seek(0)
    proc.kill()
    sys.exit(f"bench: gunicorn on {version} ({python}) did not come up within 20 s:\n{logf.read()}")


def listening_port(pid):
    """The TCP port of the listening socket owned by pid, or None."""
    inodes = set()
    fd_dir = f"/proc/{pid}/fd"
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            cols = line.split()
            if cols[3] == "0A" and cols[9] in inodes:  # 0A: TCP_LISTEN
                return int(cols[1].split(":")[1], 16)
    return None


def answers(port, path="/"):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def worker_pids(master):
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == master:  # field 4, ppid
                pids.append(int(name))
    return pids


def cpu_seconds(pids):
    """utime + stime of pids; uprobe traps run in the worker's kernel time."""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # fields 14 and 15
    return total / CLK_TCK


# ---- one measurement ----------------------------------------------------

def wrk(port, path, seconds=SECONDS):
    out = subprocess.run(
        [WRK, f"-t{THREADS}", f"-c{CONNECTIONS}", f"-d{seconds}s",
         f"http://127.0.0.1:{port}{path}"],
        check=True, capture_output=True, text=True).stdout
    m = re.search(r"(\d+) requests in ([\d.]+)(m?s)", out)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    if not m or not rps:
        sys.exit(f"bench: cannot parse wrk output:\n{out}")
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: (.*)", out)
    return {"rps": float(rps.group(1)), "requests": int(m.group(1)),
            "non2xx": int(bad.group(1)) if bad else 0,
            "socket_errors": sock.group(1) if sock else ""}


def foreign_tracers(own):
    """PIDs of profilis-bpf processes that are not ours.  Its uprobes are set on
    the interpreter binary for every process (BPF filters by PID afterwards),
    so another instance, e.g. a test suite, makes our baseline trap too."""
    found = set()
    for name in os.listdir("/proc"):
        if name.isdigit() and int(name) not in own:
            try:
                with open(f"/proc/{name}/comm") as f:
                    if f.read().strip() == "profilis-bpf":
                        found.add(int(name))
            except OSError:
                continue
    return found


class ForeignWatch:
    """Notes every foreign profilis-bpf seen while a measurement runs."""

    def __init__(self, own):
        self.own, self.seen, self.done = own, set(), threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join()

    def _poll(self):
        while True:
            self.seen |= foreign_tracers(self.own)
            if self.done.wait(0.25):
                return


QUIET_WAIT_BUDGET = [60.0]  # seconds, for the whole bench: keep it bounded


def wait_quiet(own):
    """Waits until no other profilis-bpf runs, so runs start clean, spending at
    most QUIET_WAIT_BUDGET over the whole bench."""
    if not foreign_tracers(own) or QUIET_WAIT_BUDGET[0] <= 0:
        return
    log(f"  waiting (at most {QUIET_WAIT_BUDGET[0]:.0f} s in all) for another "
        "profilis-bpf on this machine to finish")
    start = time.monotonic()
    while foreign_tracers(own) and time.monotonic() - start < QUIET_WAIT_BUDGET[0]:
        time.sleep(0.5)
    QUIET_WAIT_BUDGET[0] -= time.monotonic() - start


def measure(master, port, path, own=()):
    """One wrk run, with the workers' CPU time per request; 'foreign' tells
    whether another profilis-bpf (system-wide uprobes) overlapped it."""
    own = {os.getpid(), *own}
    wait_quiet(own)
    workers = worker_pids(master)
    cpu0 = cpu_seconds(workers)
    with ForeignWatch(own) as watch:
        r = wrk(port, path)
    r["worker_cpu_us"] = (cpu_seconds(workers) - cpu0) / r["requests"] * 1e6
    r["foreign"] = bool(watch.seen)
    return r


RUNNING = set()  # profilis-bpf processes to stop if the bench is interrupted


class ToolRun:
    """profilis-bpf with `args`, ready once its stderr says `ready_text`;
    stop() sends SIGINT, reaps it with wait4 and returns its rusage, its
    stderr in .err.  Either ends the bench when profilis-bpf fails."""

    def __init__(self, tool, args, ready_text, timeout=30):
        self.lines, self.ready = [], threading.Event()
        self.ready_text = ready_text
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen([tool, *args], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True)
        RUNNING.add(self.proc)
        self.reader = threading.Thread(target=self._read_stderr, daemon=True)
        self.reader.start()
        if not self.ready.wait(timeout) or self.proc.poll() is not None:
            self.proc.kill()
            RUNNING.discard(self.proc)
            sys.exit(f"bench: profilis-bpf did not start within {timeout} s:\n"
                     + "".join(self.lines))
        self.start_s = time.monotonic() - self.t0

    def _read_stderr(self):
        for line in self.proc.stderr:
            self.lines.append(line)
            if self.ready_text in line:
                self.ready.set()
        self.ready.set()  # exited early: let __init__ see the failure

    def stop(self):
        self.proc.send_signal(signal.SIGINT)
        _, status, ru = os.wait4(self.proc.pid, 0)
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        RUNNING.discard(self.proc)
        self.reader.join(5)
        self.err = "".join(self.lines)
        if self.proc.returncode != 0:
            sys.exit(f"bench: profilis-bpf exited with status {self.proc.returncode} "
                     f"(negative: killed by that signal):\n{self.err}")
        return ru


class Profilis(ToolRun):
    """profilis-bpf attached to the master, writing JSONL; stop() returns
    what the run counted."""

    def __init__(self, tool, master, jsonl, args=()):
        self.jsonl = jsonl
        super().__init__(tool, ["-v", "-p", str(master), "-o", jsonl, *args], "attached")

    def stop(self):
        ru = super().stop()
        err = self.err
        with open(self.jsonl) as f:
            records = sum(1 for line in f if '"kind":"REQ"' in line)
        os.unlink(self.jsonl)
        lost = re.search(r"(\d+) lost", err)
        traps = re.search(r"(\d+) context-var traps", err)
        unsampled = re.search(r"(\d+) sampled out", err)
        stacks = re.search(r"profile: (\d+) stack samples .*?, (\d+) blocked stacks", err)
        return {"records": records, "lost": int(lost.group(1)) if lost else -1,
                "stack_samples": int(stacks.group(1)) if stacks else 0,
                "blocked_stacks": int(stacks.group(2)) if stacks else 0,
                "traps": int(traps.group(1)) if traps else 0,
                "unsampled": int(unsampled.group(1)) if unsampled else -1,
                "rss_kib": ru.ru_maxrss, "cpu_s": ru.ru_utime + ru.ru_stime}


def measure_instrumented(master, port, path, tmp, tool, args=(), bpf=False):
    """measure() with profilis-bpf attached; bpf: also the run time of its
    BPF programs over the wrk run ("progs": name -> (ns, runs)), with
    kernel.bpf_stats_enabled on for that run only."""
    p = Profilis(tool, master, os.path.join(tmp, "bench.jsonl"), args)
    # Loading and attaching cost CPU once; only what follows is per request.
    attach_cpu = cpu_seconds([p.proc.pid])
    if bpf:
        r = measure_bpf(master, port, path, p.proc.pid)
    else:
        r = measure(master, port, path, own={p.proc.pid})
    r.update(p.stop())
    r["cpu_s"] -= attach_cpu
    return r


def measure_bpf(master, port, path, tool_pid):
    with bench_bpfstats.BpfStats() as stats:
        p0 = bench_bpfstats.prog_stats(tool_pid) if stats.ok else {}
        r = measure(master, port, path, own={tool_pid})
        p1 = bench_bpfstats.prog_stats(tool_pid) if stats.ok else {}
        names = bench_bpfstats.prog_names(p1)  # while the programs are still loaded
        # The sysctl is global: another session switching it off mid-run
        # leaves run times that cover only part of the requests.
        with open(bench_bpfstats.BpfStats.SYSCTL) as f:
            r["bpf_stats_kept"] = stats.ok and f.read().strip() == "1"
    r["progs"] = bench_bpfstats.diff_progs(p0, p1, names)
    return r


def clean(runs):
    """The runs no other profilis-bpf overlapped, unless fewer than two are."""
    ok = [r for r in runs if not r["foreign"]]
    return ok if len(ok) >= min(2, len(runs)) else runs


def machine():
    model = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{os.cpu_count()} vCPU VM ({model}), Linux {os.uname().release}"

