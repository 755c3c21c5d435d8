# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""What the loader puts in the kernel follows the configuration: map sizes
read back from the kernel, and programs that are not needed not loaded."""
import json
import os
import subprocess
import time

from harness import DEBIAN_PY, Profiler, Server, check, http, log
from test_errors import expect_failure

SAMPLER_PROGS = ("on_cpu_sample", "on_switch")


def bpftool(*args):
    out = subprocess.run(["bpftool", "-j"] + list(args), capture_output=True, text=True,
                         env=dict(os.environ, PATH=os.environ.get("PATH", "") + ":/usr/sbin"))
    check(out.returncode == 0, "bpftool %s: %s", " ".join(args), out.stderr)
    return json.loads(out.stdout)


def new_progs(before):
    return {p["name"]: p for p in bpftool("prog", "show") if p["id"] not in before}


def test_map_sizes_follow_the_configuration():
    """--max-procs and --max-inflight size the maps between open and load."""
    with Server("gunicorn", python=DEBIAN_PY, workers=2) as srv:
        before = {p["id"] for p in bpftool("prog", "show")}
        prof = Profiler(srv.pid, ["--max-procs", "64", "--max-inflight", "128"])
        try:
            progs = new_progs(before)
            check("ctxvar_set" in progs, "ctxvar_set not loaded: %s", sorted(progs))
            sizes = {}
            for map_id in progs["ctxvar_set"].get("map_ids", []):
                m = bpftool("map", "show", "id", str(map_id))
                sizes[m["name"]] = m["max_entries"]
            check(sizes.get("traced_procs") == 64 and sizes.get("flask_seen") == 64 and
                  sizes.get("inflight") == 128, "map sizes: %s", sizes)
            for i in range(20):
                check(http(srv.url("/users/%d" % i)) == 200, "request failed")
            time.sleep(0.3)
            check(prof.stop() == 0, "exit:\n%s", prof.stderr())
            check(len(prof.records()) == 20, "%d records for 20 requests", len(prof.records()))
            log("    traced_procs %d, flask_seen %d, inflight %d" % (
                sizes["traced_procs"], sizes["flask_seen"], sizes["inflight"]))
        finally:
            prof.close()


def test_sampler_not_loaded_when_off():
    """-F 0 --no-offcpu loads neither the sampler nor the sched_switch program;
    the defaults load both."""
    with Server("gunicorn", python=DEBIAN_PY, workers=1) as srv:
        for args, want in (([], set(SAMPLER_PROGS)), (["-F", "0", "--no-offcpu"], set()),
                           (["--no-offcpu"], {"on_cpu_sample"}), (["-F", "0"], {"on_switch"})):
            before = {p["id"] for p in bpftool("prog", "show")}
            prof = Profiler(srv.pid, args)
            try:
                got = set(new_progs(before)) & set(SAMPLER_PROGS)
                check(got == want, "%s loaded %s, expected %s", args, sorted(got), sorted(want))
                check(http(srv.url("/users/1")) == 200, "request failed")
                time.sleep(0.3)
                check(prof.stop() == 0, "exit:\n%s", prof.stderr())
                check(len(prof.records()) == 1, "%s: %d records", args, len(prof.records()))
            finally:
                prof.close()


def test_max_procs_usage_error():
    expect_failure(["-p", "1", "--max-procs", "8"], 64,
                   "--max-procs: '8' is not a whole number in 16..1048576")


TESTS = [test_map_sizes_follow_the_configuration, test_sampler_not_loaded_when_off,
         test_max_procs_usage_error]
