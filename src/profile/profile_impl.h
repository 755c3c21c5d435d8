/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The profile's insides, shared by the files of src/profile/ and nobody
 * else: the profile is one stage (profile.h) whose methods are spread over
 * one file per job: profile.c (life cycle, the request join, the locked
 * file write), stacks.c (symbolizing and interning frames, stacks, routes
 * and cells), hot.c (hot functions, route order, the PROFILE record),
 * folded.c and speedscope.c (the two file formats).  Helpers used across
 * those files are named after their file; all but profile_write are called
 * with the profile's lock held.
 */
#ifndef PROFILIS_PROFILE_IMPL_H
#define PROFILIS_PROFILE_IMPL_H

#include <pthread.h>
#include <stdio.h>
#include "intern.h"
#include "profile.h"

struct symbols;

struct frame {	    /* four strings in one allocation (str) */
	char *name; /* "qualname (file:line)" */
	char *func; /* "qualname (basename)": what hot functions group by */
	char *file;
	char *qualname;
	int line;
	char *str;
};

struct cell {
	double samples, offcpu_ns;
};

struct pending {
	uint64_t key[2]; /* pid << 32 | tid, start */
	uint32_t stack;
	int offcpu;
	uint64_t offcpu_ns, arrived_ns;
};

struct profile {
	struct profile_opts o;
	pthread_mutex_t lock;
	struct symbols *syms;
	struct htab frames, stacks, routes, cells;
	struct frame *frame_v;
	struct cell *cell_v;
	struct pending *pend;
	size_t npend, cappend;
	size_t nreq_routes; /* "METHOD route" keys, pseudo routes not counted */
	uint64_t next_prune_ns;
	struct profile_stats st;
};

/* Symbolizes an event into a stack id (frames root first), or -errno. */
long stacks__intern(struct profile *p, const struct pbpf_stack_event *e, uint64_t now);
/* Adds one sample or blocked time of `stack` to `route` (interned here). */
void stacks__credit(struct profile *p, const char *route, uint32_t stack, int offcpu,
		    uint64_t offcpu_ns);
/* The id of a route key, or -ENOENT. */
long stacks__find_route(const struct profile *p, const char *route_key);
/* The frame ids of a stack, root first. */
const uint32_t *stacks__ids(const struct profile *p, uint32_t stack, size_t *n);
/* The (route, stack) key of a cell. */
void stacks__cell_key(const struct profile *p, size_t cell, uint32_t *route, uint32_t *stack);

/* Writes the file at `path` through `body`, under the lock, into a new file
 * renamed over `path` once complete (safefile); 0 or -errno. */
int profile_write(struct profile *p, const char *path, void (*body)(struct profile *p, FILE *f));

/* On-CPU samples and blocked time in one unit: seconds of wall time. */
static inline double profile_wall_s(const struct profile *p, double samples, double offcpu_ns)
{
	return samples / p->o.sample_hz + offcpu_ns / 1e9;
}

#endif
