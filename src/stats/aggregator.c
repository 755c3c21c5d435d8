// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Rows are keyed by (service, method, route), where service is the
 * service's bucket (its name, or "(other)" past AGG_SERVICE_MAX - 1), so a
 * service's rows add up to its service row.  Slots are rings indexed by time (minute or second number modulo the ring
 * length) that reset themselves when a newer period reaches them, so rolling
 * over costs nothing per tick.  Histograms are allocated only for slots that
 * see traffic.  Rates divide by the time really covered: the window, or less
 * just after attach, and never less than one second.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "aggregator.h"
#include "histogram.h"
#include "utf8.h"

#define NS 1000000000ULL
/* A long window is kept in at most this many slots: 1-minute slots up to an
 * hour, longer ones beyond (24 minutes for a day), so a route's memory does
 * not grow with --window-minutes. */
#define LONG_SLOTS_MAX 60

struct slot {
	int64_t id; /* period number, -1 when unused */
	double count, n4xx, n5xx;
	struct histogram *h;
};

struct route {
	char service[64];
	char method[16];
	char route[256];
	struct slot *minutes; /* nslots entries of slot_ns */
	struct slot seconds[AGG_NOW_SECS];
	double spark[AGG_SPARK];
	int64_t spark_id[AGG_SPARK];
};

struct aggregator {
	struct agg_opts o;
	int nslots; /* long-window ring: nslots x slot_ns covers the window */
	uint64_t slot_ns;
	pthread_mutex_t lock;
	struct route total;
	struct route *services[AGG_SERVICE_MAX];
	size_t nservices;
	/* One service costs no memory: while every request came from the same
	 * service, its row is the total (services[0] holds only its name);
	 * a second service gives it a copy of the total's slots. */
	bool solo;
	/* Up to AGG_ROUTE_MAX - 1 ordinary rows, then one "(other)" row per
	 * service, which is always room for it. */
	struct route *routes[AGG_ROUTE_MAX - 1 + AGG_SERVICE_MAX];
	size_t nroutes, nordinary;
	struct agg_error *errors; /* ring */
	size_t err_head, nerrors;
	uint64_t errors_total;
};

static void slot_init(struct slot *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		s[i].id = -1;
}

static int route_init(struct route *r, const char *service, const char *method, const char *route,
		      int nslots)
{
	utf8_copy_cut(r->service, sizeof(r->service), service);
	utf8_copy_cut(r->method, sizeof(r->method), method);
	utf8_copy_cut(r->route, sizeof(r->route), route);
	r->minutes = calloc(nslots, sizeof(*r->minutes));
	if (!r->minutes)
		return -ENOMEM;
	slot_init(r->minutes, nslots);
	slot_init(r->seconds, AGG_NOW_SECS);
	for (int i = 0; i < AGG_SPARK; i++)
		r->spark_id[i] = -1;
	return 0;
}

static void route_free(struct route *r, int nslots)
{
	if (!r->minutes)
		return;
	for (int i = 0; i < nslots; i++)
		histogram_free(r->minutes[i].h);
	for (int i = 0; i < AGG_NOW_SECS; i++)
		histogram_free(r->seconds[i].h);
	free(r->minutes);
}

/* Slots of whole minutes, as few per slot as keep them <= LONG_SLOTS_MAX. */
static void long_slots(struct aggregator *a)
{
	int slot_min = (a->o.window_minutes + LONG_SLOTS_MAX - 1) / LONG_SLOTS_MAX;

	a->slot_ns = slot_min * 60 * NS;
	a->nslots = (a->o.window_minutes + slot_min - 1) / slot_min;
}

struct aggregator *aggregator__new(const struct agg_opts *o)
{
	struct aggregator *a = calloc(1, sizeof(*a));

	if (!a)
		return NULL;
	a->o = *o;
	if (a->o.window_minutes <= 0)
		a->o.window_minutes = 15;
	long_slots(a);
	if (a->o.max_errors <= 0)
		a->o.max_errors = 100;
	a->errors = calloc(a->o.max_errors, sizeof(*a->errors));
	if (!a->errors || route_init(&a->total, "", "", "(all)", a->nslots)) {
		free(a->errors);
		free(a);
		errno = ENOMEM;
		return NULL;
	}
	pthread_mutex_init(&a->lock, NULL);
	return a;
}

/* The slot for period `id` in a ring of n, or NULL when `id` is older than
 * what the ring still holds. */
static struct slot *slot_for(struct slot *ring, size_t n, int64_t id)
{
	struct slot *s = &ring[id % n];

