# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""The Debian-gunicorn-only sections of `make bench` (tools/bench says what
each measures): what an untraced process using the same interpreter file pays,
--sample 1.0 against 0.1, and the stack sampler's own cost.  Each takes the
running server's master and port and returns its runs; its report_* prints
the table."""
import os
import statistics
import subprocess

from bench_common import (CONNECTIONS, PYTHON, SECONDS, THREADS, Profilis, clean, env_int, log,
                          measure, measure_instrumented)

# Fewer rounds than the versions' comparison: keeps `make bench` near 8 minutes.
ROUNDS = env_int("BENCH_EXTRA_ROUNDS", 3, 1)
# The sampling comparison: (label, extra profilis-bpf arguments or None).
SAMPLING_ARMS = [("uninstrumented", None), ("--sample 1.0", ["--sample", "1.0"]),
                 ("--sample 0.1", ["--sample", "0.1"])]
# The stack sampler's own cost: profilis-bpf with sampling off, at 99 Hz, at 1 kHz.
STACK_ARMS = [("-F 0 --no-offcpu", ["-F", "0", "--no-offcpu"]),
              ("-F 99 --no-offcpu", ["-F", "99", "--no-offcpu"]),
              ("-F 1000 --no-offcpu", ["-F", "1000", "--no-offcpu"]),
              ("-F 99 (default, off-CPU on)", ["-F", "99"])]
UNTRACED_PAIRS = 200000


# ---- untraced: a process that is not the target -------------------------

def contextvar_ns_per_pair():
    """CPU ns per ContextVar set+reset pair in a fresh, untraced python3.11
    (the kernel charges a uprobe trap to the process that hit it)."""
    code = ("import contextvars, time\nv = contextvars.ContextVar('x')\n"
            f"n = {UNTRACED_PAIRS}\nt = time.process_time_ns()\n"
            "for i in range(n):\n    v.reset(v.set(i))\n"
            "print((time.process_time_ns() - t) / n)")
    out = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout)


def bench_untraced(master, tmp, tool):
    """Alternating rounds: the same loop with and without profilis-bpf attached."""
    base, instr = [], []
    for i in range(ROUNDS):
        sides = ("base", "instr") if i % 2 == 0 else ("instr", "base")
        for side in sides:
            if side == "base":
                base.append(contextvar_ns_per_pair())
                continue
            p = Profilis(tool, master, os.path.join(tmp, "untraced.jsonl"))
            instr.append(contextvar_ns_per_pair())
            p.stop()
        log(f"  round {i + 1}: {base[-1]:.0f} ns per pair untraced without profilis-bpf, "
            f"{instr[-1]:.0f} ns with it")
    return base, instr


def report_untraced(base, instr):
    b, n = statistics.median(base), statistics.median(instr)
    log("")
    log("Untraced process using the same interpreter file (python3.11, ContextVar set+reset):")
    log(f"  without profilis-bpf {b:.0f} ns per pair, with it {n:.0f} ns per pair: "
        f"+{(n - b) / 2:.0f} ns per ContextVar call (one uprobe trap turned away by the "
        f"traced set), medians of {len(base)} rounds")


# ---- sampling: --sample 1.0 against 0.1 ---------------------------------

def bench_sampling(master, port, path, tmp, tool, arms=SAMPLING_ARMS):
    """BENCH_ROUNDS rounds of one run per arm, the order rotated each round."""
    runs = {label: [] for label, _ in arms}
    for i in range(ROUNDS):
        k = i % len(arms)
        for label, args in arms[k:] + arms[:k]:
            if args is None:
                runs[label].append(measure(master, port, path))
            else:
                runs[label].append(measure_instrumented(master, port, path, tmp, tool, args))
        log(f"  round {i + 1}/{ROUNDS}: " + "  ".join(
            f"{label} {runs[label][-1]['rps']:6.0f} req/s {runs[label][-1]['worker_cpu_us']:4.0f} "
            "µs CPU/req" + (" [another profilis-bpf ran]" if runs[label][-1]["foreign"] else "")
            for label, _ in arms))
    return runs


def report_stacks(runs, path):
    """The stack sampler's cost: each arm against profilis-bpf with it off."""
    med = lambda label, key: statistics.median(r[key] for r in clean(runs[label]))
    base_label = STACK_ARMS[0][0]
    rps_b, cpu_b = med(base_label, "rps"), med(base_label, "worker_cpu_us")
    log("")
    log(f"Stack sampler, hello world ({path}) with both workers busy, median of {ROUNDS} "
        f"rounds of {len(STACK_ARMS)} rotated runs (wrk -t{THREADS} -c{CONNECTIONS} "
        f"-d{SECONDS}s); every arm runs profilis-bpf, the first with sampling off:")
    log("")
    log("| profilis-bpf | req/s | ratio vs sampling off | worker CPU µs/req | "
        "profilis-bpf CPU µs/req | stack samples/s | blocked stacks/s |")
    log("|---|---:|---:|---:|---:|---:|---:|")
    for label, _ in STACK_ARMS:
        rps, cpu = med(label, "rps"), med(label, "worker_cpu_us")
        wrk_total = sum(r["requests"] for r in runs[label])
        secs = SECONDS * len(runs[label])
        tool_cpu = sum(r["cpu_s"] for r in runs[label]) / wrk_total * 1e6
        log(f"| {label} | {rps:,.0f} | {rps / rps_b:.3f} | {cpu:.0f} ({cpu - cpu_b:+.0f}) | "
            f"{tool_cpu:.1f} | {sum(r['stack_samples'] for r in runs[label]) / secs:,.0f} | "
            f"{sum(r['blocked_stacks'] for r in runs[label]) / secs:,.0f} |")
    log("")
    log("Stack samples/s counts every traced thread sampled (2 busy workers: ~2 x HZ); "
        "blocked stacks are recorded when a worker sleeps inside a request (hello world "
        "rarely does).")


