// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Interning all the way down: frames (qualname, file, line), stacks (frame
 * id arrays, root first), routes and (route, stack) cells get small ids
 * through one tiny hash table type, so a sample costs a few lookups and the
 * cells stay compact.  Every table has a cap; past it, new keys share the
 * "(other)" key of their kind (profile.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "profile_impl.h"
#include "symbols.h"

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
	long id = intern_find(&p->frames, key, len);
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
	id = interned(p, intern_add_vals(&p->frames, key, len, (void **)&p->frame_v,
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
	long id = intern_find(&p->stacks, ids, n * sizeof(ids[0]));
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
	return interned(p, intern_add(&p->stacks, ids, n * sizeof(ids[0]), &added));
}

long stacks__intern(struct profile *p, const struct pbpf_stack_event *e, uint64_t now)
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

/* Pseudo routes ("(...)") always get their own key; past PROF_ROUTE_MAX
 * request routes, new ones share PROF_OTHER. */
static long intern_route(struct profile *p, const char *key)
{
	long id = intern_find(&p->routes, key, strlen(key) + 1);
	int added;

	if (id >= 0)
		return id;
	if (key[0] != '(' && p->nreq_routes >= PROF_ROUTE_MAX) {
		p->st.capped++;
		return intern_route(p, PROF_OTHER);
	}
	id = interned(p, intern_add(&p->routes, key, strlen(key) + 1, &added));
	p->nreq_routes += id >= 0 && key[0] != '(';
	return id;
}

/* Past PROF_CELL_MAX (route, stack) pairs, new ones add to the pair
 * ((other), PROF_OTHER_STACK). */
static struct cell *cell_for(struct profile *p, long route, long stack)
{
	uint32_t key[2] = { route, stack };
	long id = intern_find(&p->cells, key, sizeof(key));
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
	id = interned(p, intern_add_vals(&p->cells, key, sizeof(key), (void **)&p->cell_v,
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

void stacks__credit(struct profile *p, const char *route, uint32_t stack, int offcpu,
		    uint64_t offcpu_ns)
{
	long r = intern_route(p, route);

	if (r >= 0)
		add_cell(p, r, stack, offcpu ? 0 : 1, offcpu ? (double)offcpu_ns : 0);
	else
		p->st.dropped++;
}

long stacks__find_route(const struct profile *p, const char *route_key)
{
	return intern_find(&p->routes, route_key, strlen(route_key) + 1);
}

const uint32_t *stacks__ids(const struct profile *p, uint32_t stack, size_t *n)
{
	*n = p->stacks.lens[stack] / sizeof(uint32_t);
	return (const uint32_t *)p->stacks.keys[stack];
}

void stacks__cell_key(const struct profile *p, size_t cell, uint32_t *route, uint32_t *stack)
{
	const uint32_t *k = (const uint32_t *)p->cells.keys[cell];

	*route = k[0];
	*stack = k[1];
}
