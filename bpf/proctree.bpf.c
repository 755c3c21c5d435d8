// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The process hooks: a fork of a traced process traces the child with its
 * parent's descriptor, an exec marks the descriptor stale and asks userspace
 * for a new one, an exit drops the process (a recycled pid is not traced by
 * accident).  See proctree.bpf.h.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "events.bpf.h"
#include "maps.bpf.h"
#include "proctree.bpf.h"

SEC("raw_tp/sched_process_fork")
int BPF_PROG(on_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 parent_tgid = BPF_CORE_READ(parent, tgid);
	__u32 child_pid = BPF_CORE_READ(child, pid);
	__u32 child_tgid = BPF_CORE_READ(child, tgid);
	struct pbpf_proc_desc *d;

	/* New threads share the tgid and are already covered. */
	if (child_pid != child_tgid)
		return 0;
	d = traced(parent_tgid);
	if (!d)
		return 0;
	/* A forked child has its parent's image: the same descriptor fits. */
	if (bpf_map_update_elem(&traced_procs, &child_tgid, d, BPF_ANY))
		__sync_fetch_and_add(&stats.forks_untracked, 1);
	else
		__sync_fetch_and_add(&stats.forks_tracked, 1);
	return 0;
}

/* A traced process replaced its image: stop reading its memory with the old
 * addresses and ask userspace to resolve the new one (gunicorn's USR2 upgrade,
 * `sh -c 'exec python ...'`).  With --all every new image is reported: it may
 * be a CPython to trace. */
SEC("raw_tp/sched_process_exec")
int BPF_PROG(on_exec)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct pbpf_proc_desc *d = traced(tgid);
	struct pbpf_proc_event *e;

	if (d) {
		d->flags |= PBPF_PROC_EXECED;
		__sync_fetch_and_add(&stats.execs, 1);
	} else if (!discover_all) {
		return 0;
	}
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		/* A traced one is found at userspace's next scan of the set (by
		 * its mark); a new one is lost, and counted. */
		if (!d)
			__sync_fetch_and_add(&stats.exec_report_drops, 1);
		return 0;
	}
	e->kind = PBPF_EV_EXEC;
	e->pid = tgid;
	bpf_ringbuf_submit(e, BPF_RB_FORCE_WAKEUP);
	return 0;
}

/* A process leaving drops out of the traced set, so a recycled pid is not
 * traced by accident. */
SEC("raw_tp/sched_process_exit")
int BPF_PROG(on_exit)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32;

	if ((__u32)id == tgid && traced(tgid)) {
		bpf_map_delete_elem(&traced_procs, &tgid);
		bpf_map_delete_elem(&flask_seen, &tgid);
	}
	return 0;
}
