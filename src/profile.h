/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The profile: stack samples (on-CPU) and blocked stacks (off-CPU) from BPF,
 * symbolized at once, joined with the request they were taken in, and
 * aggregated per (method, route).  Outputs: hot functions per route,
 * collapsed stacks (--folded) and a speedscope file (--speedscope).
 * Thread-safe: stacks arrive on the main thread, requests on the collector's.
 */
#ifndef PROFILIS_PROFILE_H
#define PROFILIS_PROFILE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "profilis/abi.h"

#define PROF_OUTSIDE "(outside a request)"
#define PROF_UNRECORDED "(request not recorded)"

struct profile_opts {
	const struct pbpf_py_offsets *off;
	uint64_t code_type;		/* &PyCode_Type in the target, for validation */
	uint64_t pending_ns;		/* how long samples wait for their request */
};

struct profile_hot {
	char function[256];		/* "qualname (file.py)" */
	double own_samples;		/* on-CPU samples with it innermost */
	double total_samples;		/* on-CPU samples with it anywhere */
	double offcpu_ns;		/* blocked time with it anywhere */
	double offcpu_own_ns;		/* blocked time with it innermost */
	double own_pct, total_pct;	/* of the route's on-CPU samples */
};

struct profile_stats {
	uint64_t samples;		/* on-CPU samples */
	uint64_t offcpu_stacks;
	uint64_t offcpu_ns;
	uint64_t no_gil, no_python;	/* classified samples */
	uint64_t pending;		/* waiting for their request */
	uint64_t truncated;
	uint64_t unknown_frames;	/* code objects that could not be read */
};

struct profile;

struct profile *profile__new(const struct profile_opts *o);
void profile__push_stack(struct profile *p, const struct pbpf_stack_event *e, uint64_t now_ns);
/* A finished request: its samples (pid, tid, start) move to its route. */
void profile__push_request(struct profile *p, uint32_t pid, uint32_t tid, uint64_t start_ns,
			   const char *method, const char *route);
/* Samples older than pending_ns without a request go to PROF_UNRECORDED. */
void profile__tick(struct profile *p, uint64_t now_ns);
/* Top functions of a route ("METHOD route"; NULL: all routes), by total. */
size_t profile__hot(struct profile *p, const char *route_key, struct profile_hot *out,
		    size_t max);
/* Route keys with samples, most sampled first; returns the count. */
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
