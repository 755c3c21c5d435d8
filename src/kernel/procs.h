/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The traced processes: which processes the BPF programs read, each with its
 * interpreter descriptor in the traced set (a BPF map the loader owns).  A
 * target given with -p is seeded with its process tree; with --all every
 * CPython on the node is, at start from /proc and afterwards as processes
 * exec (the exec hook reports them); a traced process that execs is resolved
 * again.  Resolution waits for a new image's interpreter to be mapped and
 * initialized, retrying for a few seconds.  The fork hook does the rest in
 * the kernel.
 */
#ifndef PROFILIS_PROCS_H
#define PROFILIS_PROCS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "interps.h"

struct procs_opts {
	int map_fd;		 /* traced_procs */
	uint32_t max_procs;	 /* its size */
	struct interps *interps; /* gives each descriptor its id */
	/* Puts the request uprobes on t's interpreter file (once per file). */
	int (*probe)(void *ctx, const struct target *t, char *msg, size_t msglen);
	void *probe_ctx;
	/* --all: whether to trace a resolved process (selectors); NULL: every
	 * one.  Not asked for -p targets and their trees. */
	bool (*select)(void *ctx, const struct interp *ip);
	void *select_ctx;
	bool discover; /* --all: exec'd processes not traced yet are looked at */
};

struct procs_stats {
	uint64_t exec_resolved;	   /* traced processes that exec'd CPython again */
	uint64_t exec_not_python;  /* ... something we do not trace (children still are) */
	uint64_t exec_gone;	   /* ... and exited before it could be resolved */
	uint64_t discovered;	   /* --all: processes found and traced */
	uint64_t not_selected;	   /* --all: CPythons the selectors left out */
	uint64_t unsupported;	   /* --all: CPythons of a version we do not read */
	uint64_t pending_overflow; /* exec reports dropped: too many at once */
	uint64_t set_full;	   /* --all: not traced, the set was full */
};

struct procs;

struct procs *procs__new(const struct procs_opts *o);
/* Traces `root` (resolved) and its descendants, each resolved on its own. */
int procs__trace_tree(struct procs *p, const struct interp *root, char *msg, size_t msglen);
/* --all: traces every CPython running now; how many. */
int procs__discover(struct procs *p);
/* The exec hook reported `pid` (router). */
void procs__exec_seen(struct procs *p, uint32_t pid);
/* Resolves reported processes whose time has come; every tick.  `execs` is
 * the kernel's count of traced processes that exec'd (a report lost in a
 * full ring buffer is then found in the traced set). */
void procs__retrack(struct procs *p, int64_t now_ns, uint64_t execs);
/* Whether reports wait: poll again soon rather than in 100 ms. */
bool procs__busy(const struct procs *p);
void procs__stats(const struct procs *p, struct procs_stats *out);
void procs__free(struct procs *p);

#endif
