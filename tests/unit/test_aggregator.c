// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The aggregator, driven by an injected clock (observation starts at 1000 s
 * of CLOCK_MONOTONIC): empty windows and single events (rates over the time
 * really covered, never over a sub-second sliver), roll-over of the long and
 * the 10-second windows, 4xx and 5xx shares, weighting by sample rate, one
 * row per (method, route) including the "(other)" overflow and routes longer
 * than a row can hold, the 60-second sparkline, the recent-errors ring, and
 * per-route percentiles against the exact values of what was fed.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "aggregator.h"

#define MS 1000000ULL
#define SEC 1000000000ULL
#define T0 (1000 * SEC) /* attach time on the injected clock */

static uint64_t rng_next(uint64_t *s) /* splitmix64 */
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static struct aggregator *mk(int window_minutes, int max_errors)
{
	struct agg_opts o = { .window_minutes = window_minutes,
			      .max_errors = max_errors,
			      .start_ns = T0 };
	struct aggregator *a = aggregator__new(&o);

	cr_assert_not_null(a);
	return a;
}

static struct request_record rec(uint64_t ts, const char *method, const char *route, int status,
				 uint64_t dur, double rate)
{
	struct request_record r;

	memset(&r, 0, sizeof(r));
	r.ts_ns = ts;
	r.time_unix_ns = 1700000000 * SEC + (ts - T0);
	r.dur_ns = dur;
	r.status = status;
	r.sample_rate = rate;
	r.error = status >= 500;
	r.has_method = method != NULL;
	snprintf(r.method, sizeof(r.method), "%s", method ? method : "");
	r.has_route = r.route_matched = route != NULL;
	snprintf(r.route, sizeof(r.route), "%s", route ? route : "");
	return r;
}

static void push(struct aggregator *a, uint64_t ts, const char *method, const char *route,
		 int status, uint64_t dur, double rate)
{
	struct request_record r = rec(ts, method, route, status, dur, rate);

	aggregator__push(a, &r);
}

static void snap(struct aggregator *a, enum agg_window w, uint64_t now, struct agg_snapshot *s)
{
	cr_assert_eq(aggregator__snapshot(a, w, now, s), 0);
}

static const struct agg_row *find_row(const struct agg_snapshot *s, const char *method,
				      const char *route)
{
	for (size_t i = 0; i < s->nrows; i++)
		if (!strcmp(s->rows[i].method, method) && !strcmp(s->rows[i].route, route))
			return &s->rows[i];
	return NULL;
}

static const struct agg_row *must_row(const struct agg_snapshot *s, const char *method,
				      const char *route)
{
	const struct agg_row *r = find_row(s, method, route);

	cr_assert_not_null(r, "no row for %s %s", method, route);
	return r;
}

static void assert_near(double got, double want, const char *what)
{
	cr_assert_leq(fabs(got - want), 1e-9 * fmax(1, fabs(want)), "%s = %.12g, want %.12g", what,
		      got, want);
}

static void assert_empty_row(const struct agg_row *r)
{
	cr_assert_eq(r->count, 0);
	cr_assert_eq(r->rps, 0);
	cr_assert_eq(r->pct_4xx, 0);
	cr_assert_eq(r->pct_5xx, 0);
	cr_assert_eq(r->p50_ns, 0);
	cr_assert_eq(r->p95_ns, 0);
	cr_assert_eq(r->p99_ns, 0);
	cr_assert_eq(r->max_ns, 0);
}

/* Empty, and nothing in the last 60 seconds either. */
static void assert_idle_row(const struct agg_row *r)
{
	assert_empty_row(r);
	for (int i = 0; i < AGG_SPARK; i++)
		cr_assert_eq(r->spark[i], 0, "spark[%d] = %g", i, r->spark[i]);
}

