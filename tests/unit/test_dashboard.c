// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The dashboard renderer and the plain table: a fixed snapshot (a 150-column
 * route, a non-ASCII route, 5xx and 4xx shares, durations from microseconds
 * to seconds, three recent errors) rendered at widths 80, 120 and 200 is
 * compared line by line with golden frames under tests/unit/golden/
 * (UPDATE_GOLDEN=1 rewrites them; review the diff), and the same frames are
 * checked independently: exactly `height` lines, none wider than the width,
 * long routes cut with "…", every number under its heading.  Also the help
 * screen, the paused title, small and odd sizes, a table too long for the
 * screen, the hot-functions pane, and the helpers: durations, fitting,
 * column counting, sparklines, sorting by every column.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "dashboard.h"
#include "live.h"

#define MS 1000000ULL
#define US 1000ULL
#define SEC 1000000000ULL

/* 155 columns: wider than the ROUTE column at every tested width. */
static const char long_route[] =
	"/api/v2/organizations/<int:org_id>/projects/<int:project_id>/repositories/"
	"<path:repo_name>/commits/<sha>/files/<path:file_path>/annotations/<int:line_no>/x";

static struct agg_row mkrow(const char *method, const char *route, double rps, double p5, double p4,
			    uint64_t p50, uint64_t p95, uint64_t p99, uint64_t max)
{
	struct agg_row r;

	memset(&r, 0, sizeof(r));
	snprintf(r.method, sizeof(r.method), "%s", method);
	snprintf(r.route, sizeof(r.route), "%s", route);
	r.rps = rps;
	r.count = rps * 900;
	r.pct_5xx = p5;
	r.pct_4xx = p4;
	r.p50_ns = p50;
	r.p95_ns = p95;
	r.p99_ns = p99;
	r.max_ns = max;
	return r;
}

/* The fixed snapshot; rows in no particular order (the test sorts them). */
static void fixture(struct agg_snapshot *s)
{
	static struct agg_row rows[7];
	static struct agg_error errs[3];

	memset(s, 0, sizeof(*s));
	rows[0] = mkrow("GET", "/healthz", 0.5, 0, 0, 120 * US, 150 * US, 200 * US, 250 * US);
	rows[1] = mkrow("POST", "/api/orders", 45.6, 3.3, 10.0, 12340 * US, 87600 * US, 250 * MS,
			2500 * MS);
	rows[2] = mkrow("GET", long_route, 2.0, 0, 50.0, 35 * MS, 120 * MS, 480 * MS, 1750 * MS);
	rows[3] = mkrow("GET", "/api/users/<int:id>", 123.4, 0, 2.5, 850 * US, 1234 * US,
			12340 * US, 1200 * MS);
	rows[4] = mkrow("DELETE", "/api/sessions/<token>", 0.8, 50.0, 0, 5 * MS, 9900 * US, 10 * MS,
			10 * MS);
	rows[5] = mkrow("GET", "/café/<name>", 7.3, 0, 0, 420 * US, 900 * US, 1500 * US, 3200 * US);
	rows[6] = mkrow("OPTIONS", "/api/users", 0.1, 0, 0, 60 * US, 60 * US, 60 * US, 60 * US);
	s->window = AGG_WINDOW_LONG;
	s->window_secs = 900;
	s->total =
		mkrow("", "(all)", 179.65, 0.99, 3.72, 900 * US, 15600 * US, 245 * MS, 2500 * MS);
	for (int i = 0; i < AGG_SPARK; i++) /* a wave with a 3-second gap */
		s->total.spark[i] = i >= 40 && i < 43 ? 0 : (i * 37) % 23 * 10;
	s->rows = rows;
	s->nrows = 7;
	errs[0] = (struct agg_error){
		1700003725500000000ULL, "DELETE", "/api/sessions/<token>", 503, "", ""
	};
	errs[1] = (struct agg_error){ 1700003720000000000ULL, "POST", "/api/orders", 500,
				      "ValueError",	      "" };
	errs[2] = (struct agg_error){
		1700003600000000000ULL, "GET", "", 500, "sqlalchemy.exc.OperationalError", ""
	};
	snprintf(errs[2].route, sizeof(errs[2].route), "%s", long_route);
	s->errors = errs;
	s->nerrors = 3;
	s->errors_total = 42;
}

static const struct dash_header header = {
	.pid = 4242,
	.process = "gunicorn",
	.server = "gunicorn",
	.python = "3.11.2",
	.uptime_s = 3725,
	.events_per_s = 1234.5,
	.lost = 0,
	.inflight = 3,
};

static const struct dash_state state = {
	.sort = COL_RPS,
	.window = AGG_WINDOW_LONG,
	.window_minutes = 15,
};

static struct dash_frame *frame(void)
{
	struct dash_frame *f = calloc(1, sizeof(*f));

	cr_assert_not_null(f);
	return f;
}

static void utc(void)
{
	setenv("TZ", "UTC", 1);
	tzset();
}

static struct dash_frame *render(const struct agg_snapshot *s, const struct dash_state *st,
				 int width, int height)
{
	struct dash_frame *f = frame();

	utc();
	dashboard_render(&header, s, st, width, height, f);
	return f;
}

/* The golden directory: next to this source, found from __FILE__ (relative
 * when built from the repository root) or from the binary in .output/. */
static void golden_path(const char *name, char *out, size_t len)
{
	char src[PATH_MAX], exe[PATH_MAX];
	ssize_t n;

	snprintf(src, sizeof(src), "%s", __FILE__);
	snprintf(out, len, "%s/golden/%s", dirname(src), name);
	if (access(out, F_OK) == 0 || getenv("UPDATE_GOLDEN"))
		return;
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return;
	exe[n] = 0;
	snprintf(src, sizeof(src), "%s/../tests/unit/golden/%s", dirname(exe), name);
	if (access(src, F_OK) == 0)
		snprintf(out, len, "%s", src);
}

