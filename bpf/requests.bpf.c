// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Request spans from Flask, four uprobe traps per request: Flask pushes and
 * pops its request context through PyContextVar_Set / PyContextVar_Reset on
 * the ContextVar "flask.request_ctx".  The Set records the start time keyed
 * by (thread, RequestContext); the Reset finds the Flask.wsgi_app frame and
 * reads method, path, traceparent, route, endpoint, status and exception
 * from its locals, then emits one record.  See DESIGN.md §4.
 *
 * What stays the same from one request to the next is learned once per
 * process (struct pbpf_learned in its descriptor) and checked on every use:
 * which ContextVar is Flask's, and where wsgi_app sits and keeps its locals.
 * A fact that fails its check is looked up the slow way and learned again,
 * so an object freed and another put at its address never yields a field.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "events.bpf.h"
#include "pyframe.bpf.h"
#include "proctree.bpf.h"
#include "filter.bpf.h"
#include "maps.bpf.h"
#include "threadstate.bpf.h"

static __always_inline bool var_is(const struct pbpf_learned_var *lv, __u64 var, __u64 name,
				   __u64 hash)
{
	return lv->var == var && lv->name == name && lv->hash == hash &&
	       lv->check == (var ^ name ^ hash);
}

static __always_inline void var_learn(struct pbpf_learned_var *lv, __u64 var, __u64 name,
				      __u64 hash)
{
	lv->var = var;
	lv->name = name;
	lv->hash = hash;
	lv->check = var ^ name ^ hash;
	__sync_fetch_and_add(&stats.facts_learned, 1);
}

/* Whether `var` is Flask's request-context ContextVar.  One read takes its
 * var_name and var_hash; a var the process already learned (this one, or
 * flask.app_ctx, the other one every request sets) is answered from that,
 * any other has its name read and is learned. */
static __always_inline bool is_request_ctx_var(struct pbpf_proc_desc *d, const void *var)
{
	const struct pbpf_py_offsets *py = &d->py;
	__u64 w[6] = {}, name, hash;
	struct py_key k;
	bool yes;

	if (bpf_probe_read_user(w, sizeof(w), var + py->contextvar_name)) {
		__sync_fetch_and_add(&stats.read_failures, 1);
		return false;
	}
	name = w[0];
	hash = w[5]; /* var_hash: after var_default, var_cached, tsid, tsver */
	if (var_is(&d->learned.request_var, (__u64)var, name, hash))
		return true;
	if (var_is(&d->learned.other_var, (__u64)var, name, hash))
		return false;
	if (read_ascii_key(py, name, &k))
		return false;
	yes = key_is(&k, PBPF_NAME_REQUEST_CTX);
	var_learn(yes ? &d->learned.request_var : &d->learned.other_var, (__u64)var, name, hash);
	return yes;
}

static __always_inline void announce_flask(__u32 tgid)
{
	struct pbpf_proc_event *e;
	__u8 one = 1;

	/* A lookup is cheaper than the update that fails on every request. */
	if (bpf_map_lookup_elem(&flask_seen, &tgid) ||
	    bpf_map_update_elem(&flask_seen, &tgid, &one, BPF_NOEXIST))
		return;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return;
	e->kind = PBPF_EV_FIRST_SEEN;
	e->pid = tgid;
	/* Wakes the reader: userspace reads where the process runs (its pod)
	 * now, while it surely lives; once per process. */
	bpf_ringbuf_submit(e, BPF_RB_FORCE_WAKEUP);
}

/* For the stack sampler: this thread's PyThreadState (it holds the GIL
 * here) and the request now in flight on it. */
static __always_inline void note_thread(const struct pbpf_py_offsets *py, struct thread_state *t,
					__u64 start_ns)
{
	__u64 tstate;

	if (!t)
		return; /* no storage for this thread now: nothing to note it in */
	tstate = (__u64)gil_holder(py);
	if (tstate)
		t->tstate = tstate;
	t->req_start = start_ns;
}

