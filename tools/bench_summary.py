# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""The last part of `make bench`: the pipeline replay (.output/bench-pipeline,
version-independent, run with the servers gone) and one table of what issue
15 targets beside what this run measured: per CPython version and route, BPF
µs per request (all programs; the request programs alone beside them), the
added worker CPU per request and the throughput ratio, then the pipeline's
records/s into JSONL and decode + encode ns per record."""
import os
import re
import subprocess
import sys

from bench_common import BENCH_PIPELINE, PIPELINE, ROUNDS, SECONDS, log

# (value, target, higher is better) checks; BPF: all programs together.
BPF_TARGET = {"debian3.11": 5.0}
BPF_TARGET_OTHERS = 8.0
CPU_TARGET = {"/": 30.0}  # added worker CPU µs per request, hello world only
RATIO_TARGET = {"/": 0.90, "/sleep2ms": 0.97}
PIPE_RPS_TARGET, PIPE_NS_TARGET = 2_000_000, 250.0


def run_pipeline_bench():
    """Runs .output/bench-pipeline (stderr: its progress), prints its tables
    and returns {"rps", "ns", "dropped"} parsed from them (None where its
    output did not say)."""
    if not PIPELINE:
        return None
    if not os.access(BENCH_PIPELINE, os.X_OK):
        log(f"\n(no {BENCH_PIPELINE}: `make bench` builds it; the pipeline replay is skipped)")
        return None
    log("\npipeline replay (.output/bench-pipeline):")
    out = subprocess.run([BENCH_PIPELINE], stdout=subprocess.PIPE, text=True)
    if out.returncode != 0:
        sys.exit(f"bench: {BENCH_PIPELINE} exited with status {out.returncode}")
    log("")
    log(out.stdout.rstrip())
    return parse_pipeline(out.stdout)


def parse_pipeline(text):
    """The drop_oldest=false row (no drops allowed: every record must reach
    the file) and the decode + encode row of bench-pipeline's tables."""
    num = lambda s: float(s.replace(",", "").split()[0])
    got = {"rps": None, "ns": None, "dropped": None}
    for line in text.splitlines():
        cols = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cols) >= 6 and cols[0] == "false":
            got["rps"], got["dropped"] = num(cols[2]), num(cols[5])
        elif cols and "decode + encode" in cols[0] and len(cols) >= 2:
            got["ns"] = num(cols[1].strip("*"))
    return got


def cell(value, fmt, target, higher):
    """('51.2 (≤5: no)', False); met is None where no target applies and
    "n/a" where one does but the value is missing."""
    if value is None:
        return "n/a", None if target is None else "n/a"
    text = format(value, fmt)
    if target is None:
        return text, None
    met = value >= target if higher else value <= target
    shown = (format(target, ",.0f") if target >= 1000 else
             f"{target:.2f}" if 0 < target < 1 else f"{target:g}")
    return f"{text} ({'≥' if higher else '≤'}{shown}: {'yes' if met else 'no'})", met


def report(per_version, pipeline):
    """per_version: [(version, [(route name, path, summary)])]."""
    log("")
    log("Summary against issue 15's targets (BPF: all of profilis-bpf's programs with "
        "its default options; request programs: ctxvar_set + ctxvar_reset alone; "
        "added worker CPU: instrumented − uninstrumented median; ratio: median req/s "
        f"with / without; medians of {ROUNDS} alternating rounds of {SECONDS} s per side):")
    log("")
    log("| version | route | BPF µs/req, all programs | BPF µs/req, request programs | "
        "added worker CPU µs/req | throughput ratio | targets met |")
    log("|---|---|---:|---:|---:|---:|---|")
    for version, routes in per_version:
        for name, path, s in routes:
            bpf_t = BPF_TARGET.get(version, BPF_TARGET_OTHERS)
            cells = [cell(s["bpf_all"], ".1f", bpf_t, False),
                     cell(s["bpf_req"], ".1f", None, False),
                     cell(s["cpu_i"] - s["cpu_b"], ".0f", CPU_TARGET.get(path), False),
                     cell(s["ratio"], ".3f", RATIO_TARGET.get(path), True)]
            log(f"| {version} | {name} | " + " | ".join(c for c, _ in cells)
                + f" | {verdict(cells, ('BPF', None, 'CPU', 'ratio'))} |")
    if pipeline:
        rps = cell(pipeline["rps"], ",.0f", PIPE_RPS_TARGET, True)
        ns = cell(pipeline["ns"], ".0f", PIPE_NS_TARGET, False)
        drops = cell(pipeline["dropped"], ",.0f", 0, False)
        log(f"| any (version-independent) | pipeline replay into JSONL on disk (median of "
            f"its runs): records/s {rps[0]}, dropped {drops[0]}; decode + encode ns/record {ns[0]} "
            f"| | | | | {verdict([rps, drops, ns], ('records/s', 'drops', 'ns/record'))} |")


def verdict(cells, labels):
    """'yes', or which targets were missed or could not be measured."""
    missed = [label for (_, met), label in zip(cells, labels) if met is False]
    unknown = [label for (_, met), label in zip(cells, labels) if met == "n/a"]
    out = (["no: " + ", ".join(missed)] if missed else []) + \
          (["n/a: " + ", ".join(unknown)] if unknown else [])
    return "; ".join(out) or "yes"