static void check_golden(const struct dash_frame *f, const char *name)
{
	char path[PATH_MAX], *buf = NULL;
	size_t cap = 0;
	FILE *fp;
	int i = 0;

	golden_path(name, path, sizeof(path));
	if (getenv("UPDATE_GOLDEN")) {
		char dir[PATH_MAX];

		snprintf(dir, sizeof(dir), "%s", path);
		mkdir(dirname(dir), 0755);
		fp = fopen(path, "w");
		cr_assert_not_null(fp, "cannot write %s: %s", path, strerror(errno));
		for (int k = 0; k < f->nlines; k++)
			fprintf(fp, "%s\n", f->text[k]);
		cr_assert_eq(fclose(fp), 0);
		cr_log_warn("rewrote %s: review it before committing", path);
		return;
	}
	fp = fopen(path, "r");
	cr_assert_not_null(fp, "cannot read %s: %s (UPDATE_GOLDEN=1 creates it)", path,
			   strerror(errno));
	for (ssize_t n; (n = getline(&buf, &cap, fp)) >= 0; i++) {
		cr_assert(n > 0 && buf[n - 1] == '\n', "%s:%d: no newline at the end", path, i + 1);
		buf[n - 1] = 0;
		cr_assert_lt(i, f->nlines, "%s has more lines than the frame's %d", path,
			     f->nlines);
		cr_assert_str_eq(f->text[i], buf, "%s:%d differs\n  got:  [%s]\n  want: [%s]", path,
				 i + 1, f->text[i], buf);
	}
	free(buf);
	fclose(fp);
	cr_assert_eq(i, f->nlines, "%s has %d lines, the frame %d", path, i, f->nlines);
}

/* Display column just past the end of each space-separated token. */
static int token_ends(const char *s, int *ends, int max)
{
	int col = 0, n = 0;
	bool in = false;

	for (; *s; s++) {
		bool lead = ((unsigned char)*s & 0xc0) != 0x80;

		if (!lead)
			continue;
		if (*s == ' ' && in && n < max)
			ends[n++] = col;
		in = *s != ' ';
		col++;
	}
	if (in && n < max)
		ends[n++] = col;
	return n;
}

static int find_line(const struct dash_frame *f, const char *prefix)
{
	for (int i = 0; i < f->nlines; i++)
		if (!strncmp(f->text[i], prefix, strlen(prefix)))
			return i;
	return -1;
}

/* What every frame must satisfy, whatever the golden says. */
static void check_frame(const struct dash_frame *f, const struct agg_snapshot *s, int width,
			int height)
{
	int heading, ends[16], hend[16], nh, nr;

	cr_assert_eq(f->nlines, height, "%d lines at height %d", f->nlines, height);
	for (int i = 0; i < f->nlines; i++)
		cr_assert_leq(dashboard_columns(f->text[i]), width,
			      "line %d is %d columns at width %d: %s", i,
			      dashboard_columns(f->text[i]), width, f->text[i]);
	cr_assert_eq(f->style[0], DS_TITLE);
	cr_assert_eq(f->style[1], DS_TOTALS);
	cr_assert_eq(f->style[height - 1], DS_FOOTER);
	cr_assert_eq(strncmp(f->text[height - 1], "q quit", 6), 0);
	cr_assert_eq(strncmp(f->text[1], "all ", 4), 0, "totals: %s", f->text[1]);
	heading = find_line(f, "METHOD ");
	cr_assert_eq(heading, 3, "the table heading is line 4");
	cr_assert_eq(f->style[heading], DS_HEADING);
	cr_assert_not_null(strstr(f->text[heading], "REQ/Sv"), "sort marker on REQ/S");
	/* Numbers right-aligned under their headings (by display columns). */
	nh = token_ends(f->text[heading], hend, 16);
	cr_assert_eq(nh, COL__COUNT);
	for (size_t r = 0; r < s->nrows; r++) {
		const char *line = f->text[heading + 1 + r];

		cr_assert_eq(f->style[heading + 1 + r],
			     s->rows[r].pct_5xx > 0 ? DS_ERROR : DS_PLAIN);
		cr_assert_eq(strncmp(line, s->rows[r].method, strlen(s->rows[r].method)), 0,
			     "row %zu out of order: %s", r, line);
		nr = token_ends(line, ends, 16);
		cr_assert_eq(nr, COL__COUNT, "row %zu has %d fields: %s", r, nr, line);
		for (int c = COL_RPS; c < COL__COUNT; c++)
			cr_assert_eq(ends[c], hend[c],
				     "row %zu column %d ends at %d, heading at %d", r, c, ends[c],
				     hend[c]);
		/* The route starts in column 8 on every row. */
		cr_assert_eq(ends[0] <= 7 && line[8] == '/', 1, "route misplaced: %s", line);
	}
	/* The 155-column route: cut with "…" in the table, never wrapped. */
	int lr = find_line(f, "GET     /api/v2/");

	cr_assert_geq(lr, 0, "the long route's row is missing");
	const char *cut = f->text[lr] + 8, *ell = strstr(cut, "…");

	cr_assert_not_null(ell, "long route not cut with …: %s", f->text[lr]);
	cr_assert_eq(strncmp(cut, long_route, ell - cut), 0, "the cut route is not a prefix");
	cr_assert_eq(ell[3], ' ', "… must end the route field: %s", f->text[lr]);
	/* ...and fill the ROUTE column, which ends where REQ/S's 9 columns begin. */
	cr_assert_eq(8 + (ell - cut) + 1, hend[COL_RPS] - 9 - 1, "cut route is %d columns",
		     (int)(ell - cut) + 1);
	/* Errors, newest first, in UTC. */
	int eh = find_line(f, "RECENT ERRORS (42 in all)");

	cr_assert_geq(eh, 0);
	cr_assert_eq(strncmp(f->text[eh + 1], "23:15:25  DELETE  /api/sessions/<token>  503  -",
			     47),
		     0, "%s", f->text[eh + 1]);
	cr_assert_eq(strncmp(f->text[eh + 2], "23:15:20  POST    /api/orders  500  Value", 41), 0,
		     "%s", f->text[eh + 2]);
	cr_assert_eq(strncmp(f->text[eh + 3], "23:13:20  GET     /api/v2/", 26), 0, "%s",
		     f->text[eh + 3]);
	for (int k = 1; k <= 3; k++)
		cr_assert_eq(f->style[eh + k], DS_ERROR);
}