static __always_inline bool is_wsgi_app(const struct pbpf_py_offsets *py, const void *frame,
					const void **code)
{
	struct py_key k;

	*code = (const void *)stackref_obj(py, (__u64)read_ptr(frame + py->frame_code));
	return *code && !read_ascii_key(py, (__u64)read_ptr(*code + py->code_name), &k) &&
	       key_is(&k, PBPF_NAME_WSGI_APP);
}

/* A push of a context already in flight on this thread is nested only while
 * its record is not out yet and the push does not come from wsgi_app itself:
 * an entry left behind (a pop that was not seen) at an address the allocator
 * hands to the next request is replaced by that request, not taken for a
 * nested push (which would stop this thread's records at that address). */
static __always_inline bool is_nested_push(const struct pbpf_py_offsets *py,
					   const struct inflight_val *found)
{
	const void *frame = current_frame(py), *code;

	if (found->emitted || !frame)
		return false;
	return !is_wsgi_app(py, read_ptr(frame + py->frame_previous), &code);
}

SEC("uprobe")
int BPF_KPROBE(ctxvar_set, const void *var, const void *value)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct inflight_key key = { .tid = (__u32)id, .ctx = (__u64)value };
	struct pbpf_proc_desc *desc = traced(id >> 32);
	const struct pbpf_py_offsets *py = readable(desc);
	struct inflight_val v = {}, *found;
	struct inflight_slot *slot;
	struct thread_state *t;

	if (!py)
		return 0;
	__sync_fetch_and_add(&stats.ctxvar_hits, 1);
	if (!is_request_ctx_var(desc, var))
		return 0;
	announce_flask(id >> 32);
	t = current_thread_state(true);
	/* The same context pushed again (Flask 2.2's stream_with_context does,
	 * inside the view): the request started at the first push. */
	found = inflight_find(t, &key, &slot);
	if (found && is_nested_push(py, found)) {
		found->depth++;
		__sync_fetch_and_add(&stats.nested_pushes, 1);
		return 0;
	}
	__sync_fetch_and_add(&stats.request_starts, 1);
	v.start_ns = bpf_ktime_get_ns();
	v.sampled = sample_request();
	if (found)
		*found = v; /* left by a pop that was not seen: this request's now */
	else if (inflight_add(t, &key, &v))
		__sync_fetch_and_add(&stats.inflight_drops, 1);
	if (stacks_enabled)
		note_thread(py, t, v.start_ns);
	return 0;
}

/* A pop of a context pushed more than once: only the one that wsgi_app itself
 * makes (pop's caller `prev` is wsgi_app) ends the request; 0 to go on and
 * emit, 1 when this pop is not the request's end (it is counted). */
static __always_inline int nested_pop(const struct pbpf_py_offsets *py, struct inflight_val *found,
				      const void *prev, struct inflight_slot *slot,
				      const struct inflight_key *key)
{
	const void *code;

	if (found->depth == 0) {
		if (!found->emitted)
			return 0;
		inflight_del(slot, key); /* the last pop, after the record */
	} else {
		found->depth--;
		if (!found->emitted && is_wsgi_app(py, prev, &code)) {
			found->emitted = 1;
			return 0;
		}
	}
	__sync_fetch_and_add(&stats.nested_pops, 1);
	return 1;
}

/* Walks up from RequestContext.pop to the nearest Flask.wsgi_app frame,
 * `depth` frames up. */
static __always_inline const void *find_wsgi_app(const struct pbpf_py_offsets *py,
						 const void *frame, const void **code, __u32 *depth)
{
	int i;

	for (i = 0; i < PY_FRAME_WALK_MAX && frame; i++) {
		if (is_wsgi_app(py, frame, code)) {
			*depth = i;
			return frame;
		}
		frame = read_ptr(frame + py->frame_previous);
	}
	return NULL;
}

static __always_inline __u64 wsgi_check(__u64 code, __u64 names, __u32 depth, __u32 locals)
{
	return code ^ names ^ depth ^ ((__u64)locals << 32);
}

/* The first PY_LEARNED_LOCALS locals of `frame` if its code is `code`: from
 * one read of the frame from 3.11 on, two before (3.9/3.10 keep their locals
 * ~360 bytes in).  NULL when another code runs there or it cannot be read. */
