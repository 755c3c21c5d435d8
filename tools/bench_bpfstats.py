# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
"""BPF program run times for the benchmarks: kernel.bpf_stats_enabled switched
on for a measurement and restored after, and run_time_ns / run_cnt of the
programs a profilis-bpf process holds open, by name."""
import os
import re
import subprocess


def prog_stats(pid):
    """{prog_id: (run_time_ns, run_cnt)} of the BPF programs pid holds open."""
    out = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") != "anon_inode:bpf-prog":
                continue
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                info = dict(line.split(":", 1) for line in f if ":" in line)
        except OSError:
            continue
        out[int(info["prog_id"])] = (int(info.get("run_time_ns", 0)), int(info.get("run_cnt", 0)))
    return out


def prog_names(ids):
    try:
        out = subprocess.run(["bpftool", "prog", "show"], capture_output=True, text=True).stdout
    except OSError:
        return {}
    names = dict((int(m.group(1)), m.group(2)) for m in re.finditer(r"^(\d+): \S+\s+name (\S+)",
                                                                    out, re.M))
    return {i: names.get(i, f"prog {i}") for i in ids}


class BpfStats:
    """kernel.bpf_stats_enabled on for the duration, restored after; .ok
    says whether it could be switched on."""
    SYSCTL = "/proc/sys/kernel/bpf_stats_enabled"

    def __enter__(self):
        self.before = None
        try:
            with open(self.SYSCTL) as f:
                self.before = f.read().strip()
            with open(self.SYSCTL, "w") as f:
                f.write("1")
            self.ok = True
        except OSError:
            self.ok = False
        return self

    def __exit__(self, *exc):
        if self.ok:
            with open(self.SYSCTL, "w") as f:
                f.write(self.before)


# ---- the load ----------------------------------------------------------------


def diff_progs(p0, p1, names):
    out = {}
    for pid, (ns, cnt) in p1.items():
        ns0, cnt0 = p0.get(pid, (0, 0))
        name = names.get(pid, f"prog {pid}")
        t, c = out.get(name, (0, 0))
        out[name] = (t + ns - ns0, c + cnt - cnt0)
    return out
