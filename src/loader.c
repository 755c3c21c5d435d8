// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Loading and attaching.  The uprobes are attached for every process that
 * maps the interpreter file (pid -1) because a per-process uprobe does not
 * follow fork(); the BPF side filters on the traced tgid set, which the fork
 * tracepoint grows.  The fork hook is attached before the /proc scan that
 * seeds the set, and the scan runs twice, so no child can slip between them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/libbpf.h>
#include <bpf/bpf.h>
#include "loader.h"
#include "log.h"
#include "profilis.skel.h"
#include "pyoffsets.h"

#define TREE_MAX 4096

struct loader {
	struct profilis_bpf *skel;
	struct ring_buffer *rb;
	struct bpf_link *links[4];
	loader_event_fn on_event;
	void *ctx;
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

	if (size < sizeof(struct pbpf_req_event))
		return 0; /* not ours: ignore rather than read past the record */
	return l->on_event(l->ctx, data);
}

static int configure(struct loader *l, const struct loader_opts *o, char *msg, size_t msglen)
{
	struct profilis_bpf *s = l->skel;
	int err;

	s->rodata->py = *o->offsets;
	s->rodata->py.runtime_addr = o->target->runtime_addr;
	s->rodata->py.none_addr = o->target->none_addr;
	if (o->filter)
		s->rodata->filter = *o->filter;
	err = pyoffsets_pack_names((struct pbpf_name_key *)s->rodata->names);
	if (!err)
		err = bpf_map__set_max_entries(s->maps.events, o->ringbuf_bytes);
	if (err)
		snprintf(msg, msglen, "cannot configure the BPF programs: %s", strerror(-err));
	return err;
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

static int seed_tree(struct loader *l, pid_t root)
{
	static pid_t pids[TREE_MAX];
	int fd = bpf_map__fd(l->skel->maps.traced_procs), n, pass;
	__u8 one = 1;

	for (pass = 0; pass < 2; pass++) {
		n = target_process_tree(root, pids, TREE_MAX);
		for (int i = 0; i < n; i++) {
			__u32 tgid = pids[i];

			if (bpf_map_update_elem(fd, &tgid, &one, BPF_ANY))
				return -errno;
		}
	}
	p_dbg("tracing %d process(es) in the tree of PID %d", n, root);
	return 0;
}

static int attach_all(struct loader *l, const struct target *t, char *msg, size_t msglen)
{
	struct profilis_bpf *s = l->skel;
	int err;

	l->links[0] = bpf_program__attach(s->progs.on_fork);
	l->links[1] = bpf_program__attach(s->progs.on_exit);
	if (!l->links[0] || !l->links[1]) {
		err = -errno;
		snprintf(msg, msglen, "cannot attach the sched_process_fork/exit raw tracepoints: %s",
			 strerror(errno));
		return err;
	}
	err = seed_tree(l, t->pid);
	if (err) {
		snprintf(msg, msglen, "cannot seed the traced process set: %s", strerror(-err));
		return err;
	}
	l->links[2] = bpf_program__attach_uprobe(s->progs.ctxvar_set, false, -1,
						  t->interp_host, t->set_offset);
	l->links[3] = bpf_program__attach_uprobe(s->progs.ctxvar_reset, false, -1,
						  t->interp_host, t->reset_offset);
	if (!l->links[2] || !l->links[3]) {
		err = -errno;
		snprintf(msg, msglen, "cannot attach uprobes to %s (PyContextVar_Set at 0x%llx): %s",
			 t->interp, (unsigned long long)t->set_offset, strerror(errno));
		return err;
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
	l->on_event = o->on_event;
	l->ctx = o->ctx;
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
		snprintf(msg, msglen,
			 "the kernel refused the BPF programs: %s (run with -vv for the verifier log)",
			 strerror(-err));
		goto fail;
	}
	err = attach_all(l, o->target, msg, msglen);
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
	int n = ring_buffer__poll(l->rb, timeout_ms);

	return n == -EINTR ? 0 : n;
}

int loader__drain(struct loader *l)
{
	return ring_buffer__consume(l->rb);
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
	for (int i = 3; i >= 0; i--)
		bpf_link__destroy(l->links[i]);
	profilis_bpf__destroy(l->skel);
	free(l);
}