Test(aggregator, empty_window)
{
	struct aggregator *a = mk(15, 10);
	struct agg_snapshot s;

	for (int w = AGG_WINDOW_LONG; w <= AGG_WINDOW_NOW; w++) {
		snap(a, w, T0 + 5 * SEC, &s);
		assert_idle_row(&s.total);
		cr_assert_str_eq(s.total.route, "(all)");
		cr_assert_eq(s.nrows, 0);
		cr_assert_eq(s.nerrors, 0);
		cr_assert_eq(s.errors_total, 0);
		assert_near(s.window_secs, 5, "window_secs 5 s after attach");
		aggregator__snapshot_free(&s);
	}
	/* A snapshot at the very instant of attach divides by one second, not zero. */
	snap(a, AGG_WINDOW_LONG, T0, &s);
	cr_assert_eq(s.window_secs, 1.0);
	cr_assert_eq(s.total.rps, 0);
	aggregator__snapshot_free(&s);
	aggregator__free(a);
}

Test(aggregator, single_event_rate_over_at_least_one_second)
{
	struct aggregator *a = mk(15, 10);
	struct agg_snapshot s;

	push(a, T0 + 200 * MS, "GET", "/a", 200, 3 * MS, 1.0);
	/* 0.5 s after attach: the covered time is clamped up to 1 s, so 1 req/s. */
	for (int w = AGG_WINDOW_LONG; w <= AGG_WINDOW_NOW; w++) {
		snap(a, w, T0 + 500 * MS, &s);
		cr_assert_eq(s.total.count, 1);
		cr_assert_eq(s.window_secs, 1.0);
		cr_assert_eq(s.total.rps, 1.0, "rps %g, want 1 (never 1/0.5 s or 1e6)",
			     s.total.rps);
		cr_assert_eq(s.nrows, 1);
		cr_assert_eq(s.rows[0].rps, 1.0);
		cr_assert_eq(s.total.max_ns, 3 * MS);
		cr_assert_eq(s.total.p50_ns, 3 * MS, "one value: every percentile is it");
		cr_assert_eq(s.total.p99_ns, 3 * MS);
		aggregator__snapshot_free(&s);
	}
	/* 4 s after attach: 1 request over 4 s. */
	snap(a, AGG_WINDOW_LONG, T0 + 4 * SEC, &s);
	cr_assert_eq(s.window_secs, 4.0);
	cr_assert_eq(s.total.rps, 0.25);
	aggregator__snapshot_free(&s);
	aggregator__free(a);
}

/* Long after attach the rate divides by the window: the full slots before the
 * current one plus the elapsed part of the current one. */
Test(aggregator, rate_divides_by_the_covered_window)
{
	struct aggregator *a = mk(15, 10);
	uint64_t now = 3600 * SEC + 30 * SEC; /* minute 60, 30 s into it */
	struct agg_snapshot s;

	for (int i = 0; i < 15; i++) /* 4 requests in each of minutes 46..60 */
		for (int k = 0; k < 4; k++)
			push(a, (46 + i) * 60 * SEC + k * SEC, "GET", "/a", 200, MS, 1);
	push(a, 45 * 60 * SEC + 59 * SEC, "GET", "/a", 200, MS, 1); /* just outside */
	snap(a, AGG_WINDOW_LONG, now, &s);
	assert_near(s.window_secs, 14 * 60 + 30, "window_secs");
	cr_assert_eq(s.total.count, 60);
	assert_near(s.total.rps, 60.0 / (14 * 60 + 30), "rps");
	aggregator__snapshot_free(&s);

	/* The 10 s window: 9 full seconds and the elapsed 0.25 s of the current one. */
	push(a, now + 100 * MS, "GET", "/a", 200, MS, 1);
	push(a, now - 9 * SEC, "GET", "/a", 200, MS, 1);
	push(a, now - 10 * SEC, "GET", "/a", 200, MS, 1); /* outside the 10 s */
	snap(a, AGG_WINDOW_NOW, now + 250 * MS, &s);
	assert_near(s.window_secs, 9.25, "now window_secs");
	cr_assert_eq(s.total.count, 2);
	assert_near(s.total.rps, 2 / 9.25, "now rps");
	aggregator__snapshot_free(&s);
	aggregator__free(a);
}