static void golden_frame(int width)
{
	struct agg_snapshot s;
	struct dash_frame *f;
	char name[64];

	fixture(&s);
	dashboard_sort(&s, COL_RPS, false);
	f = render(&s, &state, width, 30);
	snprintf(name, sizeof(name), "dashboard-%d.txt", width);
	check_frame(f, &s, width, 30);
	check_golden(f, name);
	free(f);
}

Test(dashboard, golden_80)
{
	golden_frame(80);
}
Test(dashboard, golden_120)
{
	golden_frame(120);
}
Test(dashboard, golden_200)
{
	golden_frame(200);
}

Test(dashboard, frame_parts_at_200)
{
	struct agg_snapshot s;
	struct dash_frame *f;

	fixture(&s);
	dashboard_sort(&s, COL_RPS, false);
	f = render(&s, &state, 200, 30);
	cr_assert_str_eq(f->text[0], "profilis-bpf  pid 4242 (gunicorn)  gunicorn  CPython 3.11.2  "
				     "up 01:02:05  1234 ev/s  lost 0");
	cr_assert_not_null(strstr(f->text[1], "in-flight 3  "));
	/* The whole 60-second sparkline fits at 200 and ends with the newest second. */
	cr_assert_str_eq(strstr(f->text[1], "in-flight 3  ") + 13,
			 " ▆▂▇▄▁▆▃█▄▁▆▃█▅▂▇▃█▅▂▇▄ ▆▂▇▄▁▆▃█▄▁▆▃█▅▂▇   ▂▇▄ ▆▂▇▄▁▆▃█▄▁▆▃█");
	cr_assert_str_eq(
		f->text[29],
		"q quit  s/</> sort  r reverse  p pause  w window (15m)  j/k Enter hot  ? help");
	free(f);
}

Test(dashboard, paused_title_and_now_window)
{
	struct agg_snapshot s;
	struct dash_state st = state;
	struct dash_frame *f;

	fixture(&s);
	st.paused = true;
	st.window = AGG_WINDOW_NOW;
	f = render(&s, &st, 200, 30);
	cr_assert_eq(strncmp(f->text[0], "profilis-bpf [PAUSED]  pid 4242 (gunicorn)", 42), 0, "%s",
		     f->text[0]);
	cr_assert_eq(strncmp(f->text[1], "10s 179.7 req/s  err 4.7% (5xx 1.0%, 4xx 3.7%)", 46), 0,
		     "%s", f->text[1]);
	cr_assert_str_eq(
		f->text[29],
		"q quit  s/</> sort  r reverse  p pause  w window (10s)  j/k Enter hot  ? help");
	free(f);
	st.paused = false;
	f = render(&s, &st, 200, 30);
	cr_assert_eq(strncmp(f->text[0], "profilis-bpf  pid 4242", 22), 0, "%s", f->text[0]);
	free(f);
}

Test(dashboard, help_screen)
{
	static const char *const keys[] = {
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
	struct agg_snapshot s;
	struct dash_state st = state;
	struct dash_frame *f;

	fixture(&s);
	st.help = true;
	f = render(&s, &st, 120, 30);
	cr_assert_eq(f->nlines, 30);
	cr_assert_eq(f->style[0], DS_TITLE);
	cr_assert_str_eq(f->text[2], "");
	for (int i = 0; i < 10; i++) {
		cr_assert_str_eq(f->text[3 + i], keys[i]);
		cr_assert_eq(f->style[3 + i], i ? DS_PLAIN : DS_HEADING);
	}
	for (int i = 13; i < 29; i++)
		cr_assert_str_eq(f->text[i], "", "line %d of the help should be blank", i);
	cr_assert_eq(f->style[29], DS_FOOTER);
	free(f);
	/* Narrow: the help lines are cut, not wrapped. */
	f = render(&s, &st, 40, 12);
	cr_assert_eq(f->nlines, 12);
	cr_assert_str_eq(f->text[8], "  p        pause / resume the display (…");
	for (int i = 0; i < f->nlines; i++)
		cr_assert_leq(dashboard_columns(f->text[i]), 40);
	free(f);
}

/* Every size: exactly `height` lines, none wider than the width, footer last. */
Test(dashboard, any_size_fits)
{
	struct agg_snapshot s;
	struct dash_frame *f = frame();

	fixture(&s);
	utc();
	for (int w = 10; w <= 260; w += 7) {
		for (int h = 6; h <= 64; h += 3) {
			dashboard_render(&header, &s, &state, w, h, f);
			cr_assert_eq(f->nlines, h, "%dx%d: %d lines", w, h, f->nlines);
			for (int i = 0; i < h; i++)
				cr_assert_leq(dashboard_columns(f->text[i]), w, "%dx%d line %d: %s",
					      w, h, i, f->text[i]);
			cr_assert_eq(f->style[h - 1], DS_FOOTER, "%dx%d: no footer", w, h);
		}
	}
	dashboard_render(&header, &s, &state, 120, 1000, f);
	cr_assert_eq(f->nlines, DASH_LINES_MAX);
	free(f);
}

/* More rows than fit: the table is cut, the errors keep their lines. */
Test(dashboard, long_table_keeps_every_error)
{
	struct agg_snapshot s;
	struct agg_row many[40];
	struct dash_frame *f;
	int eh;

	fixture(&s);
	for (int i = 0; i < 40; i++)
		many[i] = mkrow("GET", "", 100 - i, 0, 0, MS, 2 * MS, 3 * MS, 4 * MS);
	for (int i = 0; i < 40; i++)
		snprintf(many[i].route, sizeof(many[i].route), "/r/%02d", i);
	s.rows = many;
	s.nrows = 40;
	f = render(&s, &state, 120, 30);
	cr_assert_eq(f->nlines, 30);
	eh = find_line(f, "RECENT ERRORS");
	cr_assert_geq(eh, 0);
	/* Budget: nerrors + 1 lines for the errors, a blank above, the footer below. */
	cr_assert_eq(eh, 30 - 1 - 3 - 1, "errors heading on line %d", eh);
	cr_assert_str_eq(f->text[eh - 1], "");
	cr_assert_eq(strncmp(f->text[eh - 2], "GET     /r/19 ", 14), 0, "last row: %s",
		     f->text[eh - 2]);
	for (int k = 1; k <= 3; k++)
		cr_assert_eq(f->style[eh + k], DS_ERROR,
			     "error %d of 3 not shown (line %d: \"%s\")", k, eh + k,
			     f->text[eh + k]);
	cr_assert_eq(strncmp(f->text[eh + 3], "23:13:20  GET", 13), 0, "%s", f->text[eh + 3]);
	free(f);
}

Test(dashboard, empty_snapshot)
{
	struct agg_snapshot s = { 0 };
	struct dash_frame *f;

	s.total = mkrow("", "(all)", 0, 0, 0, 0, 0, 0, 0);
	f = render(&s, &state, 100, 12);
	cr_assert_eq(f->nlines, 12);
	cr_assert_eq(strncmp(f->text[1],
			     "all 0.0 req/s  err 0.0% (5xx 0.0%, 4xx 0.0%)  p50 -  "
			     "p95 -  p99 -  in-flight 3  ",
			     73),
		     0, "%s", f->text[1]);
	cr_assert_str_eq(f->text[4], "(no requests in this window yet)");
	cr_assert_str_eq(f->text[6], "RECENT ERRORS (0 in all)");
	free(f);
}

Test(dashboard, fmt_duration)
{
	static const struct {
		uint64_t ns;
		const char *want;
	} cases[] = {
		{ 0, "-" },
		{ 850000, "850us" },
		{ 1234000, "1.23ms" },
		{ 12340000, "12.3ms" },
		{ 123400000, "123.4ms" },
		{ 1200000000, "1.20s" },
		{ 12 * SEC, "12.00s" },
		{ 150 * SEC, "150s" },
		{ 1000, "1us" },
		{ 999000, "999us" },
	};
	char out[32];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		dashboard_fmt_duration(cases[i].ns, out, sizeof(out));
		cr_assert_str_eq(out, cases[i].want, "%llu ns", (unsigned long long)cases[i].ns);
	}
}

