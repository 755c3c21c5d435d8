// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Interning all the way down: frames (qualname, file, line), stacks (frame
 * id arrays, root first) and routes get small ids through one tiny hash
 * table type, so a sample costs a few lookups and the per-(route, stack)
 * cells stay compact.  Samples wait in `pending` under their request's key
 * (pid, tid, start) until its record arrives; the ring buffer is FIFO and
 * records reach us later through the collector, so none is missed.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "export_jsonl.h"
#include "intern.h"
#include "profile.h"
#include "safefile.h"
#include "symbols.h"

/* ---- the profile ---- */
struct frame {	    /* four strings in one allocation (str) */
	char *name; /* "qualname (file:line)" */
	char *func; /* "qualname (basename)": what hot functions group by */
	char *file;
	char *qualname;
	int line;
	char *str;
};

struct cell {
	double samples, offcpu_ns;
};

struct pending {
	uint64_t key[2]; /* pid << 32 | tid, start */
	uint32_t stack;
	int offcpu;
	uint64_t offcpu_ns, arrived_ns;
};

struct profile {
	struct profile_opts o;
	pthread_mutex_t lock;
	struct symbols *syms;
	struct htab frames, stacks, routes, cells;
	struct frame *frame_v;
	struct cell *cell_v;
	struct pending *pend;
	size_t npend, cappend;
	size_t nreq_routes; /* "METHOD route" keys, pseudo routes not counted */
	uint64_t next_prune_ns;
	struct profile_stats st;
};

/* On-CPU samples and blocked time in one unit: seconds of wall time. */
static double wall_s(const struct profile *p, double samples, double offcpu_ns)
{
	return samples / p->o.sample_hz + offcpu_ns / 1e9;
}

/* "qualname (file:line)" and the rest, in one allocation; NULL when out of memory. */
static char *frame_strings(struct frame *f, const struct pyframe_sym *s)
{
	const char *base = strrchr(s->file, '/');
	char name[300], func[300];
	size_t ln, lf, lq, lp;
	char *str;

	base = base ? base + 1 : s->file;
	if (!s->file[0]) { /* pseudo frames: [no GIL], [truncated], ... */
		snprintf(name, sizeof(name), "%.200s", s->qualname);
		snprintf(func, sizeof(func), "%.200s", s->qualname);
	} else {
		snprintf(name, sizeof(name), "%.200s (%.80s:%d)", s->qualname, base, s->line);
		snprintf(func, sizeof(func), "%.200s (%.80s)", s->qualname, base);
	}
	ln = strlen(name) + 1;
	lf = strlen(func) + 1;
	lq = strnlen(s->qualname, 255) + 1;
	lp = strnlen(s->file, 255) + 1;
	if (!(str = malloc(ln + lf + lq + lp)))
		return NULL;
	f->str = str;
	f->name = memcpy(str, name, ln);
	f->func = memcpy(str + ln, func, lf);
	f->qualname = str + ln + lf;
	snprintf(f->qualname, lq, "%s", s->qualname);
	f->file = str + ln + lf + lq;
	snprintf(f->file, lp, "%s", s->file);
	f->line = s->line;
	return str;
}

/* A failed intern: out of memory is counted here, a full table by the caller. */
static long interned(struct profile *p, long id)
{
	if (id == -ENOMEM)
		p->st.oom++;
	return id;
}

/* Pseudo frames (no file) are never refused for the cap: there are a handful. */
static long intern_frame(struct profile *p, const struct pyframe_sym *s)
{
	char key[600];
	int added, n = snprintf(key, sizeof(key), "%s\n%s\n%d", s->qualname, s->file, s->line);
	size_t len = n < (int)sizeof(key) ? (size_t)n : sizeof(key) - 1;
	long id = ht_find(&p->frames, key, len);
	struct frame f;

	if (id >= 0)
		return id;
	if (s->file[0] && p->frames.n >= PROF_FRAME_MAX - PROF_PSEUDO_FRAMES) {
		struct pyframe_sym other = { .qualname = PROF_OTHER_FRAME, .file = "" };

		p->st.capped++;
		return intern_frame(p, &other);
	}
	if (!frame_strings(&f, s))
		return interned(p, -ENOMEM);
	id = interned(p, ht_intern_vals(&p->frames, key, len, (void **)&p->frame_v,
					sizeof(*p->frame_v), &added));
	if (id < 0)
		free(f.str);
	else
		p->frame_v[id] = f;
	return id;
}

static long pseudo_frame(struct profile *p, const char *name)
{
	struct pyframe_sym s = { .qualname = name, .file = "", .line = 0 };

	return intern_frame(p, &s);
}

