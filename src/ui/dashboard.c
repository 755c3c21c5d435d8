// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Layout: a title line, a totals line with a sparkline, the routes table
 * (the ROUTE column takes the width that is left; long routes are cut with
 * "…", never wrapped), the recent errors, and a key reminder.  With more
 * than one service in the snapshot, a SERVICE column (as wide as the
 * longest name, 7 to DASH_SERVICE_MAX columns) comes between METHOD and
 * ROUTE, and each recent error names its service; with one, the layout is
 * the single-service one, column for column.  Counting is
 * by code points: routes are mostly ASCII and the blocks are one column.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "dashboard.h"

static const char *const col_names[COL__COUNT] = {
	"METHOD", "ROUTE", "REQ/S", "P50", "P95", "P99", "MAX", "5XX%", "4XX%",
};
/* Widths of every column but ROUTE, which gets what remains. */
static const int col_width[COL__COUNT] = { 7, 0, 9, 8, 8, 8, 8, 6, 6 };

/* An unknown service (the process was gone before it was read). */
static const char *svc_name(const char *s)
{
	return s[0] ? s : "-";
}

int dashboard_columns(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += ((unsigned char)*s & 0xc0) != 0x80;
	return n;
}

void dashboard_fit(const char *s, int cols, char *out, size_t len)
{
	size_t o = 0;
	int used = 0, total = dashboard_columns(s);

	if (cols <= 0 || len == 0) {
		if (len)
			out[0] = 0;
		return;
	}
	for (const char *p = s; *p && o + 4 < len; p++) {
		unsigned char c = *p;
		bool lead = (c & 0xc0) != 0x80;
		size_t clen = c < 0x80 ? 1 : c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;

		if (lead && total > cols && used == cols - 1)
			break;
		if (lead && used == cols)
			break;
		if (lead && o + clen + 4 > len)
			break; /* a character is copied whole or not at all */
		used += lead;
		out[o++] = *p;
	}
	if (total > cols && o + 4 < len) {
		memcpy(out + o, "…", 3);
		o += 3;
	}
	out[o] = 0;
}

void dashboard_fmt_duration(uint64_t ns, char *out, size_t len)
{
	double us = ns / 1e3;

	/* Pick the unit from the rounded value: 999.6 us is "1.00ms", not "1000us". */
	if (ns == 0)
		snprintf(out, len, "-");
	else if (us < 999.5)
		snprintf(out, len, "%.0fus", us);
	else if (us < 9995)
		snprintf(out, len, "%.2fms", us / 1e3);
	else if (us < 999950)
		snprintf(out, len, "%.1fms", us / 1e3);
	else if (us < 99995000)
		snprintf(out, len, "%.2fs", us / 1e6);
	else
		snprintf(out, len, "%.0fs", us / 1e6);
}

void dashboard_sparkline(const double *v, int n, int cols, char *out, size_t len)
{
	static const char *const blocks[] = { " ", "▁", "▂", "▃", "▄", "▅", "▆", "▇", "█" };
	double max = 0;
	size_t o = 0;

	if (cols > n)
		cols = n;
	for (int i = n - cols; i < n; i++)
		if (v[i] > max)
			max = v[i];
	for (int i = n - cols; i < n && o + 4 < len; i++) {
		int level = max > 0 ? (int)ceil(v[i] / max * 8) : 0;
		const char *b = blocks[level < 0 ? 0 : level > 8 ? 8 : level];

		memcpy(out + o, b, strlen(b));
		o += strlen(b);
	}
	out[o] = 0;
}

static double row_key(const struct agg_row *r, enum dash_col c)
{
	switch (c) {
	case COL_RPS: return r->rps;
	case COL_P50: return r->p50_ns;
	case COL_P95: return r->p95_ns;
	case COL_P99: return r->p99_ns;
	case COL_MAX: return r->max_ns;
	case COL_5XX: return r->pct_5xx;
	case COL_4XX: return r->pct_4xx;
	default: return 0;
	}
}

struct sort_by {
	enum dash_col col;
	bool rev;
};

static int cmp_rows(const void *pa, const void *pb, void *arg)
{
	const struct agg_row *a = pa, *b = pb;
	const struct sort_by *by = arg;
	enum dash_col sort_col = by->col;
	bool sort_rev = by->rev;
	int c;

	if (sort_col == COL_METHOD || sort_col == COL_ROUTE) {
		c = sort_col == COL_METHOD ? strcmp(a->method, b->method) : 0;
		if (!c)
			c = strcmp(a->route, b->route);
		if (!c)
			c = strcmp(a->method, b->method);
		if (!c)
			c = strcmp(a->service, b->service);
		return sort_rev ? -c : c;
	}
	c = row_key(a, sort_col) < row_key(b, sort_col)	  ? 1
	    : row_key(a, sort_col) > row_key(b, sort_col) ? -1
							  : 0;
	if (!c)
		c = strcmp(a->route, b->route) ?: strcmp(a->method, b->method)
						      ?: strcmp(a->service, b->service);
	return sort_rev ? -c : c;
}