	if (s->id > id)
		return NULL;
	if (s->id != id) {
		s->id = id;
		s->count = s->n4xx = s->n5xx = 0;
		if (s->h)
			histogram_reset(s->h);
	}
	if (!s->h)
		s->h = calloc(1, sizeof(*s->h));
	return s;
}

static void slot_add(struct slot *s, const struct request_record *r, double w)
{
	if (!s)
		return;
	s->count += w;
	if (r->status >= 500 && r->status < 600)
		s->n5xx += w;
	else if (r->status >= 400 && r->status < 500)
		s->n4xx += w;
	if (s->h)
		histogram_add(s->h, r->dur_ns, w);
}

static void route_add(struct aggregator *a, struct route *rt, const struct request_record *r,
		      double w)
{
	int64_t sec = r->ts_ns / NS;
	int i = sec % AGG_SPARK;

	slot_add(slot_for(rt->minutes, a->nslots, r->ts_ns / a->slot_ns), r, w);
	slot_add(slot_for(rt->seconds, AGG_NOW_SECS, sec), r, w);
	if (rt->spark_id[i] > sec)
		return;
	if (rt->spark_id[i] != sec) {
		rt->spark_id[i] = sec;
		rt->spark[i] = 0;
	}
	rt->spark[i] += w;
}

/* A new row in `tab` (at most `max`), or NULL without memory. */
static struct route *add_route(struct aggregator *a, struct route **tab, size_t *n,
			       const char *service, const char *method, const char *route)
{
	struct route *rt = calloc(1, sizeof(*rt));

	if (!rt || route_init(rt, service, method, route, a->nslots)) {
		free(rt);
		return NULL;
	}
	tab[(*n)++] = rt;
	return rt;
}

/* Arguments as stored (already cut). */
static struct route *lookup(struct route **tab, size_t n, const char *service, const char *method,
			    const char *route)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(tab[i]->route, route) == 0 && strcmp(tab[i]->method, method) == 0 &&
		    strcmp(tab[i]->service, service) == 0)
			return tab[i];
	return NULL;
}

/* dst becomes a deep copy of src's slots (names included); 0 or -ENOMEM. */
static int route_clone(struct route *dst, const struct route *src, int nslots)
{
	const struct slot *from[2] = { src->minutes, src->seconds };
	int n[2] = { nslots, AGG_NOW_SECS };

	*dst = *src;
	dst->minutes = calloc(nslots, sizeof(*dst->minutes));
	if (!dst->minutes)
		return -ENOMEM;
	for (int i = 0; i < AGG_NOW_SECS; i++)
		dst->seconds[i].h = NULL;
	for (int k = 0; k < 2; k++) {
		struct slot *to = k ? dst->seconds : dst->minutes;

		for (int i = 0; i < n[k]; i++) {
			to[i] = from[k][i];
			to[i].h = NULL;
			if (!from[k][i].h)
				continue;
			to[i].h = calloc(1, sizeof(*to[i].h));
			if (!to[i].h || histogram_merge(to[i].h, from[k][i].h)) {
				route_free(dst, nslots);
				dst->minutes = NULL;
				return -ENOMEM;
			}
		}
	}
	return 0;
}

/* The sole service so far gets its own slots: a copy of the total's. */
static int unshare_solo(struct aggregator *a)
{
	struct route *rt = a->services[0], copy;

	if (route_clone(&copy, &a->total, a->nslots))
		return -ENOMEM;
	memcpy(copy.service, rt->service, sizeof(copy.service));
	*rt = copy;
	a->solo = false;
	return 0;
}

/* The service's row; past AGG_SERVICE_MAX - 1 services, "(other)"'s (the
 * last slot is kept for it so it can always be created). */
static struct route *find_service(struct aggregator *a, const char *service_in)
{
	char service[sizeof(((struct route *)0)->service)];
	struct route *rt;

	utf8_copy_cut(service, sizeof(service), service_in);
	rt = lookup(a->services, a->nservices, service, "", "(all)");
	if (rt)
		return rt;
	if (a->nservices == 0) {
		rt = calloc(1, sizeof(*rt));
		if (!rt)
			return NULL;
		memcpy(rt->service, service, sizeof(service));
		strcpy(rt->route, "(all)");
		a->services[a->nservices++] = rt;
		a->solo = true;
		return rt;
	}
	if (a->solo && unshare_solo(a))
		return NULL;
	if (a->nservices >= AGG_SERVICE_MAX - 1 || strcmp(service, AGG_OTHER) == 0) {
		rt = lookup(a->services, a->nservices, AGG_OTHER, "", "(all)");
		return rt ? rt : add_route(a, a->services, &a->nservices, AGG_OTHER, "", "(all)");
	}
	return add_route(a, a->services, &a->nservices, service, "", "(all)");
}