/* A stack id for `ids`; past PROF_STACK_MAX stacks, new ones share the
 * one-frame stack PROF_OTHER_STACK (one slot kept for it). */
static long stack_id(struct profile *p, const uint32_t *ids, int n)
{
	long id = ht_find(&p->stacks, ids, n * sizeof(ids[0]));
	uint32_t other;
	int added;

	if (id >= 0)
		return id;
	if (p->stacks.n >= PROF_STACK_MAX - 1) {
		p->st.capped++;
		if ((id = pseudo_frame(p, PROF_OTHER_STACK)) < 0)
			return id;
		other = id;
		ids = &other;
		n = 1;
	}
	return interned(p, ht_intern(&p->stacks, ids, n * sizeof(ids[0]), &added));
}

/* Symbolizes an event into a stack id (frames root first). */
static long intern_stack(struct profile *p, const struct pbpf_stack_event *e, uint64_t now)
{
	uint32_t ids[PBPF_STACK_MAX + 3]; /* [no GIL], [truncated], frames */
	struct interp_desc d;
	int n = 0, have_desc = e->depth && !interps__get(p->o.interps, e->desc_id, &d);
	long id;

	if (e->cls == PBPF_CLASS_NO_PYTHON ||
	    (e->cls == PBPF_CLASS_NO_GIL && e->kind == PBPF_EV_SAMPLE)) {
		id = pseudo_frame(p, e->cls == PBPF_CLASS_NO_PYTHON ? "[no Python]" : "[no GIL]");
		if (id < 0)
			return id;
		ids[n++] = id;
	}
	if (e->truncated && (id = pseudo_frame(p, "[truncated]")) >= 0)
		ids[n++] = id;
	for (int i = (e->depth < PBPF_STACK_MAX ? e->depth : PBPF_STACK_MAX) - 1; i >= 0; i--) {
		struct pyframe_sym s;

		symbols__resolve(p->syms, have_desc ? &d : NULL, e->pid, e->code[i], e->instr[i],
				 now, &s);
		if (s.shim)
			continue; /* 3.13's __init__ clean-up: not the app's code */
		if (s.line < 0 && strcmp(s.qualname, "<unknown>") == 0)
			p->st.unknown_frames++;
		id = intern_frame(p, &s);
		if (id < 0)
			return id;
		ids[n++] = id;
	}
	/* The GIL holder between two Python frames (interpreter start-up, a
	 * thread's first bytecode): counted, under its own name. */
	if (n == 0 && (id = pseudo_frame(p, "[no Python frames]")) >= 0)
		ids[n++] = id;
	return stack_id(p, ids, n);
}

static long intern_route(struct profile *p, const char *key);

/* Past PROF_CELL_MAX (route, stack) pairs, new ones add to the pair
 * ((other), PROF_OTHER_STACK). */
static struct cell *cell_for(struct profile *p, long route, long stack)
{
	uint32_t key[2] = { route, stack };
	long id = ht_find(&p->cells, key, sizeof(key));
	int added;

	if (id >= 0)
		return &p->cell_v[id];
	if (p->cells.n >= PROF_CELL_MAX - 1) {
		long frame = pseudo_frame(p, PROF_OTHER_STACK);
		uint32_t one = frame;

		p->st.capped++;
		route = intern_route(p, PROF_OTHER);
		stack = frame >= 0 ? stack_id(p, &one, 1) : frame;
		if (route < 0 || stack < 0)
			return NULL;
		key[0] = route;
		key[1] = stack;
	}
	id = interned(p, ht_intern_vals(&p->cells, key, sizeof(key), (void **)&p->cell_v,
					sizeof(*p->cell_v), &added));
	return id >= 0 ? &p->cell_v[id] : NULL;
}

static void add_cell(struct profile *p, long route, long stack, double samples, double off)
{
	struct cell *c = cell_for(p, route, stack);

	if (!c) {
		p->st.dropped++;
		return;
	}
	c->samples += samples;
	c->offcpu_ns += off;
}

/* Pseudo routes ("(...)") always get their own key; past PROF_ROUTE_MAX
 * request routes, new ones share PROF_OTHER. */
static long intern_route(struct profile *p, const char *key)
{
	long id = ht_find(&p->routes, key, strlen(key) + 1);
	int added;

	if (id >= 0)
		return id;
	if (key[0] != '(' && p->nreq_routes >= PROF_ROUTE_MAX) {
		p->st.capped++;
		return intern_route(p, PROF_OTHER);
	}
	id = interned(p, ht_intern(&p->routes, key, strlen(key) + 1, &added));
	p->nreq_routes += id >= 0 && key[0] != '(';
	return id;
}