/* Rounding must not carry a value past its unit: 999.6 us is not "1000us". */
Test(dashboard, fmt_duration_unit_boundaries)
{
	static const struct {
		uint64_t ns;
		const char *want;
	} cases[] = {
		{ 999600, "1.00ms" },
		{ 9996000, "10.0ms" },
		{ 999960000, "1.00s" },
	};
	char out[32];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		dashboard_fmt_duration(cases[i].ns, out, sizeof(out));
		cr_expect_str_eq(out, cases[i].want, "%llu ns -> \"%s\", want \"%s\"",
				 (unsigned long long)cases[i].ns, out, cases[i].want);
	}
}

/* The header's promise: 7 columns or fewer, for every duration up to 2^43 ns,
 * in particular just below each unit or precision change, where rounding up
 * adds a digit. */
Test(dashboard, fmt_duration_width)
{
	static const uint64_t edges[] = { 1000000, 10000000, 1000000000, 100000000000 };
	char out[32];

	for (uint64_t ns = 1; ns < 1ULL << 43; ns += ns / 997 + 1) {
		dashboard_fmt_duration(ns, out, sizeof(out));
		cr_assert_leq(strlen(out), 7, "%llu ns -> \"%s\"", (unsigned long long)ns, out);
	}
	for (size_t i = 0; i < sizeof(edges) / sizeof(edges[0]); i++) {
		for (uint64_t d = 1; d <= edges[i] / 1000; d += edges[i] / 100000) {
			dashboard_fmt_duration(edges[i] - d, out, sizeof(out));
			cr_expect_leq(strlen(out), 7, "%llu ns -> \"%s\"",
				      (unsigned long long)(edges[i] - d), out);
			if (strlen(out) > 7)
				break; /* one report per edge */
		}
	}
}

Test(dashboard, fit)
{
	static const struct {
		const char *s;
		int cols;
		const char *want;
	} cases[] = {
		{ "hello", 10, "hello" },
		{ "hello", 5, "hello" },
		{ "hello!", 5, "hell…" },
		{ "hello", 1, "…" },
		{ "hello", 0, "" },
		{ "", 3, "" },
		{ "/café/<name>", 12, "/café/<name>" },
		{ "/café/<name>", 11, "/café/<nam…" },
		{ "/café/<name>", 5, "/caf…" },
		{ "/café/<name>", 6, "/café…" },
		{ "ééé", 2, "é…" },
		{ "日本語のルート", 4, "日本語…" },
	};
	char out[256];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		dashboard_fit(cases[i].s, cases[i].cols, out, sizeof(out));
		cr_assert_str_eq(out, cases[i].want, "fit(\"%s\", %d)", cases[i].s, cases[i].cols);
	}
}

static bool valid_utf8(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		int n = *p < 0x80	      ? 0
			: (*p & 0xe0) == 0xc0 ? 1
			: (*p & 0xf0) == 0xe0 ? 2
			: (*p & 0xf8) == 0xf0 ? 3
					      : -1;

		if (n < 0)
			return false;
		for (p++; n > 0; n--, p++)
			if ((*p & 0xc0) != 0x80)
				return false;
	}
	return true;
}

/* A buffer too small for the text: the copy stops between characters. */
Test(dashboard, fit_small_buffer_keeps_whole_characters)
{
	char out[16];

	for (size_t len = 1; len <= sizeof(out); len++) {
		for (int cols = 1; cols <= 12; cols++) {
			memset(out, 'Z', sizeof(out));
			dashboard_fit("€€€€€€€€", cols, out, len);
			cr_assert(memchr(out, 0, len), "len %zu: not terminated", len);
			cr_assert(valid_utf8(out),
				  "fit(\"€…\", %d) into %zu bytes split a character", cols, len);
			cr_assert_leq(dashboard_columns(out), cols);
		}
	}
}

