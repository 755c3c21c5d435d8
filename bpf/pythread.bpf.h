/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The running thread's Python frames: the innermost frame of a thread state,
 * and the current frame of the thread that holds the GIL (the caller at the
 * request uprobes).  The GIL holder itself is in pyobj.bpf.h.
 */
#ifndef PROFILIS_PYTHREAD_BPF_H
#define PROFILIS_PYTHREAD_BPF_H

#include "pyobj.bpf.h"

/* A thread's innermost frame: behind a _PyCFrame in 3.11/3.12, directly in
 * the thread state otherwise. */
static __always_inline const void *tstate_frame(const struct pbpf_py_offsets *py,
						const void *tstate)
{
	const void *p;

	if (!tstate)
		return NULL;
	p = read_ptr(tstate + py->tstate_frame);
	if (p && py->cframe_current_frame != PBPF_NONE)
		p = read_ptr(p + py->cframe_current_frame);
	return p;
}

/* The frame of the thread holding the GIL, which is the caller at our
 * uprobes. */
static __always_inline const void *current_frame(const struct pbpf_py_offsets *py)
{
	return tstate_frame(py, gil_holder(py));
}

#endif /* PROFILIS_PYTHREAD_BPF_H */
