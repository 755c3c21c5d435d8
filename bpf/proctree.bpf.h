/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The traced processes: a map from tgid to the process's interpreter
 * descriptor, seeded by userspace (each target and its descendants at attach
 * time, each resolved on its own) and grown in the kernel at every fork of a
 * member, before the child runs; the child gets a copy of its parent's
 * descriptor, which describes its memory too.  The request uprobes sit on the
 * interpreter files for every process that maps them, so this lookup is the
 * first, cheapest filter of every program: a child is traced from its first
 * request.  An exec makes the old descriptor wrong; it is marked, reported to
 * userspace, and not used until userspace writes a new one.
 */
#ifndef PROFILIS_PROCTREE_BPF_H
#define PROFILIS_PROCTREE_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "profilis/abi.h"
#include "events.bpf.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PBPF_MAX_PROCS);
	__type(key, __u32); /* tgid */
	__type(value, struct pbpf_proc_desc);
} traced_procs SEC(".maps");

static __always_inline struct pbpf_proc_desc *traced(__u32 tgid)
{
	return bpf_map_lookup_elem(&traced_procs, &tgid);
}

/* The offsets to read a traced process's memory with; NULL when it is not
 * traced or its memory is not one we can read (not Python, or exec'd since). */
static __always_inline const struct pbpf_py_offsets *readable(const struct pbpf_proc_desc *d)
{
	return d && !d->flags ? &d->py : NULL;
}

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
 * `sh -c 'exec python ...'`). */
SEC("raw_tp/sched_process_exec")
int BPF_PROG(on_exec)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct pbpf_proc_desc *d = traced(tgid);
	struct pbpf_proc_event *e;

	if (!d)
		return 0;
	d->flags |= PBPF_PROC_EXECED;
	__sync_fetch_and_add(&stats.execs, 1);
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0; /* userspace finds it at its next scan of the traced set */
	e->kind = PBPF_EV_EXEC;
	e->pid = tgid;
	bpf_ringbuf_submit(e, BPF_RB_FORCE_WAKEUP);
	return 0;
}

#endif /* PROFILIS_PROCTREE_BPF_H */