Test(dashboard, columns)
{
	cr_assert_eq(dashboard_columns(""), 0);
	cr_assert_eq(dashboard_columns("abc"), 3);
	cr_assert_eq(dashboard_columns("café"), 4);
	cr_assert_eq(dashboard_columns("…"), 1);
	cr_assert_eq(dashboard_columns("█▇ ▁"), 4);
	cr_assert_eq(dashboard_columns("\xf0\x9f\x98\x80x"), 2, "a 4-byte code point is one");
}

Test(dashboard, sparkline)
{
	double zero[AGG_SPARK] = { 0 }, ramp[9], v[AGG_SPARK];
	char out[AGG_SPARK * 3 + 1];

	dashboard_sparkline(zero, AGG_SPARK, AGG_SPARK, out, sizeof(out));
	cr_assert_eq(strlen(out), AGG_SPARK);
	cr_assert_eq(strspn(out, " "), AGG_SPARK, "all zero must be spaces: [%s]", out);
	for (int i = 0; i < 9; i++)
		ramp[i] = i;
	dashboard_sparkline(ramp, 9, 9, out, sizeof(out));
	cr_assert_str_eq(out, " ▁▂▃▄▅▆▇█");
	/* The maximum is a full block; any non-zero value shows. */
	double one[3] = { 0, 0.001, 1000 };

	dashboard_sparkline(one, 3, 3, out, sizeof(out));
	cr_assert_str_eq(out, " ▁█");
	/* Fewer columns: the newest values, scaled to their own max. */
	for (int i = 0; i < AGG_SPARK; i++)
		v[i] = i < 50 ? 1000 : i - 50;
	dashboard_sparkline(v, AGG_SPARK, 10, out, sizeof(out));
	cr_assert_eq(dashboard_columns(out), 10);
	cr_assert_eq(strncmp(out + strlen(out) - 3, "█", 3), 0, "newest last: [%s]", out);
	cr_assert_eq(out[0], ' ');
	dashboard_sparkline(ramp, 9, 100, out, sizeof(out));
	cr_assert_eq(dashboard_columns(out), 9, "never more columns than values");
	dashboard_sparkline(ramp, 9, 0, out, sizeof(out));
	cr_assert_str_eq(out, "");
	dashboard_sparkline(ramp, 9, -5, out, sizeof(out));
	cr_assert_str_eq(out, "");
	/* A short buffer holds whole blocks only. */
	dashboard_sparkline(ramp, 9, 9, out, 8);
	cr_assert(valid_utf8(out));
	cr_assert_lt(strlen(out), 8);
}

static double key(const struct agg_row *r, enum dash_col c)
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

/* a must come before b when sorting by c (descending numbers, ascending names). */
static int order(const struct agg_row *a, const struct agg_row *b, enum dash_col c)
{
	int k;

	if (c == COL_METHOD && (k = strcmp(a->method, b->method)))
		return k;
	if (c != COL_METHOD && c != COL_ROUTE && key(a, c) != key(b, c))
		return key(a, c) > key(b, c) ? -1 : 1;
	return strcmp(a->route, b->route) ?: strcmp(a->method, b->method);
}

static uint64_t rng_next(uint64_t *s) /* splitmix64 */
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

Test(dashboard, sort_by_every_column)
{
	static const char *const methods[] = { "GET", "POST", "PUT", "DELETE" };
	struct agg_row rows[64];
	struct agg_snapshot s = { .rows = rows, .nrows = 64 };
	uint64_t seed = 0x5eed50;

	for (int i = 0; i < 64; i++) {
		char route[16];

		/* Few distinct values, so ties (broken by route, then method) occur. */
		snprintf(route, sizeof(route), "/r%llu",
			 (unsigned long long)(rng_next(&seed) % 20));
		rows[i] = mkrow(methods[rng_next(&seed) % 4], route, (double)(rng_next(&seed) % 5),
				(double)(rng_next(&seed) % 3), (double)(rng_next(&seed) % 3),
				rng_next(&seed) % 4 * MS, rng_next(&seed) % 4 * MS,
				rng_next(&seed) % 4 * MS, rng_next(&seed) % 4 * MS);
	}
	for (int c = 0; c < COL__COUNT; c++) {
		for (int rev = 0; rev <= 1; rev++) {
			dashboard_sort(&s, c, rev);
			for (int i = 1; i < 64; i++) {
				int k = order(&rows[i - 1], &rows[i], c);

				cr_assert(rev ? k >= 0 : k <= 0,
					  "column %d%s: row %d (%s %s) before (%s %s)", c,
					  rev ? " reversed" : "", i - 1, rows[i - 1].method,
					  rows[i - 1].route, rows[i].method, rows[i].route);
			}
		}
	}
}

Test(dashboard, sort_heading_marker)
{
	struct agg_snapshot s;
	struct dash_state st = state;
	struct dash_frame *f;

	fixture(&s);
	st.sort = COL_P99;
	st.reverse = true;
	f = render(&s, &st, 120, 30);
	cr_assert_not_null(strstr(f->text[3], " P99^ "), "%s", f->text[3]);
	cr_assert_null(strstr(f->text[3], "REQ/Sv"));
	free(f);
}

static const struct dash_hot hot_fns[] = {
	{ "app.py:list_users", 42.5, 80.0, 12.5 },
	{ "sqlalchemy/engine/base.py:Connection._execute_context/with/a/very/long/qualified/"
	  "name/that/cannot/fit/in/any/reasonable/terminal/width/at/all/really/none",
	  10, 20, 1500 },
	{ "json/encoder.py:iterencode", 3.25, 3.5, 0 },
};

/* The hot-functions pane under the table: the selected row marked, the pane
 * between the table and the errors, each number under its heading. */
