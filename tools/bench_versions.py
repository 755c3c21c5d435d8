# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""The gunicorn comparison of `make bench`, once per CPython in BENCH_VERSIONS:
for each route, BENCH_ROUNDS alternating rounds of one wrk run without and one
with profilis-bpf (default options) attached, the order swapped every round.
Each instrumented run also reads the run time of profilis-bpf's BPF programs
over the wrk run (kernel.bpf_stats_enabled on for that run only), so BPF µs
per request, worker CPU and throughput come from the same runs.  report()
prints one version's table; tools/bench_summary.py the targets' table."""
import statistics
import subprocess

from harness import python_env  # bench_common put tests/integration on the path
from bench_common import (CONNECTIONS, ROUNDS, SECONDS, THREADS, WORKERS, clean, log, machine,
                          measure, measure_instrumented, python_of)

# The request programs: the uprobes on PyContextVar_Set/Reset, the per-request
# path.  The others run per context switch, per sample, per fork/exec/exit.
REQUEST_PREFIX = "ctxvar_"


def describe(version):
    """"Python 3.13.0, Flask 3.1.3, gunicorn 20.1.0" of the interpreter."""
    python = python_of(version)
    code = ("import sys, importlib.metadata as m; print(sys.version.split()[0], "
            "m.version('flask'), m.version('gunicorn'))")
    out = subprocess.run([python, "-c", code], env=python_env(python),
                         capture_output=True, text=True)
    if out.returncode != 0:
        return python
    py, flask, gunicorn = out.stdout.split()
    where = "Debian" if version == "debian3.11" else "pyenv"
    return f"{where} Python {py}, Flask {flask}, Debian gunicorn {gunicorn}"


def bpf_per_request(r):
    """(all programs, request programs, {name: µs}) per request of one run,
    or None without usable run times."""
    if not r.get("progs") or not r.get("bpf_stats_kept"):
        return None
    n = max(1, r["records"] or r["requests"])
    per = {name: ns / n / 1e3 for name, (ns, _) in r["progs"].items()}
    req = sum(us for name, us in per.items() if name.startswith(REQUEST_PREFIX))
    return sum(per.values()), req, per


def bench_route(master, port, path, tmp, tool):
    """One route's alternating rounds; the summary of its medians."""
    base, instr = [], []
    for i in range(ROUNDS):
        # Swap the order each round so slow drift of the VM favours neither side.
        if i % 2 == 0:
            base.append(measure(master, port, path))
            instr.append(measure_instrumented(master, port, path, tmp, tool, bpf=True))
        else:
            instr.append(measure_instrumented(master, port, path, tmp, tool, bpf=True))
            base.append(measure(master, port, path))
        log_round(i, base[-1], instr[-1])
    return summarize(base, instr)


def log_round(i, b, n):
    warnings = []
    for side, r in (("base", b), ("instrumented", n)):
        if r["foreign"]:
            warnings.append(f"another profilis-bpf ran during {side}")
        if r["non2xx"] or r["socket_errors"]:
            warnings.append(f"{side}: non-2xx {r['non2xx']}, socket errors {r['socket_errors']}")
    log(f"  round {i + 1}/{ROUNDS}: base {b['rps']:7.0f} req/s  instrumented "
        f"{n['rps']:7.0f} req/s  ratio {n['rps'] / b['rps']:.3f}  worker CPU/req "
        f"{b['worker_cpu_us']:4.0f} -> {n['worker_cpu_us']:4.0f} µs  JSONL "
        f"{n['records']}/{n['requests']} wrk  lost {n['lost']}{bpf_note(n)}"
        + "".join(f"  [{w}]" for w in warnings))


def bpf_note(r):
    b = bpf_per_request(r)
    return f"  BPF {b[0]:.1f} µs/req (requests {b[1]:.1f})" if b else "  BPF: no run times"


def summarize(base, instr):
    med = lambda runs, key: statistics.median(r[key] for r in clean(runs))
    bpf = [b for b in map(bpf_per_request, clean(instr)) if b]
    names = sorted({name for b in bpf for name in b[2]})
    rps_b, rps_i = med(base, "rps"), med(instr, "rps")
    wrk_total = sum(r["requests"] for r in instr)
    return {
        "rps_b": rps_b, "rps_i": rps_i, "ratio": rps_i / rps_b,
        # W sync workers each serve one request at a time and are all kept busy
        # by 8 connections, so one worker spends W / rps seconds per request.
        # The growth of that is the added time per request, probes and the
        # CPU profilis-bpf takes from the workers included.  (Latency seen by
        # wrk grows by C/W times more: requests also queue behind each other.)
        "added_us": WORKERS * (1 / rps_i - 1 / rps_b) * 1e6,
        "cpu_b": med(base, "worker_cpu_us"), "cpu_i": med(instr, "worker_cpu_us"),
        "tool_cpu_us": sum(r["cpu_s"] for r in instr) / wrk_total * 1e6,
        "rss_mib": max(r["rss_kib"] for r in instr) / 1024,
        "jsonl_ratio": sum(r["records"] for r in instr) / wrk_total,
        "lost": sum(r["lost"] for r in instr),
        "max_extra": max(r["records"] - r["requests"] for r in instr),
        "traps": sum(r["traps"] for r in instr) / max(1, sum(r["records"] for r in instr)),
        "tainted": sum(r["foreign"] for r in base + instr),
        "tainted_used": len(clean(base)) + len(clean(instr))
        - sum(not r["foreign"] for r in base + instr),
        # Medians over the runs with run times; None where no run had them.
        "bpf_all": statistics.median(b[0] for b in bpf) if bpf else None,
        "bpf_req": statistics.median(b[1] for b in bpf) if bpf else None,
        "bpf_progs": {name: statistics.median(b[2].get(name, 0) for b in bpf) for name in names},
        "bpf_runs": len(bpf),
        "spread": (min(i["rps"] / b["rps"] for b, i in zip(base, instr)),
                   max(i["rps"] / b["rps"] for b, i in zip(base, instr))),
    }


