// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * What the profile tells: hot functions per route (a function counts once
 * per stack however deep it recurses), routes in order of wall time, and the
 * JSONL "PROFILE" record that carries both.  Every sum is taken over the
 * (route, stack) cells under the profile's lock.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "jsonl.h"
#include "profile_impl.h"

struct func_acc {
	struct htab names;
	struct profile_hot *v;
};

static struct profile_hot *func_slot(struct func_acc *a, const char *func)
{
	int added;
	long id = intern_add_vals(&a->names, func, strlen(func), (void **)&a->v, sizeof(*a->v),
				  &added);

	if (id < 0)
		return NULL;
	if (added)
		snprintf(a->v[id].function, sizeof(a->v[id].function), "%s", func);
	return &a->v[id];
}

static int by_total(const void *a, const void *b)
{
	const struct profile_hot *x = a, *y = b;
	/* Self time first (on-CPU and blocked, as shares of wall time): what a
	 * route's own code does, not the framework frames every stack has. */
	double kx = x->own_wall_pct, ky = y->own_wall_pct;

	if (kx == ky) {
		kx = x->total_wall_pct;
		ky = y->total_wall_pct;
	}
	return kx < ky ? 1 : kx > ky ? -1 : strcmp(x->function, y->function);
}

/* Adds a cell's weights to the functions of its stack. */
static void hot_cell(struct profile *p, struct func_acc *a, const struct cell *cl, uint32_t stack)
{
	uint32_t seen[PBPF_STACK_MAX + 3];
	size_t depth, nseen = 0;
	const uint32_t *ids = stacks__ids(p, stack, &depth);

	for (size_t i = 0; i < depth; i++) {
		struct profile_hot *h = func_slot(a, p->frame_v[ids[i]].func);
		int dup = 0;

		if (!h)
			continue;
		for (size_t k = 0; k < nseen; k++)
			dup |= seen[k] == (uint32_t)(h - a->v);
		if (i + 1 == depth) {
			h->own_samples += cl->samples;
			h->offcpu_own_ns += cl->offcpu_ns;
		}
		if (dup)
			continue; /* recursion: count a function once per stack */
		seen[nseen++] = h - a->v;
		h->total_samples += cl->samples;
		h->offcpu_ns += cl->offcpu_ns;
	}
}

size_t profile__hot(struct profile *p, const char *route_key, struct profile_hot *out, size_t max)
{
	struct func_acc a = { 0 };
	double route_samples = 0, route_wall = 0;
	long want = -1;
	size_t n = 0;

	pthread_mutex_lock(&p->lock);
	if (route_key && (want = stacks__find_route(p, route_key)) < 0)
		goto out;
	for (size_t c = 0; c < p->cells.n; c++) {
		const struct cell *cl = &p->cell_v[c];
		uint32_t route, stack;

		stacks__cell_key(p, c, &route, &stack);
		if (want >= 0 && route != (uint32_t)want)
			continue;
		route_samples += cl->samples;
		route_wall += profile_wall_s(p, cl->samples, cl->offcpu_ns);
		hot_cell(p, &a, cl, stack);
	}
	for (size_t i = 0; i < a.names.n; i++) {
		struct profile_hot *h = &a.v[i];

		h->own_pct = route_samples ? 100 * h->own_samples / route_samples : 0;
		h->total_pct = route_samples ? 100 * h->total_samples / route_samples : 0;
		h->own_wall_pct =
			route_wall ? 100 * profile_wall_s(p, h->own_samples, h->offcpu_own_ns) /
					     route_wall
				   : 0;
		h->total_wall_pct =
			route_wall ? 100 * profile_wall_s(p, h->total_samples, h->offcpu_ns) /
					     route_wall
				   : 0;
	}
	if (!a.v)
		goto out; /* no samples in scope */
	qsort(a.v, a.names.n, sizeof(*a.v), by_total);
	n = a.names.n < max ? a.names.n : max;
	memcpy(out, a.v, n * sizeof(*out));
out:
	pthread_mutex_unlock(&p->lock);
	intern_free(&a.names);
	free(a.v);
	return n;
}

static int by_weight(const void *a, const void *b, void *weights)
{
	const double *w = weights;
	double x = w[*(const size_t *)a], y = w[*(const size_t *)b];

	return x < y ? 1 : x > y ? -1 : 0;
}

