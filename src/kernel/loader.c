// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Loading and attaching.  The two request uprobes are attached once to each
 * interpreter file, for every process that maps it, and the traced set
 * (a BPF map from tgid to the process's interpreter descriptor) decides in
 * the kernel which traps count and how to read the process.  The set is
 * seeded from /proc and grown by the fork hook at the moment of the fork, so a
 * worker forked after attach is traced from its first instruction: per-process
 * uprobes attached from userspace land tens of milliseconds after the fork,
 * and a short-lived worker's first requests were lost.  The price is that an
 * untraced process using the same interpreter file traps on its ContextVar
 * sets and resets too (README, "Overhead").  The fork hook is attached before
 * the /proc scan, and the scan runs twice, so no child slips between them.
 * Which processes are in the set, and with which descriptor, is procs.c's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <linux/perf_event.h>
#include <sys/syscall.h>
#include <bpf/libbpf.h>
#include <bpf/bpf.h>
#include "loader.h"
#include "log.h"
#include "profilis.skel.h"
#include "pyoffsets.h"

/* One interpreter file with the request uprobes on it. */
struct probed_file {
	dev_t dev;
	ino_t ino;
	struct bpf_link *set, *reset; /* PyContextVar_Set, PyContextVar_Reset */
};

struct loader {
	struct profilis_bpf *skel;
	struct ring_buffer *rb;
	struct bpf_link *tp_links[4]; /* fork, exit, exec, sched_switch */
	struct bpf_link **cpu_links;  /* one sampling clock per CPU */
	int ncpus;
	struct probed_file *files;
	size_t nfiles;
	__u32 max_procs; /* the traced set's size */
	struct router_sinks sinks;
	struct router_stats rstats;
};

static int libbpf_verbose;

/* libbpf speaks only with -vv: its debug output is the verifier log. */
static int libbpf_log(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (!libbpf_verbose)
		return 0;
	return vfprintf(stderr, fmt, ap);
}

static int on_ringbuf(void *ctx, void *data, size_t size)
{
	struct loader *l = ctx;

	router_dispatch(&l->sinks, &l->rstats, data, size);
	return 0;
}

/* Map sizes come from the configuration, set between open and load.  The
 * off-CPU stacks map shrinks to one entry when off-CPU stacks are off (the
 * sampler program still references it).  Per-thread state is task storage,
 * which has no size. */
static int size_maps(struct loader *l, const struct loader_opts *o)
{
	struct profilis_bpf *s = l->skel;
	__u32 procs = o->max_procs > 0 ? o->max_procs : PBPF_MAX_PROCS;
	__u32 inflight = o->max_inflight > 0 ? o->max_inflight : 16384;
	int err;

	l->max_procs = procs;
	err = bpf_map__set_max_entries(s->maps.events, o->ringbuf_bytes);
	if (!err)
		err = bpf_map__set_max_entries(s->maps.traced_procs, procs);
	if (!err)
		err = bpf_map__set_max_entries(s->maps.flask_seen, procs);
	if (!err)
		err = bpf_map__set_max_entries(s->maps.inflight, inflight);
	if (!err && !o->offcpu)
		err = bpf_map__set_max_entries(s->maps.offcpu_stacks, 1);
	return err;
}

static int configure(struct loader *l, const struct loader_opts *o, char *msg, size_t msglen)
{
	struct profilis_bpf *s = l->skel;
	int err;

	if (o->filter)
		s->rodata->filter = *o->filter;
	/* Wake the reader early enough that a burst cannot fill the buffer
	 * within one 100 ms tick. */
	s->rodata->wake_bytes = o->ringbuf_bytes / 8;
	s->rodata->max_depth = 64;
	if (o->max_depth > 0 && o->max_depth <= PBPF_STACK_MAX)
		s->rodata->max_depth = o->max_depth;
	s->rodata->stacks_enabled = o->sample_hz > 0 || o->offcpu;
	s->rodata->discover_all = o->discover_all;
	err = pyoffsets_pack_names((struct pbpf_name_key *)s->rodata->names);
	if (!err)
		err = size_maps(l, o);
	/* Programs nobody will attach are not loaded at all. */
	if (!err && o->sample_hz <= 0)
		err = bpf_program__set_autoload(s->progs.on_cpu_sample, false);
	if (!err && !o->offcpu)
		err = bpf_program__set_autoload(s->progs.on_switch, false);
	if (err)
		snprintf(msg, msglen, "cannot configure the BPF programs: %s", strerror(-err));
	return err;
}

__u32 loader__max_procs(const struct loader *l)
{
	return l->max_procs;
}

int loader__traced_count(struct loader *l)
{
	__u32 key, next, *prev = NULL;
	int n = 0, fd = bpf_map__fd(l->skel->maps.traced_procs);

	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		key = next;
		prev = &key;
		n++;
	}
	return n;
}