Test(aggregator, long_window_rolls_over)
{
	struct aggregator *a = mk(2, 10);
	uint64_t t = T0 + 1 * SEC; /* second 1001, minute 16 */
	struct agg_snapshot s;

	for (int i = 0; i < 5; i++)
		push(a, t, "GET", "/old", 200, 2 * MS, 1);
	snap(a, AGG_WINDOW_LONG, t + 60 * SEC, &s); /* minute 17: minutes 16-17 kept */
	cr_assert_eq(s.total.count, 5);
	aggregator__snapshot_free(&s);
	snap(a, AGG_WINDOW_LONG, t + 3 * 60 * SEC, &s);
	assert_idle_row(&s.total);
	cr_assert_eq(s.nrows, 0, "a route with nothing in the window has no row");
	aggregator__snapshot_free(&s);

	/* A newer minute reusing the old minute's slot starts from zero. */
	push(a, t + 2 * 60 * SEC, "GET", "/new", 200, 7 * MS, 1); /* minute 18: same slot */
	snap(a, AGG_WINDOW_LONG, t + 2 * 60 * SEC + SEC, &s);
	cr_assert_eq(s.total.count, 1, "old minute leaked into the reused slot: %g", s.total.count);
	cr_assert_eq(s.total.max_ns, 7 * MS);
	cr_assert_eq(s.nrows, 1);
	cr_assert_str_eq(s.rows[0].route, "/new");
	aggregator__snapshot_free(&s);
	aggregator__free(a);
}

/* A day's window in 60 slots of 24 minutes: what is 23 hours old counts,
 * what is a day and a slot old does not, and the rate divides by the time
 * really covered. */
Test(aggregator, day_window_in_sixty_slots)
{
	struct aggregator *a = mk(1440, 10);
	uint64_t t = T0 + 1 * SEC, day = 1440 * 60 * SEC;
	struct agg_snapshot s;

	push(a, t, "GET", "/a", 200, 2 * MS, 1);
	snap(a, AGG_WINDOW_LONG, t + 23 * 3600 * SEC, &s);
	cr_assert_eq(s.total.count, 1, "23 hours ago is in a day's window");
	assert_near(s.window_secs, 23 * 3600 + 1, "covered since attach (T0)");
	aggregator__snapshot_free(&s);
	snap(a, AGG_WINDOW_LONG, t + day + 24 * 60 * SEC, &s);
	cr_assert_eq(s.total.count, 0, "a day and a slot ago is out");
	aggregator__snapshot_free(&s);
	/* 61 slots of traffic: the ring holds 60, the oldest is reused. */
	for (int i = 0; i <= 60; i++)
		push(a, t + day + i * 24 * 60 * SEC, "GET", "/a", 200, 2 * MS, 1);
	snap(a, AGG_WINDOW_LONG, t + day + 60 * 24 * 60 * SEC, &s);
	cr_assert_eq(s.total.count, 60);
	aggregator__snapshot_free(&s);
	aggregator__free(a);
}

/* A request every minute of a day's window: 60 histograms per row, not
 * 1,440 (each ~10 KiB before histograms grew by chunks). */
Test(aggregator, day_window_memory_is_bounded)
{
	struct aggregator *a = mk(1440, 10);
	size_t bytes;

	for (int m = 0; m < 1440; m++)
		push(a, T0 + m * 60 * SEC, "GET", "/a", 200, (1 + m % 50) * MS, 1);
	bytes = aggregator__bytes(a);
	/* Two rows ((all) and /a), 60 + 10 slots each, a histogram of 1-50 ms
	 * (6 chunks) in each of the 60: well under 256 KiB. */
	cr_assert_lt(bytes, 256 * 1024, "%zu bytes", bytes);
	aggregator__free(a);
}

