/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * A log-linear latency histogram over nanoseconds with weighted counts.
 * Values below 128 ns are exact; above, each power of two is split into 64
 * buckets, so a percentile read at a bucket's midpoint is within 0.8% of the
 * exact value.  Weights are doubles so sampled records count 1/rate.
 */
#ifndef PROFILIS_HISTOGRAM_H
#define PROFILIS_HISTOGRAM_H

#include <stdint.h>

#define HIST_SUB 128				/* exact range and precision */
#define HIST_LEVELS 36				/* up to 2^43 ns, ~2.4 hours */
#define HIST_BUCKETS (HIST_SUB + HIST_LEVELS * (HIST_SUB / 2))

struct histogram {
	float w[HIST_BUCKETS];
	double total;
	uint64_t min_ns, max_ns;		/* exact extremes */
};

void hist_reset(struct histogram *h);
void hist_add(struct histogram *h, uint64_t ns, double weight);
void hist_merge(struct histogram *into, const struct histogram *from);
/* The nearest-rank percentile (p in 0..1): the smallest recorded value
 * with at least p of the weight at or below it.  0 when empty. */
uint64_t hist_percentile(const struct histogram *h, double p);

/* Bucket arithmetic, exposed for tests. */
int hist_index(uint64_t ns);
uint64_t hist_lower(int index);
uint64_t hist_width(int index);

#endif