Test(dashboard, hot_pane)
{
	struct agg_snapshot s;
	struct dash_state st = state;
	struct dash_frame *f;
	int hh, hend[16], ends[16], nh, n, eh;

	fixture(&s);
	dashboard_sort(&s, COL_RPS, false);
	st.hot = hot_fns;
	st.nhot = 3;
	st.selected = 2;
	f = render(&s, &st, 120, 30);
	cr_assert_eq(f->nlines, 30);
	for (int i = 0; i < f->nlines; i++)
		cr_assert_leq(dashboard_columns(f->text[i]), 120, "line %d: %s", i, f->text[i]);
	for (size_t r = 0; r < s.nrows; r++) {
		const char *line = f->text[4 + r];

		cr_assert_eq(line[6] == '>', r == 2, "selection marker on row %zu: %s", r, line);
		if (r == 2)
			cr_assert_eq(f->style[4 + r], DS_HEADING);
	}
	cr_assert_eq(strncmp(f->text[6], "GET   > /café/<name> ", 22), 0, "%s", f->text[6]);
	hh = find_line(f, "HOT FUNCTIONS (all routes)");
	cr_assert_eq(hh, 4 + (int)s.nrows + 1, "the pane follows the table and a blank line");
	cr_assert_eq(f->style[hh], DS_HEADING);
	cr_assert_eq(strncmp(f->text[hh + 1], "app.py:list_users ", 18), 0);
	cr_assert_eq(strncmp(f->text[hh + 2], "sqlalchemy/engine/base.py:", 26), 0);
	cr_assert_not_null(strstr(f->text[hh + 2], "…"), "long function not cut: %s",
			   f->text[hh + 2]);
	cr_assert_eq(strncmp(f->text[hh + 3], "json/encoder.py:iterencode ", 27), 0);
	cr_assert_str_eq(f->text[hh + 4], "");
	eh = find_line(f, "RECENT ERRORS (42 in all)");
	cr_assert_eq(eh, hh + 5);
	cr_assert_eq(f->style[eh + 3], DS_ERROR, "the pane must not push out the errors");
	/* OWN%, TOTAL% and WAIT: the numbers end where their headings end. */
	nh = token_ends(f->text[hh], hend, 16);
	for (int k = 1; k <= 3; k++) {
		n = token_ends(f->text[hh + k], ends, 16);
		cr_assert_geq(n, 4);
		for (int c = 1; c <= 3; c++)
			cr_expect_eq(ends[n - c], hend[nh - c],
				     "hot line %d: field %d from the right ends at column %d, "
				     "its heading at %d\n  %s\n  %s",
				     k, c, ends[n - c], hend[nh - c], f->text[hh], f->text[hh + k]);
	}
	free(f);
}

/* A drilled-into route with a long name: the title is cut, the column
 * headings stay. */
Test(dashboard, hot_pane_long_title_keeps_its_headings)
{
	struct agg_snapshot s;
	struct dash_state st = state;
	struct dash_frame *f;
	char title[300];
	int hh;

	fixture(&s);
	snprintf(title, sizeof(title), "GET %s", long_route);
	st.hot = hot_fns;
	st.nhot = 3;
	st.hot_title = title;
	f = render(&s, &st, 120, 30);
	hh = find_line(f, "HOT FUNCTIONS (GET /api/v2/");
	cr_assert_geq(hh, 0);
	cr_assert_leq(dashboard_columns(f->text[hh]), 120);
	cr_assert_not_null(strstr(f->text[hh], " OWN% TOTAL%     WAIT"),
			   "the column headings were pushed off: %s", f->text[hh]);
	free(f);
}

Test(dashboard, hot_pane_empty_and_full)
{
	struct agg_snapshot s;
	struct dash_state st = state;
	struct dash_hot many[12];
	struct dash_frame *f;
	int hh, eh;

	fixture(&s);
	st.hot = hot_fns;
	st.nhot = 0;
	f = render(&s, &st, 120, 30);
	hh = find_line(f, "HOT FUNCTIONS");
	cr_assert_geq(hh, 0);
	cr_assert_str_eq(f->text[hh + 1], "(no stack samples yet)");
	free(f);

	/* Twelve functions at height 30: the pane gets a third of the screen. */
	for (int i = 0; i < 12; i++) {
		memset(&many[i], 0, sizeof(many[i]));
		snprintf(many[i].function, sizeof(many[i].function), "mod.py:f%02d", i);
		many[i].own_pct = 12 - i;
	}
	st.hot = many;
	st.nhot = 12;
	f = render(&s, &st, 120, 30);
	cr_assert_eq(f->nlines, 30);
	hh = find_line(f, "HOT FUNCTIONS");
	eh = find_line(f, "RECENT ERRORS");
	cr_assert_eq(eh - hh, 30 / 3, "pane of %d lines", eh - hh);
	cr_assert_eq(strncmp(f->text[hh + 1], "mod.py:f00 ", 11), 0);
	cr_assert_str_eq(f->text[eh - 1], "");
	for (int k = 1; k <= 3; k++)
		cr_assert_eq(f->style[eh + k], DS_ERROR);
	free(f);
}

/* The plain table: the heading and one line per row, nothing else. */
Test(live_table, heading_and_rows_only)
{
	struct agg_snapshot s;
	struct dash_frame *t = frame(), *d;

	fixture(&s);
	dashboard_sort(&s, COL_RPS, false);
	live_table(&s, 120, t);
	cr_assert_eq(t->nlines, 1 + (int)s.nrows);
	cr_assert_eq(t->style[0], DS_HEADING);
	cr_assert_eq(strncmp(t->text[0], "METHOD  ROUTE", 13), 0, "%s", t->text[0]);
	cr_assert_null(strchr(t->text[0], '^'));
	/* The rows are the dashboard's rows, in the snapshot's order. */
	d = render(&s, &state, 120, 30);
	for (size_t i = 0; i < s.nrows; i++) {
		cr_assert_str_eq(t->text[1 + i], d->text[4 + i]);
		cr_assert_leq(dashboard_columns(t->text[1 + i]), 120);
	}
	free(d);
	/* More rows than a screen, still one line each. */
	struct agg_row many[150];

	for (int i = 0; i < 150; i++) {
		many[i] = mkrow("GET", "", 150 - i, 0, 0, MS, MS, MS, MS);
		snprintf(many[i].route, sizeof(many[i].route), "/r/%03d", i);
	}
	s.rows = many;
	s.nrows = 150;
	live_table(&s, 80, t);
	cr_assert_eq(t->nlines, 151);
	cr_assert_eq(strncmp(t->text[150], "GET     /r/149 ", 15), 0, "%s", t->text[150]);
	free(t);
}

