/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The traced process tree: a set of tgids seeded by userspace (the target and
 * its descendants at attach time) and grown in the kernel at every fork of a
 * member.  Userspace attaches the uprobes per process (a system-wide uprobe
 * would make every Python on the host trap), so a fork also wakes it with a
 * PBPF_EV_FORK event; the set is the source of truth it reconciles with, and
 * the first, cheapest filter of every program.
 */
#ifndef PROFILIS_PROCTREE_BPF_H
#define PROFILIS_PROCTREE_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "profilis/abi.h"
#include "events.bpf.h"

#define PBPF_MAX_PROCS 4096

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PBPF_MAX_PROCS);
	__type(key, __u32);	/* tgid */
	__type(value, __u8);
} traced_procs SEC(".maps");

static __always_inline bool is_traced(__u32 tgid)
{
	return bpf_map_lookup_elem(&traced_procs, &tgid) != NULL;
}

SEC("raw_tp/sched_process_fork")
int BPF_PROG(on_fork, struct task_struct *parent, struct task_struct *child)
{
	__u32 parent_tgid = BPF_CORE_READ(parent, tgid);
	__u32 child_pid = BPF_CORE_READ(child, pid);
	__u32 child_tgid = BPF_CORE_READ(child, tgid);
	struct pbpf_proc_event *e;
	__u8 one = 1;

	/* New threads share the tgid and are already covered. */
	if (child_pid != child_tgid || !is_traced(parent_tgid))
		return 0;
	bpf_map_update_elem(&traced_procs, &child_tgid, &one, BPF_ANY);
	__sync_fetch_and_add(&stats.forks_tracked, 1);
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0; /* userspace still finds the child in traced_procs */
	e->kind = PBPF_EV_FORK;
	e->pid = child_tgid;
	bpf_ringbuf_submit(e, BPF_RB_FORCE_WAKEUP);
	return 0;
}

#endif /* PROFILIS_PROCTREE_BPF_H */