size_t profile__routes(struct profile *p, char (*out)[300], size_t max)
{
	size_t n = 0, *order;
	double *w;

	pthread_mutex_lock(&p->lock);
	order = calloc(p->routes.n + 1, sizeof(*order));
	w = calloc(p->routes.n + 1, sizeof(*w));
	if (order && w) {
		/* Most time first: on-CPU samples at -F and blocked time, as wall time. */
		for (size_t c = 0; c < p->cells.n; c++) {
			uint32_t r, st;

			stacks__cell_key(p, c, &r, &st);
			w[r] += profile_wall_s(p, p->cell_v[c].samples, p->cell_v[c].offcpu_ns);
		}
		for (size_t r = 0; r < p->routes.n; r++)
			order[r] = r;
		qsort_r(order, p->routes.n, sizeof(*order), by_weight, w);
		for (size_t i = 0; i < p->routes.n && n < max; i++)
			snprintf(out[n++], 300, "%s", p->routes.keys[order[i]]);
	}
	pthread_mutex_unlock(&p->lock);
	free(order);
	free(w);
	return n;
}

/* JSON string literals come from the JSONL encoder's escaper.  At buf[o];
 * returns the new length, or len when it did not fit (the caller checks). */
static size_t json_str(char *buf, size_t len, size_t o, const char *s)
{
	int r = o < len ? jsonl_put_string(buf, len, o, s) : -ENOSPC;

	return r < 0 ? len : (size_t)r;
}

/* Sums of a route's cells. */
static void route_totals(struct profile *p, long route, double *samples, double *offcpu)
{
	*samples = *offcpu = 0;
	for (size_t c = 0; c < p->cells.n; c++) {
		uint32_t r, s;

		stacks__cell_key(p, c, &r, &s);
		if ((long)r == route) {
			*samples += p->cell_v[c].samples;
			*offcpu += p->cell_v[c].offcpu_ns;
		}
	}
}

int profile__jsonl(struct profile *p, const char *route_key, uint64_t ts_ns,
		   int64_t realtime_offset_ns, char *buf, size_t len)
{
	struct profile_hot hot[10];
	double samples, offcpu;
	size_t n, o = 0;
	const char *sp = strchr(route_key, ' ');
	long r = -1;
	int w;

	pthread_mutex_lock(&p->lock);
	if ((r = stacks__find_route(p, route_key)) >= 0)
		route_totals(p, r, &samples, &offcpu);
	pthread_mutex_unlock(&p->lock);
	if (r < 0)
		return -ENOENT;
	n = profile__hot(p, route_key, hot, 10);
	/* "METHOD route" keys; pseudo routes like "(outside a request)" have no method. */
	w = snprintf(buf, len,
		     "{\"kind\":\"PROFILE\",\"schema_version\":1,\"ts_ns\":%llu,"
		     "\"time_unix_ns\":%llu,\"method\":",
		     (unsigned long long)ts_ns, (unsigned long long)(ts_ns + realtime_offset_ns));
	o = w > 0 ? (size_t)w : 0;
	if (sp && route_key[0] != '(') {
		char method[64];

		snprintf(method, sizeof(method), "%.*s", (int)(sp - route_key), route_key);
		o = json_str(buf, len, o, method);
		o += snprintf(buf + o, o < len ? len - o : 0, ",\"route\":");
	} else
		o += snprintf(buf + o, o < len ? len - o : 0, "null,\"route\":");
	o = json_str(buf, len, o, sp && route_key[0] != '(' ? sp + 1 : route_key);
	o += snprintf(buf + o, o < len ? len - o : 0,
		      ",\"samples\":%.0f,\"sample_hz\":%d,"
		      "\"offcpu_ns\":%.0f,\"functions\":[",
		      samples, p->o.sample_hz, offcpu);
	for (size_t i = 0; i < n && o < len; i++) {
		o += snprintf(buf + o, o < len ? len - o : 0, "%s{\"function\":", i ? "," : "");
		o = json_str(buf, len, o, hot[i].function);
		o += snprintf(buf + o, o < len ? len - o : 0,
			      ",\"own_pct\":%.2f,\"total_pct\":%.2f,\"own_samples\":%.0f,"
			      "\"total_samples\":%.0f,\"offcpu_own_ns\":%.0f,\"offcpu_ns\":%.0f,"
			      "\"own_wall_pct\":%.2f,\"total_wall_pct\":%.2f}",
			      hot[i].own_pct, hot[i].total_pct, hot[i].own_samples,
			      hot[i].total_samples, hot[i].offcpu_own_ns, hot[i].offcpu_ns,
			      hot[i].own_wall_pct, hot[i].total_wall_pct);
	}
	o += snprintf(buf + o, o < len ? len - o : 0, "]}\n");
	return o < len ? (int)o : -ENOSPC;
}
