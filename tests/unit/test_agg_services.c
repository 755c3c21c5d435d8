// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The aggregator with several services (a node agent): rows keyed by
 * (service, method, route), so two services' same route are two rows;
 * per-service totals exact (counts, shares, percentiles against the exact
 * values, sparkline) and adding up to the total; the first service's
 * statistics unchanged when a second one appears (it shares the total's
 * slots until then); the service and route bounds with their "(other)"
 * buckets; names cut at a UTF-8 boundary; recent errors naming the service.
 * Same injected clock as test_aggregator.c: observation starts at 1000 s.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "aggregator.h"

#define MS 1000000ULL
#define SEC 1000000000ULL
#define T0 (1000 * SEC)

static uint64_t splitmix(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static struct aggregator *mk(int max_errors)
{
	struct agg_opts o = { .window_minutes = 15, .max_errors = max_errors, .start_ns = T0 };
	struct aggregator *a = aggregator__new(&o);

	cr_assert_not_null(a);
	return a;
}

static void push(struct aggregator *a, const char *svc, uint64_t ts, const char *method,
		 const char *route, int status, uint64_t dur)
{
	struct request_record r;

	memset(&r, 0, sizeof(r));
	r.ts_ns = ts;
	r.time_unix_ns = 1700000000 * SEC + (ts - T0);
	r.dur_ns = dur;
	r.status = status;
	r.sample_rate = 1;
	r.error = status >= 500;
	r.has_method = true;
	snprintf(r.method, sizeof(r.method), "%s", method);
	r.has_route = r.route_matched = true;
	snprintf(r.route, sizeof(r.route), "%s", route);
	snprintf(r.meta.service_name, sizeof(r.meta.service_name), "%s", svc);
	aggregator__push(a, &r);
}

static void snap(struct aggregator *a, enum agg_window w, uint64_t now, struct agg_snapshot *s)
{
	cr_assert_eq(aggregator__snapshot(a, w, now, s), 0);
}

static const struct agg_row *row_of(const struct agg_snapshot *s, const char *svc,
				    const char *method, const char *route)
{
	for (size_t i = 0; i < s->nrows; i++)
		if (!strcmp(s->rows[i].service, svc) && !strcmp(s->rows[i].method, method) &&
		    !strcmp(s->rows[i].route, route))
			return &s->rows[i];
	return NULL;
}

static const struct agg_row *svc_of(const struct agg_snapshot *s, const char *svc)
{
	for (size_t i = 0; i < s->nservices; i++)
		if (!strcmp(s->services[i].service, svc))
			return &s->services[i];
	return NULL;
}

static const struct agg_row *must_svc(const struct agg_snapshot *s, const char *svc)
{
	const struct agg_row *r = svc_of(s, svc);

	cr_assert_not_null(r, "no service row for \"%s\"", svc);
	return r;
}

/* Every field of two rows, the names aside. */
static void same_stats(const struct agg_row *a, const struct agg_row *b, const char *what)
{
	cr_assert_eq(a->count, b->count, "%s count %g vs %g", what, a->count, b->count);
	cr_assert_eq(a->rps, b->rps, "%s rps", what);
	cr_assert_eq(a->pct_4xx, b->pct_4xx, "%s 4xx", what);
	cr_assert_eq(a->pct_5xx, b->pct_5xx, "%s 5xx", what);
	cr_assert_eq(a->p50_ns, b->p50_ns, "%s p50", what);
	cr_assert_eq(a->p95_ns, b->p95_ns, "%s p95", what);
	cr_assert_eq(a->p99_ns, b->p99_ns, "%s p99", what);
	cr_assert_eq(a->max_ns, b->max_ns, "%s max", what);
	for (int i = 0; i < AGG_SPARK; i++)
		cr_assert_eq(a->spark[i], b->spark[i], "%s spark[%d]", what, i);
}

Test(agg_services, same_route_of_two_services_is_two_rows)
{
	struct aggregator *a = mk(10);
	struct agg_snapshot s;

	for (int i = 0; i < 3; i++)
		push(a, "alpha", T0 + SEC, "GET", "/users/<int:uid>", 200, 2 * MS);
	for (int i = 0; i < 5; i++)
		push(a, "beta", T0 + SEC, "GET", "/users/<int:uid>", i ? 200 : 404, 7 * MS);
	push(a, "beta", T0 + SEC, "POST", "/orders", 500, 9 * MS);
	snap(a, AGG_WINDOW_LONG, T0 + 2 * SEC, &s);
	cr_assert_eq(s.total.count, 9);
	cr_assert_eq(s.nrows, 3);
	cr_assert_eq(row_of(&s, "alpha", "GET", "/users/<int:uid>")->count, 3);
	cr_assert_eq(row_of(&s, "alpha", "GET", "/users/<int:uid>")->max_ns, 2 * MS);
	cr_assert_eq(row_of(&s, "beta", "GET", "/users/<int:uid>")->count, 5);
	cr_assert_eq(row_of(&s, "beta", "GET", "/users/<int:uid>")->pct_4xx, 20);
	cr_assert_eq(row_of(&s, "beta", "POST", "/orders")->count, 1);
	cr_assert_null(row_of(&s, "alpha", "POST", "/orders"));
	cr_assert_eq(s.nservices, 2);
	cr_assert_str_eq(s.services[0].service, "alpha", "in order of first request");
	cr_assert_str_eq(s.services[1].service, "beta");
	cr_assert_eq(s.services[0].count, 3);
	cr_assert_eq(s.services[0].pct_4xx, 0);
	cr_assert_eq(s.services[0].pct_5xx, 0);
	cr_assert_eq(s.services[0].p50_ns, 2 * MS);
	cr_assert_eq(s.services[0].spark[AGG_SPARK - 2], 3, "second T0+1 is one before now");
	cr_assert_eq(s.services[1].count, 6);
	cr_assert_eq(s.services[1].rps, 3, "6 requests over the 2 s since attach");
	cr_assert_eq(s.services[1].pct_4xx, 100.0 / 6);
	cr_assert_eq(s.services[1].pct_5xx, 100.0 / 6);
	cr_assert_eq(s.services[1].max_ns, 9 * MS);
	cr_assert_str_eq(s.services[1].route, "(all)");
	cr_assert_str_eq(s.services[1].method, "");
	cr_assert_str_eq(s.total.service, "", "the total belongs to no service");
	aggregator__snapshot_free(&s);
	aggregator__free(a);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void check_pcts(const struct agg_row *r, uint64_t *v, size_t n, const char *what)
{
	static const double ps[] = { 0.50, 0.95, 0.99 };
	const uint64_t got[] = { r->p50_ns, r->p95_ns, r->p99_ns };

	qsort(v, n, sizeof(*v), cmp_u64);
	cr_assert_eq(r->count, (double)n, "%s count %g, fed %zu", what, r->count, n);
	cr_assert_eq(r->max_ns, v[n - 1], "%s max must be exact", what);
	for (int i = 0; i < 3; i++) {
		size_t rank = (size_t)ceil(ps[i] * (double)n - 1e-9);
		uint64_t want = v[(rank < 1 ? 1 : rank) - 1];

		cr_assert_leq(fabs((double)got[i] - (double)want) / (double)want, 0.01,
			      "%s p%g = %llu, exact %llu", what, ps[i] * 100,
			      (unsigned long long)got[i], (unsigned long long)want);
	}
}

/* Random traffic of three services over ten minutes: each service's row
 * against the exact values of what it was fed, and the rows of a service
 * adding up to its service row, the service rows to the total. */
Test(agg_services, per_service_totals_are_exact)
{
	static const char *const names[3] = { "alpha", "beta", "" };
	size_t n = 6000, cnt[3] = { 0 };
	double n5[3] = { 0 }, sum_svc = 0;
	uint64_t *v[3], seed = 0x5e41ce;
	struct aggregator *a = mk(10);
	struct agg_snapshot s;

	for (int k = 0; k < 3; k++)
		cr_assert_not_null(v[k] = malloc(n * sizeof(*v[k])));
	for (size_t i = 0; i < n; i++) {
		int k = splitmix(&seed) % 3;
		uint64_t ts = T0 + splitmix(&seed) % (10 * 60 * SEC);
		uint64_t dur = (k + 1) * MS + splitmix(&seed) % ((k + 1) * 20 * MS);
		int status = splitmix(&seed) % 10 ? 200 : 503;

		v[k][cnt[k]++] = dur;
		n5[k] += status == 503;
		push(a, names[k], ts, "GET", splitmix(&seed) % 2 ? "/a" : "/b", status, dur);
	}
	snap(a, AGG_WINDOW_LONG, T0 + 10 * 60 * SEC, &s);
	cr_assert_eq(s.nservices, 3, "the unknown service \"\" is a service of its own");
	for (int k = 0; k < 3; k++) {
		const struct agg_row *sv = must_svc(&s, names[k]);
		double rows = 0;

		check_pcts(sv, v[k], cnt[k], names[k]);
		cr_assert_eq(sv->pct_5xx, 100.0 * n5[k] / cnt[k], "%s 5xx", names[k]);
		for (size_t i = 0; i < s.nrows; i++)
			if (!strcmp(s.rows[i].service, names[k]))
				rows += s.rows[i].count;
		cr_assert_eq(rows, sv->count, "%s: rows add up to %g, service %g", names[k], rows,
			     sv->count);
		sum_svc += sv->count;
	}
	cr_assert_eq(s.nrows, 6);
	cr_assert_eq(sum_svc, s.total.count);
	aggregator__snapshot_free(&s);
	aggregator__free(a);
	for (int k = 0; k < 3; k++)
		free(v[k]);
}

/* Alone, a service's row is the total's slots; when a second service
 * comes, the first's statistics (percentiles, sparkline, both windows) are
 * exactly what they were, and from then on only its own requests count. */
Test(agg_services, first_service_unchanged_when_a_second_comes)
{
	struct aggregator *a = mk(10);
	struct agg_snapshot before[2], after[2];
	uint64_t seed = 42, now = T0 + 5 * 60 * SEC;

	for (int i = 0; i < 500; i++)
		push(a, "shop", T0 + splitmix(&seed) % (5 * 60 * SEC - SEC), "GET", "/a",
		     i % 7 ? 200 : 500, MS + splitmix(&seed) % (30 * MS));
	for (int w = 0; w < 2; w++) {
		snap(a, w, now, &before[w]);
		cr_assert_eq(before[w].nservices, 1);
		same_stats(&before[w].services[0], &before[w].total, "solo service vs total");
		cr_assert_str_eq(before[w].services[0].service, "shop");
	}
	push(a, "cart", now - SEC / 2, "GET", "/a", 200, 100 * MS);
	for (int w = 0; w < 2; w++) {
		snap(a, w, now, &after[w]);
		cr_assert_eq(after[w].nservices, 2);
		same_stats(must_svc(&after[w], "shop"), &before[w].services[0], "shop after cart");
		cr_assert_eq(must_svc(&after[w], "cart")->count, 1);
		cr_assert_eq(must_svc(&after[w], "cart")->max_ns, 100 * MS);
		cr_assert_eq(after[w].total.count, before[w].total.count + 1);
		aggregator__snapshot_free(&after[w]);
	}
	push(a, "shop", now - SEC / 2, "GET", "/a", 200, 5 * MS);
	snap(a, AGG_WINDOW_LONG, now, &after[0]);
	cr_assert_eq(must_svc(&after[0], "shop")->count, before[0].total.count + 1);
	cr_assert_eq(must_svc(&after[0], "cart")->count, 1, "shop's request is not cart's");
	cr_assert_eq(after[0].total.count, before[0].total.count + 2);
	aggregator__snapshot_free(&after[0]);
	for (int w = 0; w < 2; w++)
		aggregator__snapshot_free(&before[w]);
	aggregator__free(a);
}

/* One service costs no slots: its row shares the total's.  R, the bytes of
 * one route row, is what a second route with the very same traffic adds;
 * one service with one route then holds the total and that row (2 R), where
 * a service row with its own slots would make it 3 R. */
Test(agg_services, one_service_costs_no_slots)
{
	struct aggregator *empty = mk(10), *one = mk(10), *two = mk(10);
	size_t e, x, row;

	for (int m = 0; m < 15; m++) {
		uint64_t ts = T0 + m * 60 * SEC, dur = (1 + m) * MS;

		push(one, "shop", ts, "GET", "/a", 200, dur);
		push(two, "shop", ts, "GET", "/a", 200, dur);
		push(two, "shop", ts, "GET", "/b", 200, dur);
	}
	e = aggregator__bytes(empty);
	x = aggregator__bytes(one);
	row = aggregator__bytes(two) - x;
	cr_assert_leq(x - e, 2 * row, "one service and one route take %zu bytes, a row %zu", x - e,
		      row);
	aggregator__free(empty);
	aggregator__free(one);
	aggregator__free(two);
}

Test(agg_services, services_beyond_the_limit_fold_into_other)
{
	struct aggregator *a = mk(10);
	struct agg_snapshot s;
	char name[32];
	int n = AGG_SERVICE_MAX + 5;
	double sum = 0;

	for (int i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "svc-%d", i);
		push(a, name, T0 + SEC, "GET", "/x", 200, MS);
		push(a, name, T0 + SEC, "GET", "/x", 200, MS);
	}
	snap(a, AGG_WINDOW_LONG, T0 + 2 * SEC, &s);
	cr_assert_eq(s.nservices, AGG_SERVICE_MAX);
	cr_assert_not_null(svc_of(&s, "svc-126"));
	cr_assert_null(svc_of(&s, "svc-127"), "the last slot is kept for (other)");
	/* svc-127 .. svc-132: 6 services of 2 requests each. */
	cr_assert_eq(must_svc(&s, AGG_OTHER)->count, 2 * (n - (AGG_SERVICE_MAX - 1)));
	cr_assert_eq(row_of(&s, AGG_OTHER, "GET", "/x")->count, 2 * (n - (AGG_SERVICE_MAX - 1)),
		     "a folded service's rows are (other)'s");
	cr_assert_eq(s.nrows, AGG_SERVICE_MAX);
	for (size_t i = 0; i < s.nservices; i++)
		sum += s.services[i].count;
	cr_assert_eq(sum, 2 * n);
	cr_assert_eq(s.total.count, 2 * n);
	aggregator__snapshot_free(&s);
	aggregator__free(a);
}

/* The route bound is shared: once AGG_ROUTE_MAX - 1 rows exist, each
 * service's new routes go to its own ("*", "(other)") row, so every
 * service's rows still add up to its service row. */
Test(agg_services, routes_beyond_the_limit_fold_per_service)
{
	struct aggregator *a = mk(10);
	struct agg_snapshot s;
	char route[32];
	int n = AGG_ROUTE_MAX + 10;

	for (int i = 0; i < n; i++) {
		snprintf(route, sizeof(route), "/r/%d", i);
		push(a, "alpha", T0 + SEC, "GET", route, 200, MS);
	}
	push(a, "beta", T0 + SEC, "GET", "/r/0", 200, MS);
	push(a, "beta", T0 + SEC, "GET", "/b", 200, MS);
	push(a, "alpha", T0 + SEC, "GET", "/r/3", 200, MS); /* an existing row */
	snap(a, AGG_WINDOW_LONG, T0 + 2 * SEC, &s);
	cr_assert_eq(s.nrows, AGG_ROUTE_MAX + 1, "511 rows and two (other) rows");
	cr_assert_eq(row_of(&s, "alpha", "*", AGG_OTHER)->count, n - (AGG_ROUTE_MAX - 1));
	cr_assert_eq(row_of(&s, "alpha", "GET", "/r/3")->count, 2);
	cr_assert_eq(row_of(&s, "beta", "*", AGG_OTHER)->count, 2);
	cr_assert_null(row_of(&s, "beta", "GET", "/r/0"));
	cr_assert_eq(must_svc(&s, "beta")->count, 2);
	cr_assert_eq(must_svc(&s, "alpha")->count, n + 1);
	aggregator__snapshot_free(&s);
	aggregator__free(a);
}

static bool valid_utf8(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	while (*p) {
		int n = *p < 0x80 ? 0 : (*p & 0xe0) == 0xc0 ? 1 : (*p & 0xf0) == 0xe0 ? 2 : -1;

		if (n < 0)
			return false;
		for (p++; n > 0; n--, p++)
			if ((*p & 0xc0) != 0x80)
				return false;
	}
	return true;
}

/* A name longer than a row holds (63 bytes) is cut at a character boundary,
 * the same way for the service row, its route rows and its errors; two names
 * that differ only past the cut are one service. */
Test(agg_services, long_service_name_cut_at_a_character)
{
	struct aggregator *a = mk(10);
	struct agg_snapshot s;
	char name[128] = "sv", other[128];
	size_t o = 2;

	while (o + 2 < sizeof(name) - 1) { /* "svéééé…": an "é" straddles bytes 62-63 */
		memcpy(name + o, "é", 2);
		o += 2;
	}
	name[o] = 0;
	snprintf(other, sizeof(other), "%.*s-x", 100, name);
	push(a, name, T0 + SEC, "GET", "/a", 500, MS);
	push(a, other, T0 + SEC, "GET", "/a", 200, MS);
	snap(a, AGG_WINDOW_LONG, T0 + 2 * SEC, &s);
	cr_assert_eq(s.nservices, 1);
	cr_assert_eq(s.nrows, 1);
	cr_assert_eq(s.rows[0].count, 2);
	cr_assert(valid_utf8(s.services[0].service), "cut inside a character");
	cr_assert_eq(strlen(s.services[0].service), 62, "2 + 30 x 2 bytes: %zu",
		     strlen(s.services[0].service));
	cr_assert_str_eq(s.rows[0].service, s.services[0].service);
	cr_assert_str_eq(s.errors[0].service, s.services[0].service);
	aggregator__snapshot_free(&s);
	aggregator__free(a);
}

Test(agg_services, errors_name_their_service)
{
	struct aggregator *a = mk(10);
	struct agg_snapshot s;

	push(a, "alpha", T0 + SEC, "GET", "/boom", 500, MS);
	push(a, "beta", T0 + SEC + 1, "POST", "/pay", 502, MS);
	push(a, "", T0 + SEC + 2, "GET", "/x", 503, MS);
	snap(a, AGG_WINDOW_LONG, T0 + 2 * SEC, &s);
	cr_assert_eq(s.nerrors, 3);
	cr_assert_str_eq(s.errors[0].service, "");
	cr_assert_str_eq(s.errors[1].service, "beta");
	cr_assert_str_eq(s.errors[1].route, "/pay");
	cr_assert_str_eq(s.errors[2].service, "alpha");
	aggregator__snapshot_free(&s);
	aggregator__free(a);
}

/* The 10 s window lists only the services with requests in it, like rows. */
Test(agg_services, idle_service_leaves_the_now_window)
{
	struct aggregator *a = mk(10);
	struct agg_snapshot s;

	push(a, "alpha", T0 + SEC, "GET", "/a", 200, MS);
	push(a, "beta", T0 + 30 * SEC, "GET", "/a", 200, MS);
	snap(a, AGG_WINDOW_NOW, T0 + 31 * SEC, &s);
	cr_assert_eq(s.nservices, 1);
	cr_assert_str_eq(s.services[0].service, "beta");
	cr_assert_eq(s.nrows, 1);
	aggregator__snapshot_free(&s);
	snap(a, AGG_WINDOW_LONG, T0 + 31 * SEC, &s);
	cr_assert_eq(s.nservices, 2);
	aggregator__snapshot_free(&s);
	aggregator__free(a);
}