static void credit(struct profile *p, const char *route, uint32_t stack, int offcpu,
		   uint64_t offcpu_ns)
{
	long r = intern_route(p, route);

	if (r >= 0)
		add_cell(p, r, stack, offcpu ? 0 : 1, offcpu ? (double)offcpu_ns : 0);
	else
		p->st.dropped++;
}

/* Keeps a sample for its request; when PROF_PENDING_MAX wait already, it
 * is given to PROF_UNRECORDED at once (counted). */
static void wait_for_request(struct profile *p, const struct pbpf_stack_event *e, long stack,
			     uint64_t now)
{
	struct pending *q;

	if (p->npend == p->cappend) {
		size_t cap = p->cappend ? p->cappend * 2 : 256;
		struct pending *n = cap <= PROF_PENDING_MAX ? realloc(p->pend, cap * sizeof(*n))
							    : NULL;

		if (!n) {
			p->st.oom += cap <= PROF_PENDING_MAX;
			p->st.capped += cap > PROF_PENDING_MAX;
			credit(p, PROF_UNRECORDED, stack, e->kind == PBPF_EV_OFFCPU, e->offcpu_ns);
			return;
		}
		p->pend = n;
		p->cappend = cap;
	}
	q = &p->pend[p->npend++];
	q->key[0] = (uint64_t)e->pid << 32 | e->tid;
	q->key[1] = e->req_start_ns;
	q->stack = stack;
	q->offcpu = e->kind == PBPF_EV_OFFCPU;
	q->offcpu_ns = e->offcpu_ns;
	q->arrived_ns = now;
}

void profile__push_stack(struct profile *p, const struct pbpf_stack_event *e, uint64_t now)
{
	long stack;

	pthread_mutex_lock(&p->lock);
	if (e->kind == PBPF_EV_SAMPLE) {
		p->st.samples++;
		p->st.no_gil += e->cls == PBPF_CLASS_NO_GIL;
		p->st.no_python += e->cls == PBPF_CLASS_NO_PYTHON;
	} else {
		p->st.offcpu_stacks++;
		p->st.offcpu_ns += e->offcpu_ns;
	}
	p->st.truncated += e->truncated;
	stack = intern_stack(p, e, now);
	if (stack < 0)
		p->st.dropped++;
	else if (!e->req_start_ns)
		credit(p, PROF_OUTSIDE, stack, e->kind == PBPF_EV_OFFCPU, e->offcpu_ns);
	else
		wait_for_request(p, e, stack, now);
	pthread_mutex_unlock(&p->lock);
}

void profile__push_request(struct profile *p, uint32_t pid, uint32_t tid, uint64_t start_ns,
			   const char *method, const char *route)
{
	uint64_t k0 = (uint64_t)pid << 32 | tid;
	char key[300];
	size_t w = 0;

	snprintf(key, sizeof(key), "%s %s", method, route);
	pthread_mutex_lock(&p->lock);
	for (size_t i = 0; i < p->npend; i++) {
		struct pending *q = &p->pend[i];

		if (q->key[0] == k0 && q->key[1] == start_ns)
			credit(p, key, q->stack, q->offcpu, q->offcpu_ns);
		else
			p->pend[w++] = *q;
	}
	p->npend = w;
	pthread_mutex_unlock(&p->lock);
}

void profile__tick(struct profile *p, uint64_t now)
{
	size_t w = 0;

	pthread_mutex_lock(&p->lock);
	for (size_t i = 0; i < p->npend; i++) {
		struct pending *q = &p->pend[i];

		if (now - q->arrived_ns > p->o.pending_ns)
			credit(p, PROF_UNRECORDED, q->stack, q->offcpu, q->offcpu_ns);
		else
			p->pend[w++] = *q;
	}
	p->npend = w;
	/* Exited processes' code objects: a cheap check, once a second. */
	if (now >= p->next_prune_ns) {
		p->next_prune_ns = now + 1000000000ULL;
		p->st.exited_procs += symbols__prune(p->syms);
	}
	pthread_mutex_unlock(&p->lock);
}

static const uint32_t *stack_ids(struct profile *p, uint32_t stack, size_t *n)
{
	*n = p->stacks.lens[stack] / sizeof(uint32_t);
	return (const uint32_t *)p->stacks.keys[stack];
}

static void cell_key(struct profile *p, size_t cell, uint32_t *route, uint32_t *stack)
{
	const uint32_t *k = (const uint32_t *)p->cells.keys[cell];

	*route = k[0];
	*stack = k[1];
}

