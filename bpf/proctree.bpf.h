/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The traced process tree: a set of tgids seeded by userspace (the target and
 * its descendants at attach time) and grown in the kernel at every fork of a
 * member, before the child runs.  The request uprobes sit on the interpreter's
 * file for every process that maps it, so this set is the first, cheapest
 * filter of every program: a child is traced from its first request.
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
	__u8 one = 1;

	/* New threads share the tgid and are already covered. */
	if (child_pid != child_tgid || !is_traced(parent_tgid))
		return 0;
	if (bpf_map_update_elem(&traced_procs, &child_tgid, &one, BPF_ANY))
		__sync_fetch_and_add(&stats.forks_untracked, 1);
	else
		__sync_fetch_and_add(&stats.forks_tracked, 1);
	return 0;
}

#endif /* PROFILIS_PROCTREE_BPF_H */
