/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The aggregator: live statistics per (service, method, route), per service
 * and overall over a rolling window (--window-minutes; 1-minute slots up to an hour, beyond
 * that 60 slots of whole minutes, so memory does not grow with the window)
 * and a short "now" window (10 s, 1-second slots): weighted counts, req/s over the real elapsed time,
 * 4xx and 5xx shares, latency percentiles, a 60 x 1 s sparkline, and a ring
 * of recent errors.  Time is passed in (CLOCK_MONOTONIC ns), never read, so
 * tests drive it with an injected clock.  Thread-safe.
 */
#ifndef PROFILIS_AGGREGATOR_H
#define PROFILIS_AGGREGATOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "request.h"

#define AGG_SPARK 60
#define AGG_NOW_SECS 10
/* Bounds, so a scanner of random paths or a node of many services cannot
 * grow the statistics: at most AGG_ROUTE_MAX - 1 (service, method, route)
 * rows, then each service's further routes share one ("*", "(other)") row
 * of that service; at most AGG_SERVICE_MAX - 1 services, then further ones
 * share the service "(other)" (their rows too).  So at most
 * AGG_ROUTE_MAX - 1 + AGG_SERVICE_MAX rows, AGG_ROUTE_MAX with one service. */
#define AGG_ROUTE_MAX 512
#define AGG_SERVICE_MAX 128
#define AGG_OTHER "(other)"

enum agg_window { AGG_WINDOW_LONG, AGG_WINDOW_NOW };

struct agg_opts {
	int window_minutes; /* 1..1440, default 15 */
	int max_errors;	    /* recent-error ring, default 100 */
	uint64_t start_ns;  /* when observation began (attach) */
};

struct agg_row {
	char service[64]; /* "" when unknown; cut at a UTF-8 boundary */
	char method[16];
	char route[256];
	double count; /* weighted by 1/sample_rate */
	double rps;
	double pct_5xx, pct_4xx; /* 0..100 */
	uint64_t p50_ns, p95_ns, p99_ns, max_ns;
	double spark[AGG_SPARK]; /* weighted requests per second, oldest first */
};

struct agg_error {
	uint64_t time_unix_ns;
	char method[16];
	char route[256];
	int status;
	char exception_type[64];
	char service[64]; /* last: positional initializers stay valid */
};

struct agg_snapshot {
	enum agg_window window;
	double window_secs; /* the elapsed time the rates divide by */
	struct agg_row total;
	struct agg_row *rows; /* malloc'ed */
	size_t nrows;
	/* One row per service (method "", route "(all)"), in order of first
	 * request; like rows, only those with traffic in the window. */
	struct agg_row *services; /* malloc'ed */
	size_t nservices;
	struct agg_error *errors; /* newest first, malloc'ed */
	size_t nerrors;
	uint64_t errors_total;
};

struct aggregator;

struct aggregator *aggregator__new(const struct agg_opts *opts);
/* Adds a finished request; its end time r->ts_ns places it in the slots. */
void aggregator__push(struct aggregator *a, const struct request_record *r);
/* Fills a snapshot of `window` as of `now_ns`; aggregator__snapshot_free releases it. */
int aggregator__snapshot(struct aggregator *a, enum agg_window window, uint64_t now_ns,
			 struct agg_snapshot *out);
void aggregator__snapshot_free(struct agg_snapshot *s);
/* Memory held: rows, slots and histograms (at most
 * AGG_ROUTE_MAX - 1 + AGG_SERVICE_MAX route rows, AGG_SERVICE_MAX service
 * rows and the total, of at most 70 slots each). */
size_t aggregator__bytes(struct aggregator *a);
void aggregator__free(struct aggregator *a);

#endif