Test(aggregator, now_window_forgets_after_ten_seconds)
{
	struct aggregator *a = mk(15, 10);
	uint64_t t = T0 + 1 * SEC + 300 * MS;
	struct agg_snapshot s;

	for (int i = 0; i < 3; i++)
		push(a, t, "GET", "/a", 200, MS, 1);
	snap(a, AGG_WINDOW_NOW, t + 5 * SEC, &s);
	cr_assert_eq(s.total.count, 3);
	aggregator__snapshot_free(&s);
	snap(a, AGG_WINDOW_NOW, T0 + 10 * SEC + 900 * MS, &s); /* seconds 1001..1010 */
	cr_assert_eq(s.total.count, 3);
	aggregator__snapshot_free(&s);
	snap(a, AGG_WINDOW_NOW, T0 + 11 * SEC, &s); /* seconds 1002..1011 */
	assert_empty_row(&s.total);
	/* The sparkline always covers the last 60 s, whatever the window. */
	cr_assert_eq(s.total.spark[AGG_SPARK - 11], 3);
	cr_assert_eq(s.nrows, 0);
	aggregator__snapshot_free(&s);
	snap(a, AGG_WINDOW_LONG, T0 + 11 * SEC, &s);
	cr_assert_eq(s.total.count, 3, "the long window keeps what the 10 s one forgot");
	cr_assert_eq(s.nrows, 1);
	aggregator__snapshot_free(&s);
	aggregator__free(a);
}

Test(aggregator, status_shares)
{
	static const int statuses[] = { 200, 200, 404, 200, 500, 201, 404, 302, 200, 200 };
	struct aggregator *a = mk(15, 10);
	struct agg_snapshot s;

	for (int i = 0; i < 10; i++)
		push(a, T0 + SEC + i * MS, "GET", i % 2 ? "/x" : "/y", statuses[i], MS, 1);
	snap(a, AGG_WINDOW_LONG, T0 + 2 * SEC, &s);
	cr_assert_eq(s.total.count, 10);
	assert_near(s.total.pct_4xx, 20, "pct_4xx");
	assert_near(s.total.pct_5xx, 10, "pct_5xx");
	/* /y got 200, 404, 500, 404, 200; /x got 200, 200, 201, 302, 200. */
	const struct agg_row *x = must_row(&s, "GET", "/x"), *y = must_row(&s, "GET", "/y");

	assert_near(y->pct_4xx, 40, "/y pct_4xx");
	assert_near(y->pct_5xx, 20, "/y pct_5xx");
	assert_near(x->pct_4xx, 0, "/x pct_4xx");
	assert_near(x->pct_5xx, 0, "/x pct_5xx");
	aggregator__snapshot_free(&s);
	aggregator__free(a);
}

Test(aggregator, boundary_and_unknown_statuses)
{
	static const int statuses[] = { 399, 400, 499, 500, 599, -1 };
	struct aggregator *a = mk(15, 10);
	struct agg_snapshot s;

	for (size_t i = 0; i < sizeof(statuses) / sizeof(statuses[0]); i++)
		push(a, T0 + SEC, "GET", "/a", statuses[i], MS, 1);
	snap(a, AGG_WINDOW_LONG, T0 + 2 * SEC, &s);
	assert_near(s.total.pct_4xx, 100.0 * 2 / 6, "pct_4xx (400, 499)");
	assert_near(s.total.pct_5xx, 100.0 * 2 / 6, "pct_5xx (500, 599)");
	aggregator__snapshot_free(&s);
	aggregator__free(a);
}

Test(aggregator, sample_rate_weights)
{
	struct aggregator *a = mk(15, 10);
	struct agg_snapshot s;

	/* One slow request sampled at 10% stands for 10; ten fast ones at 100%. */
	push(a, T0 + SEC, "GET", "/a", 200, 100 * MS, 0.1);
	for (int i = 0; i < 10; i++)
		push(a, T0 + SEC, "GET", "/a", 200, 1 * MS, 1.0);
	/* A 5xx at rate 1 counts once, a 4xx at rate 0.5 twice. */
	push(a, T0 + SEC, "POST", "/b", 500, 2 * MS, 1.0);
	push(a, T0 + SEC, "POST", "/b", 404, 2 * MS, 0.5);
	snap(a, AGG_WINDOW_LONG, T0 + 2 * SEC, &s);
	assert_near(s.total.count, 23, "total count");
	assert_near(s.total.rps, 23.0 / 2, "total rps");
	assert_near(s.total.pct_5xx, 100.0 / 23, "pct_5xx");
	assert_near(s.total.pct_4xx, 200.0 / 23, "pct_4xx");
	const struct agg_row *ra = must_row(&s, "GET", "/a"), *rb = must_row(&s, "POST", "/b");

	assert_near(ra->count, 20, "/a count");
	assert_near(rb->count, 3, "/b count");
	/* Half the weight of /a is at 1 ms, half at 100 ms. */
	cr_assert(ra->p50_ns >= 990000 && ra->p50_ns <= 1010000, "/a p50 %llu",
		  (unsigned long long)ra->p50_ns);
	cr_assert(ra->p95_ns >= 99 * MS && ra->p95_ns <= 100 * MS, "/a p95 %llu",
		  (unsigned long long)ra->p95_ns);
	assert_near(s.total.spark[AGG_SPARK - 2], 23, "spark of second 1001");
	cr_assert_eq(s.errors_total, 1, "errors are records: the 5xx counts once");
	aggregator__snapshot_free(&s);
	aggregator__free(a);
}

