// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Where the time goes, without per-call probes (DESIGN.md §5).  A software
 * CPU clock (perf_event) samples the Python stack of traced threads that
 * hold the GIL; the scheduler switch records the stack of a traced thread
 * that blocks inside a request and charges the blocked time to it when the
 * thread runs again.  Samples carry the request in flight on the thread
 * (its start time), which userspace joins with the request's record.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "profilis/abi.h"
#include "events.bpf.h"
#include "proctree.bpf.h"
#include "pythread.bpf.h"
#include "maps.bpf.h"
#include "threadstate.bpf.h"

struct walk_ctx {
	const struct pbpf_py_offsets *py;
	const void *frame;
	struct pbpf_stack_event *e; /* its depth counts the frames recorded */
};

#define FRAME_WORDS 16 /* the frame window is at most 128 bytes */

/* One frame per step, one read of its first frame_window bytes: code,
 * previous, the instruction word and (3.11+) the owner all sit there.  Frames
 * owned by the C stack (3.12/3.13's entry frames) or the interpreter (3.14+,
 * 3.15's base frame) are skipped, as CPython's own walkers do: owner >= that
 * value.  (3.13+'s __init__ clean-up shim is owned by the thread; the
 * symbolizer recognises its code by co_flags.)  3.14+ code pointers are
 * tagged stack references. */
static long walk_step(__u64 i, void *ctx)
{
	struct walk_ctx *w = ctx;
	__u64 f[FRAME_WORDS] = {};
	const struct pbpf_py_offsets *py = w->py;
	const void *frame = w->frame;
	/* The count lives in the event (map memory), not in `w` on the stack:
	 * the verifier tracks a stack counter as the constant it starts as,
	 * found the depth limit unreachable and removed it as dead code. */
	__u32 n = w->e->depth;

	if (!frame)
		return 1;
	if (bpf_probe_read_user(f, py->frame_window < sizeof(f) ? py->frame_window : sizeof(f),
				frame)) {
		w->frame = NULL;
		return 1;
	}
	w->frame = (const void *)word_field(f, FRAME_WORDS, py->frame_previous, 8);
	/* A shim neither counts toward --max-depth nor makes a stack "cut". */
	if (pbpf_frame_is_shim(py, word_field(f, FRAME_WORDS, py->frame_owner, 1)))
		return 0;
	if (n >= max_depth || n >= PBPF_STACK_MAX) {
		w->e->truncated = 1;
		return 1;
	}
	w->e->code[n & (PBPF_STACK_MAX - 1)] =
		stackref_obj(py, word_field(f, FRAME_WORDS, py->frame_code, 8));
	/* 3.9/3.10: int f_lasti; later versions: a pointer. */
	w->e->instr[n & (PBPF_STACK_MAX - 1)] =
		word_field(f, FRAME_WORDS, py->frame_prev_instr,
			   py->instr_kind <= PBPF_INSTR_LASTI_UNITS ? 4 : 8);
	w->e->depth = n + 1;
	return 0;
}

static __always_inline void walk_stack(const struct pbpf_py_offsets *py, const void *tstate,
				       struct pbpf_stack_event *e)
{
	struct walk_ctx w = { .py = py, .e = e, .frame = tstate_frame(py, tstate) };

	e->depth = 0;
	e->truncated = 0;
	bpf_loop(PBPF_STACK_MAX * 2, walk_step, &w, 0);
	if (w.frame) /* the step budget ran out first (many C-to-Python crossings) */
		e->truncated = 1;
	if (e->truncated)
		__sync_fetch_and_add(&stats.stack_truncated, 1);
}

/* Whether `holder` is the running thread's state: by native_thread_id
 * (3.11+), else (3.9/3.10) by thread_id, which is pthread_self(), which with
 * glibc on x86-64 is the thread's TLS block, the FS base. */
static __always_inline bool holder_is_current(const struct pbpf_py_offsets *py, const void *holder,
					      __u32 tid)
{
	struct task_struct *task;
	__u64 id = 0;

	if (py->tstate_native_thread_id != PBPF_NONE)
		return !bpf_probe_read_user(&id, 8, holder + py->tstate_native_thread_id) &&
		       id == tid;
	task = bpf_get_current_task_btf();
	return !bpf_probe_read_user(&id, 8, holder + py->tstate_thread_id) &&
	       id == BPF_CORE_READ(task, thread.fsbase);
}