def report(version, results):
    log("")
    log(f"Overhead of profilis-bpf on gunicorn, {version} ({WORKERS} sync workers, "
        f"{describe(version)}), wrk -t{THREADS} -c{CONNECTIONS} -d{SECONDS}s on loopback, "
        f"median of {ROUNDS} alternating rounds:")
    log("")
    log("| route | req/s without | req/s with | ratio | added µs/request | "
        "worker CPU µs/req without → with | profilis-bpf CPU µs/req | "
        "added CPU µs/req | profilis-bpf peak RSS | JSONL lines / wrk requests |")
    log("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, s in results:
        added_cpu = s["cpu_i"] - s["cpu_b"] + s["tool_cpu_us"]
        log(f"| {name} | {s['rps_b']:,.0f} | {s['rps_i']:,.0f} | {s['ratio']:.3f} | "
            f"{s['added_us']:.0f} | {s['cpu_b']:.0f} → {s['cpu_i']:.0f} "
            f"(+{s['cpu_i'] - s['cpu_b']:.0f}) | {s['tool_cpu_us']:.1f} | {added_cpu:.0f} | "
            f"{s['rss_mib']:.1f} MiB | {s['jsonl_ratio']:.4f} |")
    log("")
    log(f"Machine: {machine()}, noisy; profilis-bpf takes 4 uprobe traps per request "
        "(a bare trap, turned away at once, is measured in the untraced section) (measured: "
        + ", ".join(f"{n} {s['traps']:.2f}" for n, s in results) + ").")
    log(f"*added µs/request* = {WORKERS} workers × (1/rps_with − 1/rps_without): the extra "
        "time each request holds a worker, probes and the CPU the collector takes "
        "from the workers included; client latency under this closed-loop load grows "
        f"by {CONNECTIONS}/{WORKERS} times that because requests queue. *worker CPU "
        "µs/req* is utime+stime of the gunicorn workers per request (the kernel "
        "charges uprobe traps there); *profilis-bpf CPU* is the collector's own "
        "user+system time per request after attaching; *added CPU* is the sum of "
        "both increases, the cost least disturbed by the noise that moves req/s "
        "on a shared VM. Per-round ratio range: "
        + ", ".join(f"{n} {s['spread'][0]:.2f}–{s['spread'][1]:.2f}" for n, s in results)
        + f". Lost records: {sum(s['lost'] for _, s in results)}; JSONL lines exceed wrk's "
        f"count by at most {max(s['max_extra'] for _, s in results)} per run because wrk "
        f"does not count the requests (up to {CONNECTIONS}) in flight when it stops."
        + tainted_note(results)
        + (" A negative *added µs/request* means the difference is below this VM's "
           "run-to-run noise." if any(s["added_us"] < 0 for _, s in results) else ""))
    report_bpf(results)


def tainted_note(results):
    tainted = sum(s["tainted"] for _, s in results)
    if not tainted:
        return " No other profilis-bpf ran during any measurement."
    used = sum(s["tainted_used"] for _, s in results)
    return (f" {tainted} of {4 * ROUNDS} runs overlapped another profilis-bpf on this "
            "machine (its uprobes are system-wide, so the baseline traps too); "
            + (f"{used} of them had to stay in the medians." if used else
               "they are left out of the medians."))



def report_bpf(results):
    log("")
    log("BPF run time per request (kernel.bpf_stats_enabled during the instrumented "
        "runs, from profilis-bpf's program fds; run time / JSONL records), median of the "
        "runs:")
    log("")
    names = sorted({n for _, s in results for n in s["bpf_progs"]},
                   key=lambda n: (not n.startswith(REQUEST_PREFIX), n))
    log("| route | " + " | ".join(names) + " | request programs | all programs |")
    log("|---|" + "---:|" * (len(names) + 2))
    for route, s in results:
        if s["bpf_all"] is None:
            log(f"| {route} | (kernel.bpf_stats_enabled could not be used) |")
            continue
        log(f"| {route} | " + " | ".join(f"{s['bpf_progs'][n]:.2f}" for n in names)
            + f" | {s['bpf_req']:.2f} | {s['bpf_all']:.2f} |")
    log("")
    log("The request programs (ctxvar_*) run in the traced workers only; on_switch runs "
        "at every context switch on the machine (off-CPU stacks, on by default) and "
        "on_cpu_sample at 99 Hz per CPU, so wrk's, the other sessions' and our own "
        "switches are in *all programs*: an upper bound of what the requests cost. "
        "bpf_stats adds two clock reads per program run, in the instrumented runs only.")
