/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The loader: the only user of the BPF skeleton.  Configures and loads the
 * programs, attaches the process hooks and the sampler, and the request
 * uprobes once per interpreter file (filtered in the kernel by the traced
 * set, which procs.c fills).  Every ring-buffer record goes to the router.
 */
#ifndef PROFILIS_LOADER_H
#define PROFILIS_LOADER_H

#include <stddef.h>
#include <sys/types.h>
#include "profilis/abi.h"
#include <stdbool.h>
#include "interps.h"
#include "router.h"

struct loader_opts {
	const struct pbpf_filter_cfg *filter; /* sampling and exclusions */
	size_t ringbuf_bytes;		      /* power of two */
	const struct router_sinks *sinks;     /* where records go */
	int libbpf_verbose;		      /* pass libbpf's log to stderr */
	int sample_hz;			      /* stack sampling; 0: off */
	int max_depth;			      /* frames per stack, <= PBPF_STACK_MAX */
	int offcpu;			      /* record blocked stacks */
	int max_procs;			      /* traced set and flask_seen; 0: 4096 */
	int max_inflight;		      /* requests in flight; 0: 16384 */
	bool discover_all; /* --all: every exec is reported, not only traced ones */
};

struct loader;

/* Loads the programs and attaches the process hooks and the sampler; no
 * process is traced yet.  NULL on failure with errno set and a message
 * (cause and remedy) in msg. */
struct loader *loader__new(const struct loader_opts *opts, char *msg, size_t msglen);
/* The kernel's count of traced processes that exec'd (procs__retrack). */
uint64_t loader__execs(const struct loader *l);
/* The traced set's map, for procs.c. */
int loader__procs_fd(const struct loader *l);
/* Puts the two request uprobes on t's interpreter file, once per file (a
 * procs_opts.probe); 0 or -errno with a message. */
int loader__probe(void *ctx, const struct target *t, char *msg, size_t msglen);
/* The router's counts of records it could not dispatch. */
void loader__router_stats(struct loader *l, struct router_stats *out);
/* Waits up to timeout_ms for events and dispatches them; count or -errno. */
int loader__poll(struct loader *l, int timeout_ms);
/* Dispatches what is already in the ring buffer without waiting. */
int loader__drain(struct loader *l);
int loader__stats(struct loader *l, struct pbpf_stats *out);
/* The traced set's size (--max-procs). */
__u32 loader__max_procs(const struct loader *l);
/* How many processes are traced right now. */
int loader__traced_count(struct loader *l);
void loader__free(struct loader *l);

#endif