void dashboard_sort(struct agg_snapshot *s, enum dash_col col, bool reverse)
{
	struct sort_by by = { col, reverse };

	qsort_r(s->rows, s->nrows, sizeof(*s->rows), cmp_rows, &by);
}

static void add_line(struct dash_frame *f, int height, enum dash_style st, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void add_line(struct dash_frame *f, int height, enum dash_style st, const char *fmt, ...)
{
	va_list ap;

	if (f->nlines >= height || f->nlines >= DASH_LINES_MAX)
		return;
	va_start(ap, fmt);
	vsnprintf(f->text[f->nlines], DASH_LINE_BYTES, fmt, ap);
	va_end(ap);
	f->style[f->nlines++] = st;
}

/* Cuts a finished line to the width, so nothing ever wraps. */
static void clip_lines(struct dash_frame *f, int width)
{
	char tmp[DASH_LINE_BYTES];

	for (int i = 0; i < f->nlines; i++) {
		if (dashboard_columns(f->text[i]) <= width)
			continue;
		dashboard_fit(f->text[i], width, tmp, sizeof(tmp));
		memcpy(f->text[i], tmp, sizeof(tmp));
	}
}

static void fmt_uptime(double s, char *out, size_t len)
{
	long t = (long)s;

	snprintf(out, len, "%02ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
}

static void render_top(const struct dash_header *h, const struct agg_snapshot *s,
		       const struct dash_state *st, int width, int height, struct dash_frame *f)
{
	char up[32], p50[16], p95[16], p99[16], spark[AGG_SPARK * 3 + 1], line[DASH_LINE_BYTES];
	const struct agg_row *t = &s->total;
	int n, cols;

	fmt_uptime(h->uptime_s, up, sizeof(up));
	add_line(f, height, DS_TITLE,
		 "profilis-bpf%s  pid %d (%s)  %s  CPython %s  up %s  %.0f ev/s  lost %llu",
		 st->paused ? " [PAUSED]" : "", h->pid, h->process, h->server, h->python, up,
		 h->events_per_s, (unsigned long long)h->lost);
	dashboard_fmt_duration(t->p50_ns, p50, sizeof(p50));
	dashboard_fmt_duration(t->p95_ns, p95, sizeof(p95));
	dashboard_fmt_duration(t->p99_ns, p99, sizeof(p99));
	n = snprintf(line, sizeof(line),
		     "%s %.1f req/s  err %.1f%% (5xx %.1f%%, 4xx %.1f%%)  p50 %s  p95 %s  p99 %s  "
		     "in-flight %lld  ",
		     st->window == AGG_WINDOW_NOW ? "10s" : "all", t->rps, t->pct_5xx + t->pct_4xx,
		     t->pct_5xx, t->pct_4xx, p50, p95, p99, (long long)h->inflight);
	/* The sparkline takes the rest of the line, up to its 60 seconds. */
	cols = width - dashboard_columns(line);
	dashboard_sparkline(t->spark, AGG_SPARK, cols > AGG_SPARK ? AGG_SPARK : cols, spark,
			    sizeof(spark));
	if (n > 0 && (size_t)n < sizeof(line))
		snprintf(line + n, sizeof(line) - n, "%s", spark);
	add_line(f, height, DS_TOTALS, "%s", line);
}

static void render_heading(const struct dash_state *st, int svc_w, int route_w, int height,
			   struct dash_frame *f)
{
	char line[DASH_LINE_BYTES], name[32];
	size_t o = 0;

	for (int c = 0; c < COL__COUNT; c++) {
		int w = c == COL_ROUTE ? route_w : col_width[c];

		if (c == COL_ROUTE && svc_w)
			o += snprintf(line + o, sizeof(line) - o, "%-*s ", svc_w, "SERVICE");

		snprintf(name, sizeof(name), "%s%s", col_names[c],
			 (int)st->sort == c ? (st->reverse ? "^" : "v") : "");
		o += snprintf(line + o, sizeof(line) - o, c <= COL_ROUTE ? "%-*s " : "%*s ", w,
			      name);
	}
	if (o > 0 && line[o - 1] == ' ')
		line[o - 1] = 0; /* no trailing blank */
	add_line(f, height, DS_HEADING, "%s", line);
}

/* The service fitted to its column and padded, with the blank after it;
 * "" when the column is not shown (svc_w 0). */
static void fit_service(const char *service, int svc_w, char *out, size_t len)
{
	char cut[DASH_SERVICE_MAX * 4 + 4]; /* whole UTF-8 characters and "…" */
	int pad;

	out[0] = 0;
	if (!svc_w)
		return;
	dashboard_fit(svc_name(service), svc_w, cut, sizeof(cut));
	pad = svc_w - dashboard_columns(cut);
	snprintf(out, len, "%s%*s ", cut, pad > 0 ? pad : 0, "");
}

static void render_row(const struct agg_row *r, int svc_w, int route_w, int height,
		       struct dash_frame *f, bool selected)
{
	char route[DASH_LINE_BYTES], svc[DASH_SERVICE_MAX * 4 + 8], d[4][16], method[16];
	int pad;

	fit_service(r->service, svc_w, svc, sizeof(svc));
	dashboard_fit(r->route, route_w, route, sizeof(route));
	/* The selection marker takes the method column's last cell: widths stay. */
	if (selected)
		snprintf(method, sizeof(method), "%-6.6s>", r->method);
	else
		snprintf(method, sizeof(method), "%-7.7s", r->method);
	pad = route_w - dashboard_columns(route);
	dashboard_fmt_duration(r->p50_ns, d[0], sizeof(d[0]));
	dashboard_fmt_duration(r->p95_ns, d[1], sizeof(d[1]));
	dashboard_fmt_duration(r->p99_ns, d[2], sizeof(d[2]));
	dashboard_fmt_duration(r->max_ns, d[3], sizeof(d[3]));
	add_line(f, height,
		 selected	  ? DS_HEADING
		 : r->pct_5xx > 0 ? DS_ERROR
				  : DS_PLAIN,
		 "%s %s%s%*s %9.1f %8s %8s %8s %8s %6.1f %6.1f", method, svc, route,
		 pad > 0 ? pad : 0, "", r->rps, d[0], d[1], d[2], d[3], r->pct_5xx, r->pct_4xx);
}

static void render_hot(const struct dash_state *st, int width, int height, struct dash_frame *f)
{
	char fn[DASH_LINE_BYTES];
	int fw = width - 22;

	if (fw < 20)
		fw = 20;
	char title[DASH_LINE_BYTES], cut[DASH_LINE_BYTES];
	int tpad;

	snprintf(title, sizeof(title), "HOT FUNCTIONS (%s)",
		 st->hot_title ? st->hot_title : "all routes");
	dashboard_fit(title, fw, cut, sizeof(cut));
	tpad = fw - dashboard_columns(cut);
	/* Right edges line up with the row's " %5.1f  %5.1f  %7s". */
	add_line(f, height, DS_HEADING, "%s%*s %5s %6s  %7s", cut, tpad > 0 ? tpad : 0, "", "OWN%",
		 "TOTAL%", "WAIT");
	for (size_t i = 0; i < st->nhot && f->nlines < height; i++) {
		const struct dash_hot *h = &st->hot[i];
		char wait[16];
		int pad;

		dashboard_fit(h->function, fw, fn, sizeof(fn));
		pad = fw - dashboard_columns(fn);
		dashboard_fmt_duration((uint64_t)(h->wait_ms * 1e6), wait, sizeof(wait));
		add_line(f, height, DS_PLAIN, "%s%*s %5.1f  %5.1f  %7s", fn, pad > 0 ? pad : 0, "",
			 h->own_pct, h->total_pct, wait);
	}
	if (st->nhot == 0)
		add_line(f, height, DS_PLAIN, "(no stack samples yet)");
}

static void render_errors(const struct agg_snapshot *s, int svc_w, int width, int height,
			  struct dash_frame *f)
{
	char route[DASH_LINE_BYTES], svc[DASH_SERVICE_MAX * 4 + 8], when[16];
	int route_w = (width > 60 ? width - 45 : 15) - (svc_w ? svc_w + 1 : 0);

	add_line(f, height, DS_HEADING, "RECENT ERRORS (%llu in all)",
		 (unsigned long long)s->errors_total);
	for (size_t i = 0; i < s->nerrors && f->nlines < height; i++) {
		const struct agg_error *e = &s->errors[i];
		time_t t = e->time_unix_ns / 1000000000ULL;
		struct tm tm;

		localtime_r(&t, &tm);
		strftime(when, sizeof(when), "%H:%M:%S", &tm);
		fit_service(e->service, svc_w, svc, sizeof(svc));
		dashboard_fit(e->route, route_w > 15 ? route_w : 15, route, sizeof(route));
		add_line(f, height, DS_ERROR, "%s  %-7.7s %s%s  %d  %s", when, e->method, svc,
			 route, e->status, e->exception_type[0] ? e->exception_type : "-");
	}
}

static void render_help(int height, struct dash_frame *f)
{
	static const char *const lines[] = {
		"KEYS",
		"  q        quit (also Ctrl-C)",
		"  s        sort by the next column",
		"  < >      sort by the previous / next column",
		"  r        reverse the sort",
		"  p        pause / resume the display (collection goes on)",
		"  w        switch between the long window and the last 10 seconds",
		"  j k      move the route selection (arrows too)",
		"  Enter    hot functions of the selected route / of all routes",
		"  ?        this help; any key returns",
	};

	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
		add_line(f, height, i ? DS_PLAIN : DS_HEADING, "%s", lines[i]);
}

static bool other_service(const char *first, const char *s)
{
	return strcmp(first, s) != 0;
}

bool dashboard_many_services(const struct agg_snapshot *s)
{
	const char *first = s->nservices ? s->services[0].service
			    : s->nrows	 ? s->rows[0].service
			    : s->nerrors ? s->errors[0].service
					 : "";

	if (s->nservices > 1)
		return true;
	for (size_t i = 0; i < s->nrows; i++)
		if (other_service(first, s->rows[i].service))
			return true;
	for (size_t i = 0; i < s->nerrors; i++)
		if (other_service(first, s->errors[i].service))
			return true;
	return false;
}

/* The SERVICE column's width: its longest name shown, at least the
 * heading's, at most what leaves ROUTE 16 columns of the `room` the two
 * share; 0 (no column) with one service. */
static int service_width(const struct agg_snapshot *s, int room)
{
	int w = 7, most = room - 16 - 1;

	if (!dashboard_many_services(s))
		return 0;
	for (size_t i = 0; i < s->nrows; i++)
		if (dashboard_columns(svc_name(s->rows[i].service)) > w)
			w = dashboard_columns(svc_name(s->rows[i].service));
	for (size_t i = 0; i < s->nerrors; i++)
		if (dashboard_columns(svc_name(s->errors[i].service)) > w)
			w = dashboard_columns(svc_name(s->errors[i].service));
	if (w > DASH_SERVICE_MAX)
		w = DASH_SERVICE_MAX;
	return w > most ? (most > 7 ? most : 7) : w;
}

void dashboard_render(const struct dash_header *h, const struct agg_snapshot *s,
		      const struct dash_state *st, int width, int height, struct dash_frame *f)
{
	int fixed = 0, svc_w, route_w, table_end, err_lines, hot_lines;

	f->nlines = 0;
	if (height > DASH_LINES_MAX)
		height = DASH_LINES_MAX;
	for (int c = 0; c < COL__COUNT; c++)
		fixed += col_width[c] + 1;
	svc_w = service_width(s, width - fixed - 1);
	route_w = width - fixed - 1 - (svc_w ? svc_w + 1 : 0);
	if (route_w < 8)
		route_w = 8;
	render_top(h, s, st, width, height, f);
	add_line(f, height, DS_PLAIN, "%s", "");
	if (st->help) {
		render_help(height, f);
	} else {
		/* Errors get up to a third of the screen, the table the rest. */
		err_lines = s->nerrors ? (int)s->nerrors + 1 : 1;
		if (err_lines > height / 3)
			err_lines = height / 3;
		table_end = height - err_lines - 2;
		hot_lines = st->hot ? (int)(st->nhot ? st->nhot : 1) + 2 : 0;
		if (hot_lines > height / 3)
			hot_lines = height / 3;
		table_end -= hot_lines;
		render_heading(st, svc_w, route_w, height, f);
		for (size_t i = 0; i < s->nrows && f->nlines < table_end; i++)
			render_row(&s->rows[i], svc_w, route_w, height, f,
				   st->hot && (int)i == st->selected);
		if (s->nrows == 0)
			add_line(f, height, DS_PLAIN, "(no requests in this window yet)");
		add_line(f, height, DS_PLAIN, "%s", "");
		if (st->hot) {
			render_hot(st, width, f->nlines + hot_lines - 1, f);
			add_line(f, height, DS_PLAIN, "%s", "");
		}
		render_errors(s, svc_w, width, height - 1, f);
	}
	while (f->nlines < height - 1)
		add_line(f, height, DS_PLAIN, "%s", "");
	if (st->window == AGG_WINDOW_NOW)
		add_line(
			f, height, DS_FOOTER,
			"q quit  s/</> sort  r reverse  p pause  w window (10s)  j/k Enter hot  ? help");
	else
		add_line(
			f, height, DS_FOOTER,
			"q quit  s/</> sort  r reverse  p pause  w window (%dm)  j/k Enter hot  ? help",
			st->window_minutes);
	clip_lines(f, width);
}
