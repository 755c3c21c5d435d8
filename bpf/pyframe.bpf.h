/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * A frame's locals looked up by name, and a frame read whole through its
 * first locals (3.11+) once their indexes are known.
 */
#ifndef PROFILIS_PYFRAME_BPF_H
#define PROFILIS_PYFRAME_BPF_H

#include "pydict.bpf.h"
#include "pythread.bpf.h"

/* Looks up locals of `frame` by name through co_localsplusnames. */
struct locals_scan {
	const struct pbpf_py_offsets *py;
	__s64 n;
	struct py_want *want;
	struct py_scratch *sc;
	struct py_key key;
};

static long locals_scan_step(__u64 i, void *ctx)
{
	struct locals_scan *s = ctx;
	__u64 val;

	if (i >= s->n || i >= PY_LOCALS_MAX || s->want->nfound >= s->want->nwant)
		return 1;
	val = stackref_obj(s->py, s->sc->slots[i & (PY_LOCALS_MAX - 1)]);
	if (val && !read_ascii_key(s->py, s->sc->names[i & (PY_LOCALS_MAX - 1)], &s->key))
		want_match(s->want, &s->key, (const void *)val, i);
	return 0;
}

__noinline int frame_locals(const struct pbpf_py_offsets *py, __u64 frame_addr, __u64 code_addr,
			    struct py_want *want)
{
	const void *frame = (const void *)frame_addr, *code = (const void *)code_addr;
	struct locals_scan s = {};
	const void *tuple;
	__s32 n = 0;
	__u64 bytes;

	s.sc = scratch();
	s.py = py;
	if (!py || !frame || !code || !want || !s.sc)
		return -1;
	tuple = read_ptr(code + py->code_localsplusnames);
	if (!tuple || bpf_probe_read_user(&n, 4, code + py->code_nlocalsplus))
		return -1;
	if (n <= 0)
		return 0;
	/* wsgi_app has 7 locals; the mask is what the verifier can follow. */
	if (n > PY_LOCALS_MAX - 1)
		n = PY_LOCALS_MAX - 1;
	bytes = ((__u64)n & (PY_LOCALS_MAX - 1)) * 8;
	if (bpf_probe_read_user(s.sc->names, bytes, tuple + py->tuple_items) ||
	    bpf_probe_read_user(s.sc->slots, bytes, frame + py->frame_localsplus)) {
		__sync_fetch_and_add(&stats.read_failures, 1);
		return -1;
	}
	s.n = n;
	s.want = want;
	bpf_loop(PY_LOCALS_MAX, locals_scan_step, &s, 0);
	return 0;
}

/* Reads `frame` from its start through `nlocals` localsplus words into the
 * scratch window: its code, its previous frame and those locals in one read
 * instead of one each, where locals start near the frame's start (3.11+).
 * NULL when it cannot be read, or is not worth reading whole. */
static __always_inline const __u64 *frame_window(const struct pbpf_py_offsets *py,
						 const void *frame, __u32 nlocals)
{
	struct py_scratch *sc = scratch();
	__u64 size = py->frame_localsplus + nlocals * 8;

	/* 3.9/3.10's locals are ~360 bytes in: two small reads cost less. */
	if (py->frame_localsplus >= PY_FRAME_SMALL)
		return NULL;
	barrier_var(size);
	if (!sc || !frame || size > PY_FRAME_WIN || size == 0 ||
	    bpf_probe_read_user(sc->frame, size, frame))
		return NULL;
	return sc->frame;
}

/* The word at byte `off` (8-aligned) of a frame window. */
static __always_inline __u64 frame_word(const __u64 *win, __u32 off)
{
	return win[(off / 8) & (PY_FRAME_WIN / 8 - 1)];
}

#endif /* PROFILIS_PYFRAME_BPF_H */