Test(aggregator, invalid_sample_rates_count_once)
{
	static const double rates[] = { 0, -1, 1.5, NAN };
	struct aggregator *a = mk(15, 10);
	struct agg_snapshot s;

	for (int i = 0; i < 4; i++)
		push(a, T0 + SEC, "GET", "/a", 200, MS, rates[i]);
	snap(a, AGG_WINDOW_LONG, T0 + 2 * SEC, &s);
	cr_assert_eq(s.total.count, 4);
	aggregator__snapshot_free(&s);
	aggregator__free(a);
}

Test(aggregator, one_row_per_method_and_route)
{
	struct aggregator *a = mk(15, 10);
	struct agg_snapshot s;

	for (int i = 0; i < 3; i++)
		push(a, T0 + SEC, "GET", "/a", 200, MS, 1);
	for (int i = 0; i < 2; i++)
		push(a, T0 + SEC, "POST", "/a", 201, MS, 1);
	push(a, T0 + SEC, "GET", "/b", 200, MS, 1);
	push(a, T0 + SEC, NULL, "/c", 200, MS, 1);  /* method unknown */
	push(a, T0 + SEC, "GET", NULL, 200, MS, 1); /* route unknown */
	snap(a, AGG_WINDOW_LONG, T0 + 2 * SEC, &s);
	cr_assert_eq(s.nrows, 5);
	cr_assert_eq(s.total.count, 8);
	cr_assert_eq(must_row(&s, "GET", "/a")->count, 3);
	cr_assert_eq(must_row(&s, "POST", "/a")->count, 2);
	cr_assert_eq(must_row(&s, "GET", "/b")->count, 1);
	cr_assert_not_null(find_row(&s, "?", "/c"));
	cr_assert_not_null(find_row(&s, "GET", REQ_UNMATCHED));
	aggregator__snapshot_free(&s);
	aggregator__free(a);
}

/* A 404 scanner: every unmatched request carries its raw path as route (the
 * JSONL record keeps it) but all share one row, whatever the paths. */
Test(aggregator, unmatched_paths_share_one_row)
{
	struct aggregator *a = mk(15, 10);
	struct agg_snapshot s;
	char path[64];

	for (int i = 0; i < 2 * AGG_ROUTE_MAX; i++) {
		struct request_record r;

		snprintf(path, sizeof(path), "/wp-admin/%d.php", i);
		r = rec(T0 + SEC, "GET", path, 404, MS, 1);
		r.route_matched = false; /* no rule: request.c copies the path */
		aggregator__push(a, &r);
	}
	push(a, T0 + SEC, "GET", "/users/<int:uid>", 200, MS, 1);
	snap(a, AGG_WINDOW_LONG, T0 + 2 * SEC, &s);
	cr_assert_eq(s.nrows, 2);
	cr_assert_eq(must_row(&s, "GET", REQ_UNMATCHED)->count, 2 * AGG_ROUTE_MAX);
	cr_assert_eq(must_row(&s, "GET", REQ_UNMATCHED)->pct_4xx, 100);
	cr_assert_eq(must_row(&s, "GET", "/users/<int:uid>")->count, 1);
	aggregator__snapshot_free(&s);
	aggregator__free(a);
}