int loader__probe(void *ctx, const struct target *t, char *msg, size_t msglen)
{
	struct loader *l = ctx;
	struct profilis_bpf *s = l->skel;
	struct probed_file *f;
	struct stat st;
	int err;

	if (stat(t->interp_host, &st)) {
		err = -errno;
		snprintf(msg, msglen, "cannot open the interpreter %s of PID %d: %s", t->interp,
			 t->pid, strerror(errno));
		return err;
	}
	for (size_t i = 0; i < l->nfiles; i++)
		if (l->files[i].dev == st.st_dev && l->files[i].ino == st.st_ino)
			return 0;
	f = realloc(l->files, (l->nfiles + 1) * sizeof(*f));
	if (!f)
		return -ENOMEM;
	l->files = f;
	f = &l->files[l->nfiles];
	*f = (struct probed_file){ .dev = st.st_dev, .ino = st.st_ino };
	f->set = bpf_program__attach_uprobe(s->progs.ctxvar_set, false, -1, t->interp_host,
					    t->set_offset);
	if (f->set)
		f->reset = bpf_program__attach_uprobe(s->progs.ctxvar_reset, false, -1,
						      t->interp_host, t->reset_offset);
	if (!f->set || !f->reset) {
		err = -errno;
		bpf_link__destroy(f->set);
		snprintf(msg, msglen,
			 "cannot attach uprobes to %s (PyContextVar_Set at 0x%llx, "
			 "PyContextVar_Reset at 0x%llx): %s",
			 t->interp, (unsigned long long)t->set_offset,
			 (unsigned long long)t->reset_offset, strerror(-err));
		return err;
	}
	l->nfiles++;
	p_dbg("attached uprobes to %s for the traced processes", t->interp);
	return 0;
}

static int attach_hooks(struct loader *l, char *msg, size_t msglen)
{
	struct profilis_bpf *s = l->skel;

	l->tp_links[0] = bpf_program__attach(s->progs.on_fork);
	l->tp_links[1] = bpf_program__attach(s->progs.on_exit);
	l->tp_links[2] = bpf_program__attach(s->progs.on_exec);
	if (!l->tp_links[0] || !l->tp_links[1] || !l->tp_links[2]) {
		snprintf(msg, msglen,
			 "cannot attach the sched_process_fork/exit/exec raw tracepoints: %s",
			 strerror(errno));
		return -errno;
	}
	return 0;
}

/* One software CPU clock per CPU runs the sampler (no hardware PMU here). */
static int attach_sampler(struct loader *l, int hz, char *msg, size_t msglen)
{
	struct perf_event_attr attr = {
		.type = PERF_TYPE_SOFTWARE,
		.config = PERF_COUNT_SW_CPU_CLOCK,
		.size = sizeof(attr),
		.freq = 1,
		.sample_freq = hz,
	};
	int n = libbpf_num_possible_cpus();

	if (n <= 0)
		return n ? n : -EINVAL;
	l->cpu_links = calloc(n, sizeof(*l->cpu_links));
	if (!l->cpu_links)
		return -ENOMEM;
	l->ncpus = n;
	for (int cpu = 0; cpu < n; cpu++) {
		int fd = syscall(__NR_perf_event_open, &attr, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC);

		if (fd < 0) {
			if (errno == ENODEV)
				continue; /* a possible CPU that is not online */
			snprintf(msg, msglen, "cannot open the sampling clock on CPU %d: %s", cpu,
				 strerror(errno));
			return -errno;
		}
		l->cpu_links[cpu] =
			bpf_program__attach_perf_event(l->skel->progs.on_cpu_sample, fd);
		if (!l->cpu_links[cpu]) {
			int err = -errno;

			close(fd);
			snprintf(msg, msglen, "cannot attach the sampler on CPU %d: %s", cpu,
				 strerror(-err));
			return err;
		}
	}
	return 0;
}