static __always_inline const __u64 *code_locals(const struct pbpf_py_offsets *py, const void *frame,
						__u64 code)
{
	const __u64 *win = frame_window(py, frame, PY_LEARNED_LOCALS);
	struct py_scratch *sc;

	if (win)
		return stackref_obj(py, frame_word(win, py->frame_code)) == code
			       ? win + ((py->frame_localsplus / 8) & (PY_FRAME_SMALL / 8 - 1))
			       : NULL;
	sc = scratch();
	if (!sc || !frame || stackref_obj(py, (__u64)read_ptr(frame + py->frame_code)) != code ||
	    bpf_probe_read_user(sc->slots, PY_LEARNED_LOCALS * 8, frame + py->frame_localsplus))
		return NULL;
	return sc->slots;
}

/* wsgi_app's locals the way the process learned them: its frame `depth` up
 * from pop's (`prev` is pop's caller), its code object (and that code's
 * names tuple) the one learned, code and locals read in one go.  0 with `w`
 * filled; -1 to look the slow way. */
static __always_inline int wsgi_locals_learned(const struct pbpf_proc_desc *d, const void *prev,
					       struct py_want *w)
{
	const struct pbpf_py_offsets *py = &d->py;
	__u64 code = d->learned.wsgi_code, names = d->learned.wsgi_names;
	__u32 depth = d->learned.wsgi_depth, locals = *(__u32 *)d->learned.wsgi_local;
	const void *frame = prev;
	const __u64 *win;
	int i;

	if (!code || d->learned.wsgi_check != wsgi_check(code, names, depth, locals) ||
	    depth == 0 || depth >= PY_FRAME_WALK_MAX)
		return -1;
	for (i = 1; i < PY_FRAME_WALK_MAX && frame; i++) {
		if (i >= depth)
			break;
		frame = read_ptr(frame + py->frame_previous);
	}
	win = code_locals(py, frame, code);
	if (!win || (__u64)read_ptr((const void *)code + py->code_localsplusnames) != names)
		return -1;
	for (i = 0; i < 4; i++) {
		__u32 at = (locals >> (i * 8)) & (PY_LEARNED_LOCALS - 1);

		w->vals[i] = (const void *)stackref_obj(py, win[at]);
		w->idx[i] = at;
	}
	w->nfound = 4;
	return 0;
}

static __always_inline void wsgi_learn(struct pbpf_proc_desc *d, const void *code, __u32 depth,
				       const struct py_want *w)
{
	struct pbpf_learned *l = &d->learned;
	int i;

	for (i = 0; i < 4; i++)
		if (!w->vals[i] || w->idx[i] >= PY_LEARNED_LOCALS)
			return; /* a local unset in this request: learn in the next */
	l->wsgi_code = (__u64)code;
	l->wsgi_names = (__u64)read_ptr(code + d->py.code_localsplusnames);
	l->wsgi_depth = depth;
	for (i = 0; i < 4; i++)
		l->wsgi_local[i] = w->idx[i];
	l->wsgi_check = wsgi_check(l->wsgi_code, l->wsgi_names, depth, *(__u32 *)l->wsgi_local);
	__sync_fetch_and_add(&stats.facts_learned, 1);
}

/* Flask.wsgi_app's environ, ctx, error and response for the pop of `ctx`
 * at `frame` (called from `prev`): learned, or found by walking and reading
 * local names (and then learned).  0 when found and the ctx local is the
 * popped context. */
static __always_inline int wsgi_locals(struct pbpf_proc_desc *d, const void *frame,
				       const void *prev, __u64 ctx, struct py_want *w)
{
	const struct pbpf_py_offsets *py = &d->py;
	const void *app_frame, *code = NULL;
	__u32 depth = 0;

	if (!wsgi_locals_learned(d, prev, w) && (__u64)w->vals[1] == ctx)
		return 0;
	w->vals[0] = w->vals[1] = w->vals[2] = w->vals[3] = NULL;
	w->nfound = 0;
	app_frame = find_wsgi_app(py, frame, &code, &depth);
	if (!app_frame || frame_locals(py, (__u64)app_frame, (__u64)code, w) ||
	    (__u64)w->vals[1] != ctx)
		return -1;
	wsgi_learn(d, code, depth, w);
	return 0;
}

