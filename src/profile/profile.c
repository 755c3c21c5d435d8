// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The profile's life cycle and the request join.  Samples wait in `pending`
 * under their request's key (pid, tid, start) until its record arrives.  The
 * ring buffer is FIFO and the request sink flushes the stack queue before it
 * hands a batch on (pipeline_sink), so a request's samples are here before
 * its record: none is missed.  Those that wait longer than pending_ns go to
 * PROF_UNRECORDED.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "profile_impl.h"
#include "safefile.h"
#include "symbols.h"

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
			stacks__credit(p, PROF_UNRECORDED, stack, e->kind == PBPF_EV_OFFCPU,
				       e->offcpu_ns);
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
	stack = stacks__intern(p, e, now);
	if (stack < 0)
		p->st.dropped++;
	else if (!e->req_start_ns)
		stacks__credit(p, PROF_OUTSIDE, stack, e->kind == PBPF_EV_OFFCPU, e->offcpu_ns);
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
			stacks__credit(p, key, q->stack, q->offcpu, q->offcpu_ns);
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

		/* Stacks arrive on their own thread, stamped with its clock: one
		 * may be newer than this tick's `now`, and is not overdue (the
		 * unsigned difference read it as 584 years old). */
		if (now > q->arrived_ns && now - q->arrived_ns > p->o.pending_ns)
			stacks__credit(p, PROF_UNRECORDED, q->stack, q->offcpu, q->offcpu_ns);
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

int profile_write(struct profile *p, const char *path, void (*body)(struct profile *p, FILE *f))
{
	struct safefile_out out;
	int err = safefile_begin(&out, path);

	if (err)
		return err;
	pthread_mutex_lock(&p->lock);
	body(p, out.f);
	pthread_mutex_unlock(&p->lock);
	return safefile_commit(&out);
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
	/* Before intern_free, which zeroes the count. */
	for (size_t i = 0; i < p->frames.n; i++)
		free(p->frame_v[i].str);
	intern_free(&p->frames);
	intern_free(&p->stacks);
	intern_free(&p->routes);
	intern_free(&p->cells);
	free(p->frame_v);
	free(p->cell_v);
	free(p->pend);
	pthread_mutex_destroy(&p->lock);
	free(p);
}
