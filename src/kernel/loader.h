/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The loader: the only user of the BPF skeleton.  Configures rodata from the
 * target, loads, seeds the traced process tree, attaches (the request uprobes
 * once per interpreter file, filtered in the kernel by the traced set), and
 * hands every ring-buffer event to a callback.
 */
#ifndef PROFILIS_LOADER_H
#define PROFILIS_LOADER_H

#include <stddef.h>
#include <sys/types.h>
#include "profilis/abi.h"
#include "target.h"

/* Receives request and first-seen events (process events are the loader's). */
typedef int (*loader_event_fn)(void *ctx, const void *event, size_t size);

struct loader_opts {
	const struct target *target;
	const struct pbpf_py_offsets *offsets; /* the target's (pyruntime.c) */
	const struct pbpf_filter_cfg *filter;  /* sampling and exclusions */
	size_t ringbuf_bytes;		       /* power of two */
	loader_event_fn on_event;
	void *ctx;
	int libbpf_verbose; /* pass libbpf's log to stderr */
	int sample_hz;	    /* stack sampling; 0: off */
	int max_depth;	    /* frames per stack, <= PBPF_STACK_MAX */
	int offcpu;	    /* record blocked stacks */
	int max_procs;	    /* traced set and flask_seen; 0: 4096 */
	int max_inflight;   /* requests in flight; 0: 16384 */
};

struct loader;

/* NULL on failure with errno set and a message (cause and remedy) in msg. */
struct loader *loader__new(const struct loader_opts *opts, char *msg, size_t msglen);
/* Waits up to timeout_ms for events and dispatches them; count or -errno. */
int loader__poll(struct loader *l, int timeout_ms);
/* Dispatches what is already in the ring buffer without waiting. */
int loader__drain(struct loader *l);
int loader__stats(struct loader *l, struct pbpf_stats *out);
/* The traced set's size (--max-procs). */
__u32 loader__max_procs(const struct loader *l);
/* How many processes of the tree are traced right now. */
int loader__traced_count(struct loader *l);
void loader__free(struct loader *l);

#endif