struct loader *loader__new(const struct loader_opts *o, char *msg, size_t msglen)
{
	struct loader *l = calloc(1, sizeof(*l));
	int err = -ENOMEM;

	if (!l)
		goto fail;
	libbpf_verbose = o->libbpf_verbose;
	libbpf_set_print(libbpf_log);
	l->sinks = *o->sinks;
	l->skel = profilis_bpf__open();
	if (!l->skel) {
		err = -errno;
		snprintf(msg, msglen, "cannot open the BPF object: %s", strerror(errno));
		goto fail;
	}
	err = configure(l, o, msg, msglen);
	if (err)
		goto fail;
	err = profilis_bpf__load(l->skel);
	if (err) {
		snprintf(
			msg, msglen,
			"the kernel refused the BPF programs: %s (run with -vv for the verifier log)",
			strerror(-err));
		goto fail;
	}
	err = attach_hooks(l, msg, msglen);
	if (!err && o->sample_hz > 0)
		err = attach_sampler(l, o->sample_hz, msg, msglen);
	if (!err && o->offcpu) {
		l->tp_links[3] = bpf_program__attach(l->skel->progs.on_switch);
		if (!l->tp_links[3]) {
			err = -errno;
			snprintf(msg, msglen, "cannot attach the sched_switch raw tracepoint: %s",
				 strerror(errno));
		}
	}
	if (err)
		goto fail;
	l->rb = ring_buffer__new(bpf_map__fd(l->skel->maps.events), on_ringbuf, l, NULL);
	if (!l->rb) {
		err = -errno;
		snprintf(msg, msglen, "cannot open the ring buffer: %s", strerror(errno));
		goto fail;
	}
	return l;
fail:
	loader__free(l);
	errno = -err;
	return NULL;
}

int loader__poll(struct loader *l, int timeout_ms)
{
	int n = ring_buffer__poll(l->rb, timeout_ms), m;

	if (n == -EINTR)
		n = 0;
	/* Request records do not wake us: pick up what arrived quietly. */
	m = n >= 0 ? ring_buffer__consume(l->rb) : 0;
	if (n >= 0 && m > 0)
		n += m;
	return n;
}

int loader__drain(struct loader *l)
{
	return ring_buffer__consume(l->rb);
}

void loader__router_stats(struct loader *l, struct router_stats *out)
{
	*out = l->rstats;
}

uint64_t loader__execs(const struct loader *l)
{
	return l->skel->bss->stats.execs;
}

int loader__procs_fd(const struct loader *l)
{
	return bpf_map__fd(l->skel->maps.traced_procs);
}

int loader__stats(struct loader *l, struct pbpf_stats *out)
{
	*out = l->skel->bss->stats;
	return 0;
}

void loader__free(struct loader *l)
{
	if (!l)
		return;
	ring_buffer__free(l->rb);
	for (size_t i = 0; i < l->nfiles; i++) {
		bpf_link__destroy(l->files[i].reset);
		bpf_link__destroy(l->files[i].set);
	}
	free(l->files);
	for (int i = 0; i < l->ncpus; i++)
		bpf_link__destroy(l->cpu_links[i]);
	free(l->cpu_links);
	for (int i = 3; i >= 0; i--)
		bpf_link__destroy(l->tp_links[i]);
	profilis_bpf__destroy(l->skel);
	free(l);
}