/* The row of (service, method, route); past AGG_ROUTE_MAX - 1 rows, the
 * service's ("*", "(other)") row. */
static struct route *find_route(struct aggregator *a, const char *service, const char *method_in,
				const char *route_in)
{
	char method[sizeof(((struct route *)0)->method)], route[sizeof(((struct route *)0)->route)];
	struct route *rt;

	/* Compare as stored: cut the same way. */
	utf8_copy_cut(method, sizeof(method), method_in);
	utf8_copy_cut(route, sizeof(route), route_in);
	rt = lookup(a->routes, a->nroutes, service, method, route);
	if (rt)
		return rt;
	if (a->nordinary < AGG_ROUTE_MAX - 1 && strcmp(route, AGG_OTHER) != 0) {
		rt = add_route(a, a->routes, &a->nroutes, service, method, route);
		a->nordinary += rt != NULL;
		return rt;
	}
	rt = lookup(a->routes, a->nroutes, service, "*", AGG_OTHER);
	return rt ? rt : add_route(a, a->routes, &a->nroutes, service, "*", AGG_OTHER);
}

static void note_error(struct aggregator *a, const struct request_record *r)
{
	struct agg_error *e = &a->errors[a->err_head];

	memset(e, 0, sizeof(*e));
	e->time_unix_ns = r->time_unix_ns;
	utf8_copy_cut(e->method, sizeof(e->method), r->has_method ? r->method : "?");
	utf8_copy_cut(e->route, sizeof(e->route), r->route);
	utf8_copy_cut(e->service, sizeof(e->service), r->meta.service_name);
	e->status = r->status;
	if (r->has_exception_type)
		snprintf(e->exception_type, sizeof(e->exception_type), "%.63s", r->exception_type);
	a->err_head = (a->err_head + 1) % a->o.max_errors;
	if (a->nerrors < (size_t)a->o.max_errors)
		a->nerrors++;
	a->errors_total++;
}

void aggregator__push(struct aggregator *a, const struct request_record *r)
{
	double w = r->sample_rate > 0 && r->sample_rate <= 1 ? 1.0 / r->sample_rate : 1.0;
	struct route *svc, *rt;

	pthread_mutex_lock(&a->lock);
	/* Before the total counts r: a second service copies the total. */
	svc = find_service(a, r->meta.service_name);
	route_add(a, &a->total, r, w);
	if (svc && !a->solo)
		route_add(a, svc, r, w);
	/* Keyed by the service's bucket: a folded service's rows are "(other)"'s. */
	rt = svc ? find_route(a, svc->service, r->has_method ? r->method : "?",
			      r->route_matched && r->route[0] ? r->route : REQ_UNMATCHED)
		 : NULL;
	if (rt)
		route_add(a, rt, r, w);
	if (r->error || r->status >= 500)
		note_error(a, r);
	pthread_mutex_unlock(&a->lock);
}

/* Sums the slots of `rt` inside the window ending at now into `row`. */
static void fill_row(struct aggregator *a, struct route *rt, enum agg_window win, uint64_t now,
		     double secs, struct histogram *h, struct agg_row *row)
{
	bool longw = win == AGG_WINDOW_LONG;
	size_t n = longw ? (size_t)a->nslots : AGG_NOW_SECS;
	struct slot *ring = longw ? rt->minutes : rt->seconds;
	int64_t cur = longw ? now / a->slot_ns : now / NS;
	double n4 = 0, n5 = 0;
	int64_t sec = now / NS;

	memset(row, 0, sizeof(*row));
	memcpy(row->service, rt->service, sizeof(row->service));
	memcpy(row->method, rt->method, sizeof(row->method));
	memcpy(row->route, rt->route, sizeof(row->route));
	histogram_reset(h);
	for (size_t i = 0; i < n; i++) {
		struct slot *s = &ring[i];

		if (s->id < 0 || s->id > cur || s->id <= cur - (int64_t)n)
			continue;
		row->count += s->count;
		n4 += s->n4xx;
		n5 += s->n5xx;
		if (s->h)
			histogram_merge(h, s->h);
	}
	row->rps = row->count / secs;
	row->pct_4xx = row->count > 0 ? 100.0 * n4 / row->count : 0;
	row->pct_5xx = row->count > 0 ? 100.0 * n5 / row->count : 0;
	row->p50_ns = histogram_percentile(h, 0.50);
	row->p95_ns = histogram_percentile(h, 0.95);
	row->p99_ns = histogram_percentile(h, 0.99);
	row->max_ns = h->max_ns;
	for (int i = 0; i < AGG_SPARK; i++) {
		int64_t want = sec - (AGG_SPARK - 1) + i;
		int k = ((want % AGG_SPARK) + AGG_SPARK) % AGG_SPARK;

		row->spark[i] = rt->spark_id[k] == want ? rt->spark[k] : 0;
	}
}

