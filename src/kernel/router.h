/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The event router: every ring-buffer record is validated (its kind, and a
 * size that holds that kind's whole layout) and handed to the sink for its
 * kind, in this one place.  It runs on the ring-buffer thread, so sinks only
 * queue: symbolization and export happen on the stages' own threads.
 */
#ifndef PROFILIS_ROUTER_H
#define PROFILIS_ROUTER_H

#include <stddef.h>
#include <stdint.h>
#include "profilis/abi.h"

struct router_sinks {
	void *ctx;
	void (*request)(void *ctx, const struct pbpf_req_event *e);
	void (*stack)(void *ctx, const struct pbpf_stack_event *e); /* optional */
	void (*exec)(void *ctx, uint32_t pid);			    /* optional */
	void (*first_seen)(void *ctx, uint32_t pid);		    /* optional */
};

/* Records that were not dispatched, by reason. */
struct router_stats {
	uint64_t too_short;    /* shorter than their kind's layout */
	uint64_t unknown_kind; /* a kind this build does not know */
};

/* Dispatches one record; 0, or -EINVAL when it was not dispatched. */
int router_dispatch(const struct router_sinks *s, struct router_stats *st, const void *data,
		    size_t size);

#endif
