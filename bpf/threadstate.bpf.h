/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Per-thread state in task storage (struct thread_state, maps.bpf.h): the
 * thread's PyThreadState and request start for the sampler, and its requests
 * in flight by RequestContext.  A thread's first INFLIGHT_SLOTS requests in
 * flight sit in its slots, found by comparing a word each; more go to the
 * `inflight` LRU map, which is looked at only while it holds something
 * (inflight_in_map).  Task storage can be unavailable for a moment (a program
 * nested on the CPU holds its lock): the request then goes to the map too.
 */
#ifndef PROFILIS_THREADSTATE_BPF_H
#define PROFILIS_THREADSTATE_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "maps.bpf.h"

/* The running thread's state; created when `create`.  NULL without one. */
static __always_inline struct thread_state *current_thread_state(bool create)
{
	return bpf_task_storage_get(&thread_states, bpf_get_current_task_btf(), 0,
				    create ? BPF_LOCAL_STORAGE_GET_F_CREATE : 0);
}

/* The request of key->ctx on this thread: in one of t's slots (*slot set)
 * or in the map (*slot NULL); NULL when it is in neither. */
static __always_inline struct inflight_val *
inflight_find(struct thread_state *t, const struct inflight_key *key, struct inflight_slot **slot)
{
	int i;

	*slot = NULL;
	for (i = 0; t && i < INFLIGHT_SLOTS; i++) {
		if (t->slot[i].ctx == key->ctx) {
			*slot = &t->slot[i];
			return &t->slot[i].v;
		}
	}
	if (!inflight_in_map)
		return NULL;
	return bpf_map_lookup_elem(&inflight, key);
}

/* A request starting: in a free slot, else in the map; -1 when the map is
 * full (counted by the caller as lost). */
static __always_inline int inflight_add(struct thread_state *t, const struct inflight_key *key,
					const struct inflight_val *v)
{
	int i;

	for (i = 0; t && i < INFLIGHT_SLOTS; i++) {
		if (t->slot[i].ctx == 0) {
			t->slot[i].v = *v;
			t->slot[i].ctx = key->ctx;
			return 0;
		}
	}
	if (bpf_map_update_elem(&inflight, key, v, BPF_ANY))
		return -1;
	__sync_fetch_and_add(&inflight_in_map, 1);
	return 0;
}

/* The request is over: its slot freed, or its map entry deleted. */
static __always_inline void inflight_del(struct inflight_slot *slot, const struct inflight_key *key)
{
	if (slot)
		slot->ctx = 0;
	else if (!bpf_map_delete_elem(&inflight, key))
		__sync_fetch_and_add(&inflight_in_map, -1);
}

#endif /* PROFILIS_THREADSTATE_BPF_H */