Test(aggregator, routes_beyond_the_limit_fold_into_other)
{
	struct aggregator *a = mk(1, 10);
	struct agg_snapshot s;
	char route[32];
	double sum = 0;
	int n = AGG_ROUTE_MAX + 10;

	for (int i = 0; i < n; i++) {
		snprintf(route, sizeof(route), "/r/%d", i);
		push(a, T0 + SEC, "GET", route, 200, MS, 1);
	}
	snap(a, AGG_WINDOW_LONG, T0 + 2 * SEC, &s);
	cr_assert_eq(s.nrows, AGG_ROUTE_MAX);
	cr_assert_eq(s.total.count, n);
	for (size_t i = 0; i < s.nrows; i++)
		sum += s.rows[i].count;
	cr_assert_eq(sum, n, "rows must add up to the total");
	const struct agg_row *other = must_row(&s, "*", "(other)");

	/* The first AGG_ROUTE_MAX - 1 routes have rows; the rest share "(other)". */
	cr_assert_eq(other->count, n - (AGG_ROUTE_MAX - 1));
	cr_assert_not_null(find_row(&s, "GET", "/r/510"));
	cr_assert_null(find_row(&s, "GET", "/r/511"));
	aggregator__snapshot_free(&s);
	aggregator__free(a);
}