static __always_inline void copy_environ(const struct pbpf_py_offsets *py, const struct py_want *w,
					 struct pbpf_req_event *e)
{
	if (!read_str(py, w->vals[0], &e->method_hdr, e->method, sizeof(e->method)))
		e->flags |= PBPF_F_HAVE_METHOD;
	if (!read_str(py, w->vals[1], &e->path_hdr, e->path, sizeof(e->path)))
		e->flags |= PBPF_F_HAVE_PATH;
	if (!read_str(py, w->vals[2], &e->traceparent_hdr, e->traceparent, sizeof(e->traceparent)))
		e->flags |= PBPF_F_HAVE_TRACEPARENT;
}

/* ctx.request.url_rule -> .rule and .endpoint */
static __always_inline void read_rule(struct pbpf_proc_desc *desc, const void *ctx,
				      struct pbpf_req_event *e)
{
	struct py_want w = { .ids = { PBPF_NAME_RULE, PBPF_NAME_ENDPOINT }, .nwant = 2 };
	const struct pbpf_py_offsets *py = &desc->py;
	const void *request, *rule;

	request = getattr1(desc, ctx, PBPF_NAME_REQUEST);
	rule = getattr1(desc, request, PBPF_NAME_URL_RULE);
	if (!rule)
		return;
	if ((__u64)rule == py->none_addr) {
		e->flags |= PBPF_F_NO_RULE; /* no rule matched: 404, 405 */
		return;
	}
	/* A rule matched: from here an unreadable template is null, not the
	 * raw path (which stands in only for unmatched requests). */
	e->flags |= PBPF_F_RULE_OBJ;
	if (getattrs(desc, (__u64)rule, &w))
		return;
	if (!read_str(py, w.vals[0], &e->route_hdr, e->route, sizeof(e->route)))
		e->flags |= PBPF_F_HAVE_RULE;
	if (!read_str(py, w.vals[1], &e->endpoint_hdr, e->endpoint, sizeof(e->endpoint)))
		e->flags |= PBPF_F_HAVE_ENDPOINT;
}

static __always_inline bool is_error(const struct pbpf_py_offsets *py, const void *error)
{
	return error && (__u64)error != py->none_addr;
}

/* type(error).tp_name, a C string: one byte more than kept is read, so a
 * name longer than PBPF_EXC_MAX is known to be cut, not guessed to be. */
static __always_inline void read_exc_type(const struct pbpf_py_offsets *py, const void *error,
					  struct pbpf_req_event *e)
{
	const void *type = read_ptr(error + 8);
	long n;

	if (!type)
		return;
	n = bpf_probe_read_user_str(e->exc_type, PBPF_EXC_MAX + 2, read_ptr(type + py->type_name));
	if (n > 1) {
		e->exc_type_len = n - 1;
		e->flags |= PBPF_F_HAVE_EXC_TYPE;
	}
}

static __always_inline void read_outcome(const struct pbpf_py_offsets *py, const void *error,
					 __s64 status, struct pbpf_req_event *e)
{
	e->status = status;
	if (status >= 0)
		e->flags |= PBPF_F_HAVE_STATUS;
	if (!is_error(py, error))
		return;
	e->flags |= PBPF_F_ERROR;
	read_exc_type(py, error, e);
}

/* Zeroes what userspace reads unconditionally; string bytes past each
 * header's `copied` are never read, so the 4 KiB of string fields are not
 * cleared for every request. */
static __always_inline void clear_event(struct pbpf_req_event *e)
{
	__builtin_memset(e, 0, offsetof(struct pbpf_req_event, method));
	e->kind = PBPF_EV_REQUEST;
	e->path_hdr = (struct pbpf_str_hdr){};
	e->route_hdr = (struct pbpf_str_hdr){};
	e->endpoint_hdr = (struct pbpf_str_hdr){};
	e->traceparent_hdr = (struct pbpf_str_hdr){};
	e->exc_type_len = 0;
	e->exc_type[0] = 0;
}

/* Requests not sampled at start are kept only when they fail (5xx or an
 * unhandled exception) and keep_errors is on. */
