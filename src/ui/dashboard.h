/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The dashboard renderer: a statistics snapshot becomes a frame of plain
 * text lines at a given width and height, each tagged with a style.  It
 * writes no escape sequences (term.c does), so frames are golden-tested.
 */
#ifndef PROFILIS_DASHBOARD_H
#define PROFILIS_DASHBOARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "aggregator.h"

#define DASH_LINES_MAX 200
#define DASH_LINE_BYTES 1024 /* UTF-8: sparkline blocks take 3 bytes each */
#define DASH_SERVICE_MAX 24  /* widest SERVICE column; longer names end in "…" */

enum dash_col {
	COL_METHOD,
	COL_ROUTE,
	COL_RPS,
	COL_P50,
	COL_P95,
	COL_P99,
	COL_MAX,
	COL_5XX,
	COL_4XX,
	COL__COUNT,
};

enum dash_style { DS_PLAIN, DS_TITLE, DS_TOTALS, DS_HEADING, DS_ERROR, DS_FOOTER };

struct dash_header {
	int pid;
	char process[64];
	char server[32];
	char python[32];
	double uptime_s;
	double events_per_s;
	uint64_t lost;
	int64_t inflight;
};

/* One line of the hot-functions pane. */
struct dash_hot {
	char function[256];
	double own_pct, total_pct; /* of the on-CPU samples in scope */
	double wait_ms;		   /* blocked time with it on the stack */
};

struct dash_state {
	enum dash_col sort;
	bool reverse;
	bool paused;
	bool help;
	enum agg_window window;
	int window_minutes;
	/* The hot-functions pane: shown when hot is set.  `selected` marks a
	 * route row; hot_title names the scope ("all routes" or a route). */
	const struct dash_hot *hot;
	size_t nhot;
	const char *hot_title;
	int selected;
};

struct dash_frame {
	int nlines;
	char text[DASH_LINES_MAX][DASH_LINE_BYTES];
	enum dash_style style[DASH_LINES_MAX];
};

/* Renders into `f`: at most `height` lines, none wider than `width` columns. */
void dashboard_render(const struct dash_header *h, const struct agg_snapshot *s,
		      const struct dash_state *st, int width, int height, struct dash_frame *f);

/* Whether the snapshot holds more than one service (its service rows,
 * route rows or recent errors; "" counts as one, shown "-"): then the table
 * has a SERVICE column and errors name their service. */
bool dashboard_many_services(const struct agg_snapshot *s);

/* Sorts snapshot rows by a column (descending unless reverse; names ascend). */
void dashboard_sort(struct agg_snapshot *s, enum dash_col col, bool reverse);

/* "850us", "1.23ms", "12.3ms", "1.20s": always 7 columns or fewer. */
void dashboard_fmt_duration(uint64_t ns, char *out, size_t len);

/* Appends a sparkline of `n` values (scaled to their max) in `cols` columns. */
void dashboard_sparkline(const double *v, int n, int cols, char *out, size_t len);

/* Display columns of a UTF-8 string (one per code point). */
int dashboard_columns(const char *s);

/* Copies s into out cut to `cols` columns, ending in "…" when cut. */
void dashboard_fit(const char *s, int cols, char *out, size_t len);

#endif
