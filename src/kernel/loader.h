/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The loader: the only user of the BPF skeleton.  Configures and loads the
 * programs once; then for each target seeds its process tree into the traced
 * set, each process with its own interpreter descriptor, and attaches the
 * request uprobes once per interpreter file (filtered in the kernel by the
 * traced set).  Processes that exec are resolved again.  Every ring-buffer
 * record goes to the router.
 */
#ifndef PROFILIS_LOADER_H
#define PROFILIS_LOADER_H

#include <stddef.h>
#include <sys/types.h>
#include "profilis/abi.h"
#include "interps.h"
#include "router.h"

struct loader_opts {
	struct interps *interps;	      /* gives each descriptor its id */
	const struct pbpf_filter_cfg *filter; /* sampling and exclusions */
	size_t ringbuf_bytes;		      /* power of two */
	const struct router_sinks *sinks;     /* where records go */
	int libbpf_verbose;		      /* pass libbpf's log to stderr */
	int sample_hz;			      /* stack sampling; 0: off */
	int max_depth;			      /* frames per stack, <= PBPF_STACK_MAX */
	int offcpu;			      /* record blocked stacks */
	int max_procs;			      /* traced set and flask_seen; 0: 4096 */
	int max_inflight;		      /* requests in flight; 0: 16384 */
};

struct loader;

/* Loads the programs and attaches the process hooks and the sampler; no
 * process is traced yet.  NULL on failure with errno set and a message
 * (cause and remedy) in msg. */
struct loader *loader__new(const struct loader_opts *opts, char *msg, size_t msglen);
/* Traces `root` (resolved) and its descendants, each resolved on its own;
 * attaches the request uprobes to every new interpreter file.  0 or -errno
 * with a message. */
int loader__trace(struct loader *l, const struct interp *root, char *msg, size_t msglen);
/* Called when a traced process exec'd (router): it is resolved again. */
void loader__exec_seen(struct loader *l, uint32_t pid);
/* Resolves processes that exec'd, retrying while their new interpreter is
 * not mapped yet (up to 3 s); call every tick.  `now_ns` is CLOCK_MONOTONIC. */
void loader__retrack(struct loader *l, int64_t now_ns);
/* The router's counts of records it could not dispatch. */
void loader__router_stats(struct loader *l, struct router_stats *out);
/* Processes resolved again after exec, and those given up on. */
void loader__exec_stats(struct loader *l, uint64_t *resolved, uint64_t *not_python);
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