/* A route longer than a row holds is still one route, however often it comes. */
Test(aggregator, long_route_is_one_row)
{
	struct aggregator *a = mk(15, 10);
	struct agg_snapshot s;
	char route[400];

	memset(route, 'x', sizeof(route) - 1);
	route[0] = '/';
	route[sizeof(route) - 1] = 0;
	for (int i = 0; i < 5; i++)
		push(a, T0 + SEC, "GET", route, 200, MS, 1);
	snap(a, AGG_WINDOW_LONG, T0 + 2 * SEC, &s);
	cr_assert_eq(s.total.count, 5);
	cr_assert_eq(s.nrows, 1, "a %zu-byte route made %zu rows", strlen(route), s.nrows);
	cr_assert_eq(s.rows[0].count, 5);
	cr_assert_eq(strncmp(s.rows[0].route, route, 255), 0);
	aggregator__snapshot_free(&s);
	aggregator__free(a);
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

/* Cutting a long non-ASCII route to the row's size keeps whole characters. */
Test(aggregator, long_route_cut_keeps_utf8_valid)
{
	struct aggregator *a = mk(15, 10);
	struct agg_snapshot s;
	struct request_record r = rec(T0 + SEC, "GET", "", 500, MS, 1);
	size_t o = 0;

	r.route[o++] = '/';
	r.route[o++] = 'a';
	while (o + 2 < 300) { /* "/aéééé…": an "é" straddles bytes 254-255 */
		memcpy(r.route + o, "é", 2);
		o += 2;
	}
	r.route[o] = 0;
	aggregator__push(a, &r);
	snap(a, AGG_WINDOW_LONG, T0 + 2 * SEC, &s);
	cr_assert_eq(s.nrows, 1);
	cr_assert(valid_utf8(s.rows[0].route), "row route cut inside a character (%zu bytes)",
		  strlen(s.rows[0].route));
	cr_assert_eq(s.nerrors, 1);
	cr_assert(valid_utf8(s.errors[0].route), "error route cut inside a character");
	aggregator__snapshot_free(&s);
	aggregator__free(a);
}

Test(aggregator, sparkline_per_second_newest_last)
{
	struct aggregator *a = mk(15, 10);
	struct agg_snapshot s;
	uint64_t S = T0 + 100 * SEC; /* the current second */

	/* An old second in the same ring position as S, then S itself. */
	for (int k = 0; k < 3; k++)
		push(a, S - 60 * SEC + 10 * MS, "GET", "/a", 200, MS, 1);
	for (int i = 0; i < 60; i++)
		for (int k = 0; k < i % 7 + 1; k++)
			push(a, S - (uint64_t)i * SEC + (uint64_t)k * MS, "GET", "/a", 200, MS, 1);
	/* A late arrival for the overwritten old second must not land in S's bucket. */
	push(a, S - 60 * SEC + 20 * MS, "GET", "/a", 200, MS, 1);
	snap(a, AGG_WINDOW_LONG, S + 500 * MS, &s);
	for (int i = 0; i < 60; i++) {
		cr_assert_eq(s.total.spark[AGG_SPARK - 1 - i], i % 7 + 1,
			     "spark[%d] (%d s ago) = %g, want %d", AGG_SPARK - 1 - i, i,
			     s.total.spark[AGG_SPARK - 1 - i], i % 7 + 1);
		cr_assert_eq(s.rows[0].spark[AGG_SPARK - 1 - i], i % 7 + 1);
	}
	aggregator__snapshot_free(&s);

	/* Ten seconds later everything has moved ten places left. */
	snap(a, AGG_WINDOW_NOW, S + 10 * SEC, &s);
	for (int i = 0; i < 10; i++)
		cr_assert_eq(s.total.spark[AGG_SPARK - 1 - i], 0, "spark[%d] future",
			     AGG_SPARK - 1 - i);
	for (int i = 0; i < 50; i++)
		cr_assert_eq(s.total.spark[AGG_SPARK - 11 - i], i % 7 + 1, "spark[%d] shifted",
			     AGG_SPARK - 11 - i);
	aggregator__snapshot_free(&s);

	/* Two minutes later nothing is left. */
	snap(a, AGG_WINDOW_LONG, S + 120 * SEC, &s);
	for (int i = 0; i < AGG_SPARK; i++)
		cr_assert_eq(s.total.spark[i], 0, "spark[%d] stale", i);
	aggregator__snapshot_free(&s);
	aggregator__free(a);
}

Test(aggregator, sparkline_is_weighted)
{
	struct aggregator *a = mk(15, 10);
	struct agg_snapshot s;

	push(a, T0 + 5 * SEC, "GET", "/a", 200, MS, 0.25);
	push(a, T0 + 5 * SEC, "GET", "/a", 200, MS, 1);
	snap(a, AGG_WINDOW_LONG, T0 + 5 * SEC + 1, &s);
	assert_near(s.total.spark[AGG_SPARK - 1], 5, "weighted spark");
	aggregator__snapshot_free(&s);
	aggregator__free(a);
}

Test(aggregator, recent_errors_ring)
{
	struct aggregator *a = mk(15, 3);
	struct agg_snapshot s;
	char route[16];

	for (int i = 1; i <= 5; i++) {
		struct request_record r;

		snprintf(route, sizeof(route), "/e%d", i);
		r = rec(T0 + SEC, i == 2 ? "POST" : "GET", route, 500 + i, MS, 1);
		r.time_unix_ns = 1700000000 * SEC + (uint64_t)i;
		if (i == 4) {
			r.has_exception_type = true;
			strcpy(r.exception_type, "ValueError");
		}
		aggregator__push(a, &r);
		push(a, T0 + SEC, "GET", "/ok", 404, MS, 1); /* a 4xx is not an error */
	}
	snap(a, AGG_WINDOW_LONG, T0 + 2 * SEC, &s);
	cr_assert_eq(s.errors_total, 5);
	cr_assert_eq(s.nerrors, 3);
	for (int k = 0; k < 3; k++) { /* newest first: 5, 4, 3 */
		int i = 5 - k;

		snprintf(route, sizeof(route), "/e%d", i);
		cr_assert_eq(s.errors[k].time_unix_ns, 1700000000 * SEC + (uint64_t)i);
		cr_assert_str_eq(s.errors[k].route, route);
		cr_assert_str_eq(s.errors[k].method, "GET");
		cr_assert_eq(s.errors[k].status, 500 + i);
		cr_assert_str_eq(s.errors[k].exception_type, i == 4 ? "ValueError" : "");
	}
	aggregator__snapshot_free(&s);
	aggregator__free(a);
}

Test(aggregator, exception_without_5xx_is_an_error)
{
	struct aggregator *a = mk(15, 10);
	struct agg_snapshot s;
	struct request_record r = rec(T0 + SEC, "GET", "/boom", 200, MS, 1);

	r.error = true;
	r.has_exception_type = true;
	strcpy(r.exception_type, "KeyError");
	aggregator__push(a, &r);
	snap(a, AGG_WINDOW_LONG, T0 + 2 * SEC, &s);
	cr_assert_eq(s.nerrors, 1);
	cr_assert_eq(s.errors[0].status, 200);
	cr_assert_str_eq(s.errors[0].exception_type, "KeyError");
	cr_assert_eq(s.total.pct_5xx, 0);
	aggregator__snapshot_free(&s);
	aggregator__free(a);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t exact_rank(const uint64_t *v, size_t n, double p)
{
	size_t rank = (size_t)ceil(p * (double)n - 1e-9);

	return v[(rank < 1 ? 1 : rank) - 1];
}

static void check_row(const struct agg_row *r, uint64_t *v, size_t n, const char *what)
{
	static const double ps[] = { 0.50, 0.95, 0.99 };
	const uint64_t got[] = { r->p50_ns, r->p95_ns, r->p99_ns };

	qsort(v, n, sizeof(*v), cmp_u64);
	cr_assert_eq(r->count, (double)n, "%s count", what);
	cr_assert_eq(r->max_ns, v[n - 1], "%s max must be exact", what);
	for (int i = 0; i < 3; i++) {
		uint64_t want = exact_rank(v, n, ps[i]);

		cr_assert_leq(fabs((double)got[i] - (double)want) / (double)want, 0.01,
			      "%s p%g = %llu, exact %llu", what, ps[i] * 100,
			      (unsigned long long)got[i], (unsigned long long)want);
	}
}

/* Random traffic spread over several minutes of one window, two routes with
 * different shapes: each row's percentiles against the exact values. */
Test(aggregator, per_route_percentiles_match_exact)
{
	size_t n = 6000, nf = 0, ns = 0;
	uint64_t *fast = malloc(n * sizeof(*fast)), *slow = malloc(n * sizeof(*slow));
	uint64_t *all = malloc(n * sizeof(*all)), seed = 0x5eed0a66;
	struct aggregator *a = mk(15, 10);
	struct agg_snapshot s;

	cr_assert(fast && slow && all);
	for (size_t i = 0; i < n; i++) {
		uint64_t ts = T0 + rng_next(&seed) % (10 * 60 * SEC);
		uint64_t dur;

		if (rng_next(&seed) % 3) {
			dur = 1 * MS + rng_next(&seed) % (4 * MS);
			fast[nf++] = dur;
			push(a, ts, "GET", "/fast", 200, dur, 1);
		} else {
			dur = 20 * MS +
			      rng_next(&seed) % (rng_next(&seed) % 10 ? 80 * MS : 3 * SEC);
			slow[ns++] = dur;
			push(a, ts, "POST", "/slow", 200, dur, 1);
		}
		all[i] = dur;
	}
	snap(a, AGG_WINDOW_LONG, T0 + 10 * 60 * SEC, &s);
	cr_assert_eq(s.nrows, 2);
	check_row(must_row(&s, "GET", "/fast"), fast, nf, "/fast");
	check_row(must_row(&s, "POST", "/slow"), slow, ns, "/slow");
	check_row(&s.total, all, n, "total");
	aggregator__snapshot_free(&s);
	aggregator__free(a);
	free(fast);
	free(slow);
	free(all);
}

#define THREADS 4
#define PER_THREAD 20000

static void *pusher(void *arg)
{
	struct aggregator *a = arg;

	for (int i = 0; i < PER_THREAD; i++)
		push(a, T0 + SEC + (uint64_t)i * 1000, "GET", i % 2 ? "/a" : "/b", 200, MS, 1);
	return NULL;
}

Test(aggregator, concurrent_pushes_all_count)
{
	struct aggregator *a = mk(15, 10);
	pthread_t t[THREADS];
	struct agg_snapshot s;

	for (int i = 0; i < THREADS; i++)
		cr_assert_eq(pthread_create(&t[i], NULL, pusher, a), 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	snap(a, AGG_WINDOW_LONG, T0 + 2 * SEC, &s);
	cr_assert_eq(s.total.count, THREADS * PER_THREAD);
	cr_assert_eq(must_row(&s, "GET", "/a")->count, THREADS * PER_THREAD / 2);
	aggregator__snapshot_free(&s);
	aggregator__free(a);
}

Test(aggregator, free_is_null_safe)
{
	struct agg_snapshot s = { 0 };

	aggregator__free(NULL);
	aggregator__snapshot_free(&s);
}
