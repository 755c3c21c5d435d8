// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Every check asks the kernel rather than reading a version number: libbpf's
 * probes load tiny programs and maps, the sampling clock is opened and
 * closed.  Optional facts (tracefs, kprobes) are reported but never fail the
 * check, since profilis-bpf does not need them.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <unistd.h>
#include <linux/perf_event.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <bpf/libbpf.h>
#include "checks.h"
#include "preflight.h"

static int report(FILE *out, bool ok, bool needed, const char *what, const char *detail)
{
	fprintf(out, "%-4s %-52s %s\n", ok ? "ok" : needed ? "FAIL" : "no", what, detail);
	return ok || !needed ? 0 : 1;
}

static int silent(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	return 0;
}

static bool sw_clock_opens(void)
{
	struct perf_event_attr attr = {
		.type = PERF_TYPE_SOFTWARE,
		.config = PERF_COUNT_SW_CPU_CLOCK,
		.size = sizeof(attr),
		.freq = 1,
		.sample_freq = 99,
	};
	int fd = syscall(__NR_perf_event_open, &attr, -1, 0, -1, PERF_FLAG_FD_CLOEXEC);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

int checks_run(FILE *out)
{
	char msg[512], detail[600];
	struct utsname u;
	int bad = 0;

	libbpf_set_print(silent);
	uname(&u);
	snprintf(detail, sizeof(detail), "%s %s %s", u.sysname, u.release, u.machine);
	bad |= report(out, true, true, "kernel", detail);
	bad |= report(out, preflight_capabilities(msg, sizeof(msg)) == 0, true,
		      "capabilities (CAP_SYS_ADMIN, CAP_SYS_PTRACE)",
		      preflight_capabilities(msg, sizeof(msg)) ? msg : "");
	bad |= report(out, preflight_btf("/sys/kernel/btf/vmlinux", msg, sizeof(msg)) == 0, true,
		      "kernel BTF (/sys/kernel/btf/vmlinux)",
		      "needed for CO-RE and the sched_switch BTF tracepoint");
	bad |= report(out, libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_KPROBE, NULL) == 1, true,
		      "uprobe programs (BPF_PROG_TYPE_KPROBE)", "the request hooks");
	bad |= report(out, preflight_uprobe(msg, sizeof(msg)) == 0, true,
		      "uprobe creation (perf_event_open, uprobe PMU)",
		      preflight_uprobe(msg, sizeof(msg)) ? msg : "attaching the request hooks");
	bad |= report(out, libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_RAW_TRACEPOINT, NULL) == 1,
		      true, "raw tracepoints", "fork/exec/exit");
	bad |= report(out, libbpf_probe_bpf_prog_type(BPF_PROG_TYPE_PERF_EVENT, NULL) == 1, true,
		      "perf_event programs", "the stack sampler");
	bad |= report(out, libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, NULL) == 1, true,
		      "ring buffer maps", "events to userspace");
	bad |= report(out, libbpf_probe_bpf_map_type(BPF_MAP_TYPE_LRU_HASH, NULL) == 1, true,
		      "LRU hash maps", "in-flight requests past a thread's slots");
	bad |= report(out,
		      libbpf_probe_bpf_map_type(BPF_MAP_TYPE_TASK_STORAGE, NULL) == 1 &&
			      libbpf_probe_bpf_helper(BPF_PROG_TYPE_KPROBE,
						      BPF_FUNC_task_storage_get, NULL) == 1 &&
			      libbpf_probe_bpf_helper(BPF_PROG_TYPE_PERF_EVENT,
						      BPF_FUNC_task_storage_get, NULL) == 1,
		      true, "task storage from uprobe and perf_event programs",
		      "per-thread requests in flight and thread states");
	bad |= report(out, libbpf_probe_bpf_helper(BPF_PROG_TYPE_KPROBE, BPF_FUNC_loop, NULL) == 1,
		      true, "bpf_loop helper", "dict scans and frame walks");
	bad |= report(out,
		      libbpf_probe_bpf_helper(BPF_PROG_TYPE_KPROBE, BPF_FUNC_probe_read_user,
					      NULL) == 1,
		      true, "bpf_probe_read_user helper", "reading the interpreter");
	bad |= report(out, sw_clock_opens(), true, "software CPU clock (perf_event_open)",
		      "sampling without a hardware PMU");
	report(out, access("/sys/kernel/tracing/events", F_OK) == 0, false, "tracefs mounted",
	       "not needed");
	fprintf(out, "%s\n",
		bad ? "profilis-bpf cannot run here: see FAIL above" : "profilis-bpf can run here");
	return bad ? 1 : 0;
}
