/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Clock reads in nanoseconds.  CLOCK_MONOTONIC is the clock of the BPF
 * timestamps (bpf_ktime_get_ns) and of every interval and deadline here.
 */
#ifndef PROFILIS_CLOCK_H
#define PROFILIS_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static inline uint64_t mono_ns(void)
{
	return (uint64_t)clock_ns(CLOCK_MONOTONIC);
}

#endif