def report_sampling(runs, path):
    med = lambda label, key: statistics.median(r[key] for r in clean(runs[label]))
    base_label = SAMPLING_ARMS[0][0]
    rps_b, cpu_b = med(base_label, "rps"), med(base_label, "worker_cpu_us")
    log("")
    log(f"Sampling, hello world ({path}), median of {ROUNDS} rounds of "
        f"{len(SAMPLING_ARMS)} rotated runs (wrk -t{THREADS} -c{CONNECTIONS} -d{SECONDS}s):")
    log("")
    log("| profilis-bpf | req/s | ratio vs uninstrumented | worker CPU µs/req | "
        "profilis-bpf CPU µs/req | added CPU µs/req | JSONL lines / wrk requests | "
        "sampled out / JSONL lines |")
    log("|---|---:|---:|---:|---:|---:|---:|---:|")
    for label, args in SAMPLING_ARMS:
        rps, cpu = med(label, "rps"), med(label, "worker_cpu_us")
        if args is None:
            log(f"| {label} | {rps:,.0f} | 1.000 | {cpu:.0f} | – | – | – | – |")
            continue
        wrk_total = sum(r["requests"] for r in runs[label])
        records = sum(r["records"] for r in runs[label])
        tool_cpu = sum(r["cpu_s"] for r in runs[label]) / wrk_total * 1e6
        log(f"| {label} | {rps:,.0f} | {rps / rps_b:.3f} | {cpu:.0f} ({cpu - cpu_b:+.0f}) | "
            f"{tool_cpu:.1f} | {cpu - cpu_b + tool_cpu:.0f} | {records / wrk_total:.4f} | "
            f"{sum(r['unsampled'] for r in runs[label]):,} / {records:,} |")
    tainted = sum(r["foreign"] for label in runs for r in runs[label])
    log("")
    log("The ratio and *added CPU* (worker CPU over the uninstrumented median plus "
        "profilis-bpf's own) are as in the table above. --sample decides in the kernel "
        "at request start; with the default keep-errors an unsampled request still "
        "traps on every probe and has its wsgi_app frame and status read at the end "
        "(to keep 5xx), and skips only the string copies, the ring buffer and "
        "everything in userspace."
        + (f" {tainted} of {len(SAMPLING_ARMS) * ROUNDS} runs overlapped another "
           "profilis-bpf (left out of the medians where at least two clean ones remain)."
           if tainted else " No other profilis-bpf ran during any measurement."))

