// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * A record shorter than its kind's layout would be read past its end, so it
 * is counted and dropped; a kind without a sink is simply not wanted (stacks
 * with profiling off never arrive anyway).
 */
#include <errno.h>
#include <string.h>
#include "router.h"

static size_t min_size(uint32_t kind)
{
	switch (kind) {
	case PBPF_EV_REQUEST: return sizeof(struct pbpf_req_event);
	case PBPF_EV_SAMPLE:
	case PBPF_EV_OFFCPU: return sizeof(struct pbpf_stack_event);
	case PBPF_EV_FIRST_SEEN:
	case PBPF_EV_EXEC: return sizeof(struct pbpf_proc_event);
	default: return 0;
	}
}

int router_dispatch(const struct router_sinks *s, struct router_stats *st, const void *data,
		    size_t size)
{
	const struct pbpf_proc_event *pe = data;
	uint32_t kind;
	size_t need;

	if (size < sizeof(kind)) {
		st->too_short++;
		return -EINVAL;
	}
	memcpy(&kind, data, sizeof(kind));
	need = min_size(kind);
	if (!need) {
		st->unknown_kind++;
		return -EINVAL;
	}
	if (size < need) {
		st->too_short++;
		return -EINVAL;
	}
	switch (kind) {
	case PBPF_EV_REQUEST: s->request(s->ctx, data); break;
	case PBPF_EV_SAMPLE:
	case PBPF_EV_OFFCPU:
		if (s->stack)
			s->stack(s->ctx, data);
		break;
	case PBPF_EV_EXEC:
		if (s->exec)
			s->exec(s->ctx, pe->pid);
		break;
	case PBPF_EV_FIRST_SEEN:
		if (s->first_seen)
			s->first_seen(s->ctx, pe->pid);
		break;
	}
	return 0;
}