struct func_acc {
	struct htab names;
	struct profile_hot *v;
};

static struct profile_hot *func_slot(struct func_acc *a, const char *func)
{
	int added;
	long id = ht_intern_vals(&a->names, func, strlen(func), (void **)&a->v, sizeof(*a->v),
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
	const uint32_t *ids = stack_ids(p, stack, &depth);

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

static long find_route(struct profile *p, const char *route_key)
{
	return ht_find(&p->routes, route_key, strlen(route_key) + 1);
}

size_t profile__hot(struct profile *p, const char *route_key, struct profile_hot *out, size_t max)
{
	struct func_acc a = { 0 };
	double route_samples = 0, route_wall = 0;
	long want = -1;
	size_t n = 0;

	pthread_mutex_lock(&p->lock);
	if (route_key && (want = find_route(p, route_key)) < 0)
		goto out;
	for (size_t c = 0; c < p->cells.n; c++) {
		const struct cell *cl = &p->cell_v[c];
		uint32_t route, stack;

		cell_key(p, c, &route, &stack);
		if (want >= 0 && route != (uint32_t)want)
			continue;
		route_samples += cl->samples;
		route_wall += wall_s(p, cl->samples, cl->offcpu_ns);
		hot_cell(p, &a, cl, stack);
	}
	for (size_t i = 0; i < a.names.n; i++) {
		struct profile_hot *h = &a.v[i];

		h->own_pct = route_samples ? 100 * h->own_samples / route_samples : 0;
		h->total_pct = route_samples ? 100 * h->total_samples / route_samples : 0;
		h->own_wall_pct =
			route_wall ? 100 * wall_s(p, h->own_samples, h->offcpu_own_ns) / route_wall
				   : 0;
		h->total_wall_pct =
			route_wall ? 100 * wall_s(p, h->total_samples, h->offcpu_ns) / route_wall
				   : 0;
	}
	if (!a.v)
		goto out; /* no samples in scope */
	qsort(a.v, a.names.n, sizeof(*a.v), by_total);
	n = a.names.n < max ? a.names.n : max;
	memcpy(out, a.v, n * sizeof(*out));
out:
	pthread_mutex_unlock(&p->lock);
	ht_free(&a.names);
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

			cell_key(p, c, &r, &st);
			w[r] += wall_s(p, p->cell_v[c].samples, p->cell_v[c].offcpu_ns);
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

static void put_json_str(FILE *f, const char *s)
{
	char lit[2048]; /* names here are < 400 bytes: 6x escaping fits */

	if (jsonl_put_string(lit, sizeof(lit), 0, s) > 0)
		fputs(lit, f);
	else
		fputs("\"\"", f);
}

int profile__write_folded(struct profile *p, const char *path)
{
	struct safefile_out out;
	FILE *f;
	int err = safefile_begin(&out, path);

	if (err)
		return err;
	f = out.f;
	pthread_mutex_lock(&p->lock);
	for (size_t c = 0; c < p->cells.n; c++) {
		uint32_t route, stack;
		const uint32_t *ids;
		size_t depth;

		if (p->cell_v[c].samples <= 0)
			continue;
		cell_key(p, c, &route, &stack);
		ids = stack_ids(p, stack, &depth);
		/* ';' separates frames and '\n' records: a raw path may hold both. */
		for (const char *r = p->routes.keys[route]; *r; r++)
			fputc(*r == ';' ? ',' : *r == '\n' || *r == '\r' ? ' ' : *r, f);
		for (size_t i = 0; i < depth; i++) {
			/* ';' separates frames in the folded format: keep names clean. */
			fputc(';', f);
			for (const char *s = p->frame_v[ids[i]].name; *s; s++)
				fputc(*s == ';' ? ',' : *s, f);
		}
		fprintf(f, " %.0f\n", p->cell_v[c].samples);
	}
	pthread_mutex_unlock(&p->lock);
	return safefile_commit(&out);
}

static void speedscope_profile(struct profile *p, FILE *f, size_t route, int offcpu, int *first)
{
	double total = 0;
	int any = 0;

	for (size_t c = 0; c < p->cells.n; c++) {
		uint32_t r, s;

		cell_key(p, c, &r, &s);
		if (r == route && (offcpu ? p->cell_v[c].offcpu_ns : p->cell_v[c].samples) > 0)
			any = 1;
	}
	if (!any)
		return;
	fprintf(f, "%s{\"type\":\"sampled\",\"name\":", *first ? "" : ",");
	*first = 0;
	{
		char name[400];

		snprintf(name, sizeof(name), "%s (%s)", p->routes.keys[route],
			 offcpu ? "off-CPU" : "on-CPU");
		put_json_str(f, name);
	}
	fprintf(f, ",\"unit\":\"%s\",\"startValue\":0,\"samples\":[",
		offcpu ? "nanoseconds" : "none");
	for (size_t c = 0, k = 0; c < p->cells.n; c++) {
		uint32_t r, s;
		const uint32_t *ids;
		size_t depth;

		cell_key(p, c, &r, &s);
		if (r != route || (offcpu ? p->cell_v[c].offcpu_ns : p->cell_v[c].samples) <= 0)
			continue;
		ids = stack_ids(p, s, &depth);
		fprintf(f, "%s[", k++ ? "," : "");
		for (size_t i = 0; i < depth; i++)
			fprintf(f, "%s%u", i ? "," : "", ids[i]);
		fputc(']', f);
	}
	fputs("],\"weights\":[", f);
	for (size_t c = 0, k = 0; c < p->cells.n; c++) {
		uint32_t r, s;
		double w;

		cell_key(p, c, &r, &s);
		w = offcpu ? p->cell_v[c].offcpu_ns : p->cell_v[c].samples;
		if (r != route || w <= 0)
			continue;
		fprintf(f, "%s%.0f", k++ ? "," : "", w);
		total += w;
	}
	fprintf(f, "],\"endValue\":%.0f}", total);
}

int profile__write_speedscope(struct profile *p, const char *path)
{
	struct safefile_out out;
	int first = 1;
	FILE *f;
	int err = safefile_begin(&out, path);

	if (err)
		return err;
	f = out.f;
	pthread_mutex_lock(&p->lock);
	fputs("{\"$schema\":\"https://www.speedscope.app/file-format-schema.json\","
	      "\"name\":\"profilis-bpf\",\"exporter\":\"profilis-bpf\",\"activeProfileIndex\":0,"
	      "\"shared\":{\"frames\":[",
	      f);
	for (size_t i = 0; i < p->frames.n; i++) {
		const struct frame *fr = &p->frame_v[i];

		fputs(i ? ",{\"name\":" : "{\"name\":", f);
		put_json_str(f, fr->qualname);
		if (fr->file[0]) {
			fputs(",\"file\":", f);
			put_json_str(f, fr->file);
			if (fr->line > 0)
				fprintf(f, ",\"line\":%d", fr->line);
		}
		fputc('}', f);
	}
	fputs("]},\"profiles\":[", f);
	for (size_t r = 0; r < p->routes.n; r++) {
		speedscope_profile(p, f, r, 0, &first);
		speedscope_profile(p, f, r, 1, &first);
	}
	fputs("]}\n", f);
	pthread_mutex_unlock(&p->lock);
	return safefile_commit(&out);
}

/* Sums of a route's cells. */
static void route_totals(struct profile *p, long route, double *samples, double *offcpu)
{
	*samples = *offcpu = 0;
	for (size_t c = 0; c < p->cells.n; c++) {
		uint32_t r, s;

		cell_key(p, c, &r, &s);
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
	if ((r = find_route(p, route_key)) >= 0)
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

void profile__stats(struct profile *p, struct profile_stats *out)
{
	pthread_mutex_lock(&p->lock);
	*out = p->st;
	out->pending = p->npend;
	out->routes = p->nreq_routes;
	out->frames = p->frames.n;
	out->stacks = p->stacks.n;
	out->cells = p->cells.n;
	out->symbols = symbols__cached(p->syms);
	pthread_mutex_unlock(&p->lock);
}

struct profile *profile__new(const struct profile_opts *o)
{
	struct profile *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->o = *o;
	if (!p->o.pending_ns)
		p->o.pending_ns = 10000000000ULL;
	if (p->o.sample_hz <= 0)
		p->o.sample_hz = PROF_DEFAULT_HZ;
	p->syms = symbols__new();
	if (!p->syms) {
		free(p);
		return NULL;
	}
	pthread_mutex_init(&p->lock, NULL);
	return p;
}

void profile__free(struct profile *p)
{
	if (!p)
		return;
	symbols__free(p->syms);
	/* Before ht_free, which zeroes the count. */
	for (size_t i = 0; i < p->frames.n; i++)
		free(p->frame_v[i].str);
	ht_free(&p->frames);
	ht_free(&p->stacks);
	ht_free(&p->routes);
	ht_free(&p->cells);
	free(p->frame_v);
	free(p->cell_v);
	free(p->pend);
	pthread_mutex_destroy(&p->lock);
	free(p);
}
