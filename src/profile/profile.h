/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The profile: stack samples (on-CPU) and blocked stacks (off-CPU) from BPF,
 * symbolized as they arrive, joined with the request they were taken in, and
 * aggregated per (method, route).  Outputs: hot functions per route,
 * collapsed stacks (--folded) and a speedscope file (--speedscope).
 * Thread-safe: stacks arrive on the stack collector's thread, requests on
 * the request collector's, ticks and reads come from the main thread.
 */
#ifndef PROFILIS_PROFILE_H
#define PROFILIS_PROFILE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "profilis/abi.h"
#include "interps.h"

#define PROF_OUTSIDE "(outside a request)"
#define PROF_UNRECORDED "(request not recorded)"
#define PROF_OTHER "(other)"		  /* routes past PROF_ROUTE_MAX */
#define PROF_OTHER_FRAME "[other frames]" /* frames past PROF_FRAME_MAX */
#define PROF_OTHER_STACK "[other stacks]" /* stacks past PROF_STACK_MAX */

/* Caps that bound the profile's memory whatever the target does (a 404
 * scanner, generated code, churning workers).  Past a cap, new keys share
 * the "(other)" bucket of their kind and profile_stats.capped counts them.
 * At the caps, at most ~30 MiB of frames (with the longest names), ~9 MiB
 * of stacks, ~5 MiB of cells and 2.5 MiB of pending samples; a typical
 * service stays under 2 MiB.  The symbol cache has caps of its own. */
#define PROF_ROUTE_MAX 512     /* "METHOD route" keys (pseudo routes aside) */
#define PROF_FRAME_MAX 16384   /* distinct (function, file, line) */
#define PROF_PSEUDO_FRAMES 8   /* of PROF_FRAME_MAX, kept for [no GIL] & co. */
#define PROF_STACK_MAX 16384   /* distinct stacks */
#define PROF_CELL_MAX 65536    /* distinct (route, stack) pairs */
#define PROF_PENDING_MAX 65536 /* samples waiting for their request */
#define PROF_DEFAULT_HZ 99     /* -F when profile_opts.sample_hz is 0 */

struct profile_opts {
	struct interps *interps; /* each stack's desc_id: how to read its code */
	uint64_t pending_ns;	 /* how long samples wait for their request */
	int sample_hz;		 /* -F: one on-CPU sample stands for 1/sample_hz s */
};

struct profile_hot {
	char function[256];	   /* "qualname (file.py)" */
	double own_samples;	   /* on-CPU samples with it innermost */
	double total_samples;	   /* on-CPU samples with it anywhere */
	double offcpu_ns;	   /* blocked time with it anywhere */
	double offcpu_own_ns;	   /* blocked time with it innermost */
	double own_pct, total_pct; /* of the route's on-CPU samples */
	/* Of the route's wall time (on-CPU samples at -F plus blocked time). */
	double own_wall_pct, total_wall_pct;
};

struct profile_stats {
	uint64_t samples; /* on-CPU samples */
	uint64_t offcpu_stacks;
	uint64_t offcpu_ns;
	uint64_t no_gil, no_python; /* classified samples */
	uint64_t pending;	    /* waiting for their request */
	uint64_t truncated;
	uint64_t unknown_frames; /* code objects that could not be read */
	uint64_t capped;	 /* keys folded into an "(other)" bucket by a cap */
	uint64_t oom;		 /* allocations that failed */
	uint64_t dropped;	 /* samples and blocked stacks not kept (oom) */
	uint64_t exited_procs;	 /* processes whose symbols were dropped */
	/* Sizes now: request routes, frames, stacks, (route, stack) cells and
	 * cached code objects. */
	uint64_t routes, frames, stacks, cells, symbols;
};

struct profile;

struct profile *profile__new(const struct profile_opts *o);
void profile__push_stack(struct profile *p, const struct pbpf_stack_event *e, uint64_t now_ns);
/* A finished request: its samples (pid, tid, start) move to its route. */
void profile__push_request(struct profile *p, uint32_t pid, uint32_t tid, uint64_t start_ns,
			   const char *method, const char *route);
/* Samples older than pending_ns without a request go to PROF_UNRECORDED;
 * once a second, the symbols of processes that exited are dropped. */
void profile__tick(struct profile *p, uint64_t now_ns);
/* Top functions of a route ("METHOD route"; NULL: all routes): by the share
 * of wall time they are innermost in, then by the share they are in at all. */
size_t profile__hot(struct profile *p, const char *route_key, struct profile_hot *out, size_t max);
/* Route keys with samples, most wall time (on-CPU + blocked) first; returns
 * the count. */
size_t profile__routes(struct profile *p, char (*out)[300], size_t max);
/* "route;frame;frame count" per on-CPU stack; 0 or -errno. */
int profile__write_folded(struct profile *p, const char *path);
/* A speedscope document, one on-CPU and one off-CPU profile per route. */
int profile__write_speedscope(struct profile *p, const char *path);
/* One JSONL "PROFILE" record for a route (cumulative since attach): its
 * samples, blocked time and top functions.  Length, or -errno. */
int profile__jsonl(struct profile *p, const char *route_key, uint64_t ts_ns,
		   int64_t realtime_offset_ns, char *buf, size_t len);
void profile__stats(struct profile *p, struct profile_stats *out);
void profile__free(struct profile *p);

#endif
