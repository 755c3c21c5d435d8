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
#include "maps.bpf.h"

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

#endif /* PROFILIS_PROCTREE_BPF_H */