/* The running thread's PyThreadState, learned at the uprobes or
 * recognised as the GIL holder's (and then kept in `t`); NULL for threads
 * that never ran Python. */
static __always_inline const void *sampled_tstate(const struct pbpf_py_offsets *py,
						  struct thread_state *t, __u32 tid,
						  const void *holder)
{
	if (t && t->tstate)
		return (const void *)t->tstate;
	if (!holder || !holder_is_current(py, holder, tid))
		return NULL;
	if (t)
		t->tstate = (__u64)holder;
	return holder;
}

SEC("perf_event")
int on_cpu_sample(struct bpf_perf_event_data *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;
	const struct pbpf_proc_desc *d = traced(tgid);
	const struct pbpf_py_offsets *py = readable(d);
	const void *holder, *tstate;
	struct pbpf_stack_event *e;
	struct thread_state *t;

	if (!py)
		return 0;
	/* A node agent samples only Flask services: every other CPython on the
	 * node (a cron job, a CLI) costs no stack walks. */
	if (discover_all && !bpf_map_lookup_elem(&flask_seen, &tgid))
		return 0;
	holder = gil_holder(py);
	t = current_thread_state(true);
	tstate = sampled_tstate(py, t, (__u32)id, holder);
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&stats.sample_drops, 1);
		return 0;
	}
	e->kind = PBPF_EV_SAMPLE;
	e->desc_id = d->desc_id;
	e->pid = id >> 32;
	e->tid = (__u32)id;
	e->ts_ns = bpf_ktime_get_ns();
	e->offcpu_ns = 0;
	e->req_start_ns = t ? t->req_start : 0;
	e->cls = !tstate	    ? PBPF_CLASS_NO_PYTHON
		 : tstate != holder ? PBPF_CLASS_NO_GIL
				    : PBPF_CLASS_PYTHON;
	e->depth = 0;
	e->truncated = 0;
	if (e->cls == PBPF_CLASS_PYTHON)
		walk_stack(py, tstate, e);
	__sync_fetch_and_add(&stats.cpu_samples, 1);
	submit_quietly(e);
	return 0;
}

/* prev blocks (a sleep, not a preemption) inside a request: remember its
 * stack.  next had a remembered stack: report how long it was blocked. */
SEC("tp_btf/sched_switch")
int BPF_PROG(on_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	__u32 prev_tgid = prev->tgid, prev_tid = prev->pid;
	__u32 next_tid = next->pid, zero = 0;
	const struct pbpf_proc_desc *d;
	const struct pbpf_py_offsets *py;
	struct pbpf_stack_event *st = NULL, *e;
	struct thread_state *t;

	/* Most switches have no blocked stack anywhere to report: no lookup. */
	if (offcpu_pending)
		st = bpf_map_lookup_elem(&offcpu_stacks, &next_tid);
	if (st) {
		e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
		if (e) {
			bpf_probe_read_kernel(e, sizeof(*e), st);
			e->offcpu_ns = bpf_ktime_get_ns() - e->ts_ns;
			submit_quietly(e);
		} else {
			__sync_fetch_and_add(&stats.sample_drops, 1);
		}
		if (!bpf_map_delete_elem(&offcpu_stacks, &next_tid))
			__sync_fetch_and_add(&offcpu_pending, -1);
	}
	if (preempt || prev->__state == 0)
		return 0;
	/* Waiting outside a request (the accept loop) is not charged: asked
	 * first, it turns away most sleeps, traced or not, in one lookup. */
	t = bpf_task_storage_get(&thread_states, prev, 0, 0);
	if (!t || !t->req_start || !t->tstate)
		return 0;
	d = traced(prev_tgid);
	py = readable(d);
	if (!py)
		return 0;
	st = bpf_map_lookup_elem(&stack_scratch, &zero);
	if (!st)
		return 0;
	st->kind = PBPF_EV_OFFCPU;
	st->desc_id = d->desc_id;
	st->pid = prev_tgid;
	st->tid = prev_tid;
	st->cls = PBPF_CLASS_NO_GIL;
	st->req_start_ns = t->req_start;
	st->ts_ns = bpf_ktime_get_ns();
	/* We run in prev's context here: its memory is the current mm. */
	walk_stack(py, (const void *)t->tstate, st);
	if (!bpf_map_update_elem(&offcpu_stacks, &prev_tid, st, BPF_ANY))
		__sync_fetch_and_add(&offcpu_pending, 1);
	__sync_fetch_and_add(&stats.offcpu_stacks, 1);
	return 0;
}
