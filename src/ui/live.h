/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The live views over the aggregator: the terminal dashboard (with its
 * keys), the plain periodic table for non-terminals (--table), the
 * --stats-json snapshot file, and the summary table printed at exit.
 */
#ifndef PROFILIS_LIVE_H
#define PROFILIS_LIVE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include "aggregator.h"
#include "dashboard.h"

struct profile;

enum live_mode { LIVE_NONE, LIVE_DASHBOARD, LIVE_TABLE };

struct live_opts {
	enum live_mode mode;
	double interval_s;	/* redraw / rewrite period */
	const char *stats_json; /* NULL: none */
	int window_minutes;
	struct dash_header header; /* pid, process, server, python */
	struct profile *profile;   /* hot functions pane; NULL: none */
	uint64_t start_ns;	   /* CLOCK_MONOTONIC at attach */
};

/* What the views show that the aggregator does not know. */
struct live_counters {
	uint64_t events; /* events received so far */
	uint64_t lost;
	int64_t inflight;
};

struct live;

struct live *live__new(const struct live_opts *opts, struct aggregator *agg);
/* Call often (every ~100 ms): handles keys and redraws when due.
 * Returns 1 when the user asked to quit, else 0. */
int live__tick(struct live *l, uint64_t now_ns, const struct live_counters *c);
/* The final routes table (long window) to `out`. */
void live__summary(struct live *l, uint64_t now_ns, FILE *out);
/* Restores the terminal and frees. */
void live__free(struct live *l);

/* Pure: the plain table (heading and rows) of a sorted snapshot. */
void live_table(const struct agg_snapshot *s, int width, struct dash_frame *f);

#endif