/* --- Several services (a node agent) --- */

static const char long_service[] = "a-very-long-service-name-for-cutting-it"; /* 39 columns */

/* The fixed snapshot with every row, error and service row of `svc`. */
static void fixture_one_service(struct agg_snapshot *s, const char *svc)
{
	static struct agg_row one;

	fixture(s);
	for (size_t i = 0; i < s->nrows; i++)
		snprintf(s->rows[i].service, sizeof(s->rows[i].service), "%s", svc);
	for (size_t i = 0; i < s->nerrors; i++)
		snprintf(s->errors[i].service, sizeof(s->errors[i].service), "%s", svc);
	one = s->total;
	snprintf(one.service, sizeof(one.service), "%s", svc);
	s->services = &one;
	s->nservices = 1;
}

/* The fixed snapshot spread over four services, one of them unknown ("")
 * and one longer than the SERVICE column. */
static void fixture_services(struct agg_snapshot *s)
{
	static const char *const svc[7] = { "shop", "checkout",	  "shop",    "shop",
					    "",	    long_service, "checkout" };
	static const char *const esvc[3] = { "", "checkout", "shop" };

	fixture(s);
	for (size_t i = 0; i < s->nrows; i++)
		snprintf(s->rows[i].service, sizeof(s->rows[i].service), "%s", svc[i]);
	for (size_t i = 0; i < s->nerrors; i++)
		snprintf(s->errors[i].service, sizeof(s->errors[i].service), "%s", esvc[i]);
}

/* One service, named or not: today's frames, line for line (the goldens of
 * the single-service layout), at every golden width. */
Test(dashboard, one_service_keeps_the_layout)
{
	static const char *const names[] = { "shop", "" };
	struct agg_snapshot s;
	struct dash_frame *f;
	char golden[64];

	for (int n = 0; n < 2; n++)
		for (int w = 80; w <= 200; w += w == 80 ? 40 : 80) {
			fixture_one_service(&s, names[n]);
			cr_assert(!dashboard_many_services(&s));
			dashboard_sort(&s, COL_RPS, false);
			f = render(&s, &state, w, 30);
			snprintf(golden, sizeof(golden), "dashboard-%d.txt", w);
			check_golden(f, golden);
			free(f);
		}
}

Test(dashboard, many_services)
{
	struct agg_snapshot s;

	fixture(&s);
	cr_assert(!dashboard_many_services(&s), "no service anywhere is one (unknown) service");
	fixture_one_service(&s, "shop");
	snprintf(s.rows[3].service, sizeof(s.rows[3].service), "%s", "");
	cr_assert(dashboard_many_services(&s), "\"shop\" and unknown are two");
	fixture_one_service(&s, "shop");
	snprintf(s.errors[2].service, sizeof(s.errors[2].service), "%s", "cart");
	cr_assert(dashboard_many_services(&s), "an error of another service");
	fixture_one_service(&s, "shop");
	s.nservices = 2; /* a service row of no shown row */
	cr_assert(dashboard_many_services(&s));
}

/* Column starts (display columns) of the heading's words. */
static int word_starts(const char *s, int *starts, int max)
{
	int col = 0, n = 0;
	bool in = false;

	for (; *s; s++) {
		if (((unsigned char)*s & 0xc0) == 0x80)
			continue;
		if (*s != ' ' && !in && n < max)
			starts[n++] = col;
		in = *s != ' ';
		col++;
	}
	return n;
}

Test(dashboard, service_column_with_several_services)
{
	struct agg_snapshot s;
	struct dash_frame *f, *one;
	int heading, ends[16], hend[16], oend[16], starts[16];

	fixture_services(&s);
	dashboard_sort(&s, COL_RPS, false);
	f = render(&s, &state, 120, 30);
	check_golden(f, "dashboard-services-120.txt");
	/* Independently of the golden: */
	heading = find_line(f, "METHOD ");
	cr_assert_eq(heading, 3);
	cr_assert_str_eq(f->text[heading],
			 "METHOD  SERVICE                  ROUTE                     "
			 "   REQ/Sv      P50      P95      P99      MAX   5XX%   4XX%");
	cr_assert_eq(word_starts(f->text[heading], starts, 16), COL__COUNT + 1);
	cr_assert_eq(starts[1], 8, "SERVICE after METHOD's 7 columns and a blank");
	cr_assert_eq(starts[2], 8 + 24 + 1, "SERVICE is 24 columns: its widest name, cut");
	/* The numbers stay where the single-service layout has them: the
	 * SERVICE column is taken from ROUTE's width. */
	one = render(&(struct agg_snapshot){ .total = s.total, .rows = s.rows, .nrows = 0 }, &state,
		     120, 30);
	cr_assert_eq(token_ends(f->text[heading], hend, 16), COL__COUNT + 1);
	cr_assert_eq(token_ends(one->text[heading], oend, 16), COL__COUNT);
	for (int c = COL_RPS; c < COL__COUNT; c++)
		cr_assert_eq(hend[c + 1], oend[c], "heading %d ends at %d, single-service %d", c,
			     hend[c + 1], oend[c]);
	free(one);
	for (size_t r = 0; r < s.nrows; r++) {
		const char *line = f->text[heading + 1 + r];
		int n = token_ends(line, ends, 16);

		cr_assert_geq(n, COL__COUNT + 1, "row %zu: %s", r, line);
		for (int c = 0; c < 7; c++) /* the last 7 tokens: the numbers */
			cr_assert_eq(ends[n - 7 + c], hend[COL_RPS + 1 + c], "row %zu: %s", r,
				     line);
		word_starts(line, starts, 16);
		cr_assert_eq(starts[1], 8, "row %zu service misplaced: %s", r, line);
		cr_assert_eq(starts[2], 33, "row %zu route misplaced: %s", r, line);
	}
	cr_assert_str_eq(f->text[heading + 1],
			 "GET     shop                     /api/users/<int:id>       "
			 "    123.4    850us   1.23ms   12.3ms    1.20s    0.0    2.5");
	cr_assert_str_eq(f->text[heading + 3],
			 "GET     a-very-long-service-nam… /café/<name>              "
			 "      7.3    420us    900us   1.50ms   3.20ms    0.0    0.0");
	cr_assert_str_eq(f->text[heading + 4],
			 "GET     shop                     /api/v2/organizations/<i… "
			 "      2.0   35.0ms  120.0ms  480.0ms    1.75s    0.0   50.0");
	cr_assert_str_eq(f->text[heading + 5],
			 "DELETE  -                        /api/sessions/<token>     "
			 "      0.8   5.00ms   9.90ms   10.0ms   10.0ms   50.0    0.0");
	/* The recent errors name their service, in the table's column width. */
	int eh = find_line(f, "RECENT ERRORS (42 in all)");

	cr_assert_geq(eh, 0);
	cr_assert_str_eq(
		f->text[eh + 1],
		"23:15:25  DELETE  -                        /api/sessions/<token>  503  -");
	cr_assert_str_eq(f->text[eh + 2],
			 "23:15:20  POST    checkout                 /api/orders  500  ValueError");
	free(f);
}