/* Seconds covered by the window at `now`: the partial current period plus
 * the full ones before it, cut to the time since observation began. */
static double covered_secs(struct aggregator *a, enum agg_window win, uint64_t now)
{
	uint64_t period = win == AGG_WINDOW_LONG ? a->slot_ns : NS;
	size_t n = win == AGG_WINDOW_LONG ? (size_t)a->nslots : AGG_NOW_SECS;
	uint64_t span = (n - 1) * period + now % period;
	uint64_t since = now > a->o.start_ns ? now - a->o.start_ns : 0;

	if (since < span)
		span = since;
	return span < NS ? 1.0 : (double)span / NS;
}

int aggregator__snapshot(struct aggregator *a, enum agg_window win, uint64_t now,
			 struct agg_snapshot *out)
{
	struct histogram *h = calloc(1, sizeof(*h));
	int err = 0;

	memset(out, 0, sizeof(*out));
	if (!h)
		return -ENOMEM;
	pthread_mutex_lock(&a->lock);
	out->window = win;
	out->window_secs = covered_secs(a, win, now);
	out->rows = calloc(a->nroutes ? a->nroutes : 1, sizeof(*out->rows));
	out->services = calloc(a->nservices ? a->nservices : 1, sizeof(*out->services));
	out->errors = calloc(a->o.max_errors, sizeof(*out->errors));
	if (!out->rows || !out->services || !out->errors) {
		err = -ENOMEM;
		goto unlock;
	}
	fill_row(a, &a->total, win, now, out->window_secs, h, &out->total);
	for (size_t i = 0; i < a->nroutes; i++) {
		fill_row(a, a->routes[i], win, now, out->window_secs, h, &out->rows[out->nrows]);
		if (out->rows[out->nrows].count > 0)
			out->nrows++;
	}
	for (size_t i = 0; i < a->nservices; i++) {
		struct agg_row *row = &out->services[out->nservices];

		fill_row(a, a->solo ? &a->total : a->services[i], win, now, out->window_secs, h,
			 row);
		memcpy(row->service, a->services[i]->service, sizeof(row->service));
		if (row->count > 0)
			out->nservices++;
	}
	for (size_t i = 0; i < a->nerrors; i++) {
		size_t k = (a->err_head + a->o.max_errors - 1 - i) % a->o.max_errors;

		out->errors[out->nerrors++] = a->errors[k];
	}
	out->errors_total = a->errors_total;
unlock:
	pthread_mutex_unlock(&a->lock);
	histogram_free(h);
	if (err)
		aggregator__snapshot_free(out);
	return err;
}

static size_t route_bytes(const struct route *rt, int nslots)
{
	size_t n = sizeof(*rt) + nslots * sizeof(*rt->minutes);

	for (int i = 0; i < nslots; i++)
		n += rt->minutes[i].h ? histogram_bytes(rt->minutes[i].h) : 0;
	for (int i = 0; i < AGG_NOW_SECS; i++)
		n += rt->seconds[i].h ? histogram_bytes(rt->seconds[i].h) : 0;
	return n;
}

size_t aggregator__bytes(struct aggregator *a)
{
	size_t n;

	pthread_mutex_lock(&a->lock);
	n = sizeof(*a) + a->o.max_errors * sizeof(*a->errors) + route_bytes(&a->total, a->nslots);
	for (size_t i = 0; i < a->nroutes; i++)
		n += route_bytes(a->routes[i], a->nslots);
	for (size_t i = 0; i < a->nservices; i++)
		n += a->solo ? sizeof(*a->services[i]) : route_bytes(a->services[i], a->nslots);
	pthread_mutex_unlock(&a->lock);
	return n;
}

void aggregator__snapshot_free(struct agg_snapshot *s)
{
	free(s->rows);
	free(s->services);
	free(s->errors);
	s->rows = NULL;
	s->services = NULL;
	s->errors = NULL;
	s->nrows = s->nservices = s->nerrors = 0;
}

void aggregator__free(struct aggregator *a)
{
	if (!a)
		return;
	route_free(&a->total, a->nslots);
	for (size_t i = 0; i < a->nroutes; i++) {
		route_free(a->routes[i], a->nslots);
		free(a->routes[i]);
	}
	for (size_t i = 0; i < a->nservices; i++) {
		route_free(a->services[i], a->nslots);
		free(a->services[i]);
	}
	pthread_mutex_destroy(&a->lock);
	free(a->errors);
	free(a);
}