static __always_inline bool keep_unsampled(const struct pbpf_py_offsets *py, const void *error,
					   __s64 status)
{
	return filter.keep_errors && (is_error(py, error) || status >= 500);
}

SEC("uprobe")
int BPF_KPROBE(ctxvar_reset, const void *var)
{
	struct py_want w = {
		.ids = { PBPF_NAME_ENVIRON, PBPF_NAME_CTX, PBPF_NAME_ERROR, PBPF_NAME_RESPONSE },
		.nwant = 4,
	};
	struct py_want env = {
		.ids = { PBPF_NAME_REQUEST_METHOD, PBPF_NAME_PATH_INFO,
			 PBPF_NAME_HTTP_TRACEPARENT },
		.nwant = 3,
	};
	__u64 id = bpf_get_current_pid_tgid();
	struct inflight_key key = { .tid = (__u32)id };
	const void *frame, *prev;
	struct inflight_val *found, v;
	struct inflight_slot *slot;
	struct thread_state *t;
	const __u64 *win;
	struct pbpf_proc_desc *desc = traced(id >> 32);
	const struct pbpf_py_offsets *py = readable(desc);
	struct pbpf_req_event *e;
	__s64 status;

	if (!py)
		return 0;
	__sync_fetch_and_add(&stats.ctxvar_hits, 1);
	if (!is_request_ctx_var(desc, var))
		return 0;
	/* The popping context is `self`, the first local of RequestContext.pop. */
	frame = current_frame(py);
	if (!frame) {
		__sync_fetch_and_add(&stats.request_ends, 1);
		goto no_frame;
	}
	/* Pop's caller and its first local: one read from 3.11 on. */
	win = frame_window(py, frame, 1);
	if (win) {
		key.ctx = stackref_obj(py, frame_word(win, py->frame_localsplus));
		prev = (const void *)frame_word(win, py->frame_previous);
	} else {
		key.ctx = stackref_obj(py, (__u64)read_ptr(frame + py->frame_localsplus));
		prev = read_ptr(frame + py->frame_previous);
	}
	t = current_thread_state(false);
	found = inflight_find(t, &key, &slot);
	if (found && (found->depth || found->emitted) && nested_pop(py, found, prev, slot, &key))
		return 0;
	__sync_fetch_and_add(&stats.request_ends, 1);
	if (!found) {
		__sync_fetch_and_add(&stats.no_start, 1);
		return 0;
	}
	v = *found;
	if (!found->emitted)
		inflight_del(slot, &key);
	if (stacks_enabled && t)
		t->req_start = 0; /* "none" to the sampler */
	if (!v.sampled && !filter.keep_errors)
		goto unsampled;
	if (wsgi_locals(desc, frame, prev, key.ctx, &w))
		goto no_frame; /* a context pushed outside wsgi_app */
	status = read_status(py, getattr1(desc, w.vals[3], PBPF_NAME_STATUS_CODE));
	if (!v.sampled && !keep_unsampled(py, w.vals[2], status))
		goto unsampled;
	dict_lookup(desc, w.vals[0], &env);
	if (filter.n_prefixes && path_excluded(py, (__u64)env.vals[1])) {
		__sync_fetch_and_add(&stats.excluded, 1);
		return 0;
	}

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&stats.ringbuf_drops, 1);
		return 0;
	}
	clear_event(e);
	e->flags = PBPF_F_HAVE_FRAME;
	/* With keep_errors every failure is recorded: its weight is 1 even when
	 * the coin also chose it. */
	e->keep = keep_unsampled(py, w.vals[2], status) ? PBPF_KEEP_ERROR : PBPF_KEEP_SAMPLED;
	e->pid = id >> 32;
	e->tid = (__u32)id;
	e->start_ns = v.start_ns;
	copy_environ(py, &env, e);
	read_rule(desc, w.vals[1], e);
	read_outcome(py, w.vals[2], status, e);
	e->end_ns = bpf_ktime_get_ns();
	submit_quietly(e);
	return 0;

unsampled:
	__sync_fetch_and_add(&stats.unsampled, 1);
	return 0;
no_frame:
	__sync_fetch_and_add(&stats.frame_missing, 1);
	return 0;
}