/* The SERVICE column is as wide as its longest name, never narrower than
 * its heading; ROUTE gives up exactly that width and a blank. */
Test(dashboard, service_column_width_fits_the_names)
{
	static const struct {
		const char *a, *b;
		int w;
	} cases[] = { { "alpha", "beta", 7 },
		      { "alpha", "checkout-service", 16 },
		      { "x", long_service, DASH_SERVICE_MAX } };
	struct agg_snapshot s;
	struct dash_frame *f;
	char want[64];
	int starts[16];

	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		fixture(&s);
		s.nerrors = 0;
		for (size_t i = 0; i < s.nrows; i++)
			snprintf(s.rows[i].service, sizeof(s.rows[i].service), "%s",
				 i % 2 ? cases[k].a : cases[k].b);
		f = render(&s, &state, 120, 30);
		word_starts(f->text[3], starts, 16);
		cr_assert_eq(starts[2] - starts[1], cases[k].w + 1, "%s/%s: %s", cases[k].a,
			     cases[k].b, f->text[3]);
		snprintf(want, sizeof(want), "METHOD  SERVICE%*s ROUTE", cases[k].w - 7, "");
		cr_assert_eq(strncmp(f->text[3], want, strlen(want)), 0, "%s", f->text[3]);
		for (int i = 0; i < f->nlines; i++)
			cr_assert_leq(dashboard_columns(f->text[i]), 120);
		free(f);
	}
	/* Narrower: SERVICE gives way so that ROUTE keeps 16 columns (at 100,
	 * the two share 30: 13 + a blank + 16), down to its heading's 7. */
	f = render(&s, &state, 100, 30);
	word_starts(f->text[3], starts, 16);
	cr_assert_eq(starts[2] - starts[1], 13 + 1, "%s", f->text[3]);
	cr_assert_eq(strncmp(f->text[4], "GET     a-very-long-… /healthz ", 33), 0, "%s",
		     f->text[4]);
	for (int i = 0; i < f->nlines; i++)
		cr_assert_leq(dashboard_columns(f->text[i]), 100);
	free(f);
	f = render(&s, &state, 90, 30);
	word_starts(f->text[3], starts, 16);
	cr_assert_eq(starts[2] - starts[1], 7 + 1, "%s", f->text[3]);
	free(f);
}

/* Equal routes of two services: the service breaks the tie, by name and by
 * number, so the order is stable between frames. */
Test(dashboard, sort_ties_broken_by_service)
{
	struct agg_row rows[3] = {
		mkrow("GET", "/a", 5, 0, 0, MS, MS, MS, MS),
		mkrow("GET", "/a", 5, 0, 0, MS, MS, MS, MS),
		mkrow("GET", "/a", 5, 0, 0, MS, MS, MS, MS),
	};
	struct agg_snapshot s = { .rows = rows, .nrows = 3 };

	strcpy(rows[0].service, "zeta");
	strcpy(rows[1].service, "alpha");
	strcpy(rows[2].service, "mid");
	for (enum dash_col c = 0; c < COL__COUNT; c++) {
		dashboard_sort(&s, c, false);
		cr_assert_str_eq(rows[0].service, "alpha", "column %d", c);
		cr_assert_str_eq(rows[1].service, "mid", "column %d", c);
		cr_assert_str_eq(rows[2].service, "zeta", "column %d", c);
	}
}

Test(live_table, service_column_with_several_services)
{
	struct agg_snapshot s;
	struct dash_frame *t = frame();

	fixture(&s);
	for (size_t i = 0; i < s.nrows; i++)
		snprintf(s.rows[i].service, sizeof(s.rows[i].service), "%s",
			 i % 2 ? "alpha" : "beta");
	dashboard_sort(&s, COL_RPS, false);
	live_table(&s, 120, t);
	cr_assert_eq(t->nlines, 1 + (int)s.nrows);
	cr_assert_eq(strncmp(t->text[0], "METHOD  SERVICE ROUTE ", 22), 0, "%s", t->text[0]);
	cr_assert_eq(strncmp(t->text[1], "GET     alpha   /api/users/<int:id> ", 36), 0, "%s",
		     t->text[1]);
	free(t);
}

/* With the SERVICE column too: exactly `height` lines, none wider than the
 * width, whatever the size (ROUTE never goes below 8 columns; what does not
 * fit is cut). */
Test(dashboard, services_any_size_fits)
{
	struct agg_snapshot s;
	struct dash_frame *f = frame();

	fixture_services(&s);
	utc();
	for (int w = 10; w <= 260; w += 7)
		for (int h = 6; h <= 64; h += 3) {
			dashboard_render(&header, &s, &state, w, h, f);
			cr_assert_eq(f->nlines, h, "%dx%d: %d lines", w, h, f->nlines);
			for (int i = 0; i < h; i++)
				cr_assert_leq(dashboard_columns(f->text[i]), w, "%dx%d line %d: %s",
					      w, h, i, f->text[i]);
		}
	free(f);
}
