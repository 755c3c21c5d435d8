/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * A log-linear latency histogram over nanoseconds with weighted counts.
 * Values below 128 ns are exact; above, each power of two is split into 64
 * buckets, so a percentile read at a bucket's midpoint is within 0.8% of the
 * exact value.  Weights are doubles so sampled records count 1/rate.
 * Buckets live in 64-bucket chunks allocated when first hit: a route's
 * latencies span a few powers of two, so a histogram takes ~1-3 KiB, not
 * the ~10 KiB of all 2,432 buckets (at most that, when every chunk is hit).
 */
#ifndef PROFILIS_HISTOGRAM_H
#define PROFILIS_HISTOGRAM_H

#include <stdint.h>

#define HIST_SUB 128   /* exact range and precision */
#define HIST_LEVELS 36 /* up to 2^43 ns, ~2.4 hours */
#define HIST_BUCKETS (HIST_SUB + HIST_LEVELS * (HIST_SUB / 2))

#define HIST_CHUNK 64
#define HIST_CHUNKS (HIST_BUCKETS / HIST_CHUNK)

struct histogram {
	float *chunk[HIST_CHUNKS]; /* NULL: all zero */
	double total;
	uint64_t min_ns, max_ns; /* exact extremes */
	uint64_t lost;		 /* adds a failed allocation refused */
};

/* Empties h, freeing its chunks (h must be zeroed or used before). */
void histogram_reset(struct histogram *h);
/* Frees h's chunks and h itself (NULL-safe). */
void histogram_free(struct histogram *h);
/* 0, or -ENOMEM when the value's chunk could not be allocated (counted in
 * h->lost; the value is left out, totals included, so percentiles stay
 * consistent). */
int histogram_add(struct histogram *h, uint64_t ns, double weight);
int histogram_merge(struct histogram *into, const struct histogram *from);
/* Bytes held by h's chunks and header. */
size_t histogram_bytes(const struct histogram *h);
/* The nearest-rank percentile (p in 0..1): the smallest recorded value
 * with at least p of the weight at or below it.  0 when empty. */
uint64_t histogram_percentile(const struct histogram *h, double p);

/* Bucket arithmetic, exposed for tests. */
int histogram_index(uint64_t ns);
uint64_t histogram_lower(int index);
uint64_t histogram_width(int index);

#endif
