/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The ring buffer to userspace and its wake-up policy.  Waking the reader for
 * every request cost more CPU than the probes themselves (~30 us per request
 * here), so request records are submitted quietly and userspace drains the
 * buffer on its 100 ms tick; only a buffer filling up (wake_bytes) or a fork
 * (a new process to attach to) wakes it at once.
 */
#ifndef PROFILIS_EVENTS_BPF_H
#define PROFILIS_EVENTS_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "maps.bpf.h"

static __always_inline void submit_quietly(void *e)
{
	__u64 flags = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) >= wake_bytes
			      ? BPF_RB_FORCE_WAKEUP
			      : BPF_RB_NO_WAKEUP;

	bpf_ringbuf_submit(e, flags);
}

#endif /* PROFILIS_EVENTS_BPF_H */
