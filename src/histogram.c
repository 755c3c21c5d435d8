// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * HDR-style bucketing: index = the value's top 7 significant bits, placed by
 * its power of two.  Percentiles return the bucket midpoint, clamped to the
 * exact min and max so p0 and p100 are exact.
 */
#include <string.h>
#include "histogram.h"

void hist_reset(struct histogram *h)
{
	memset(h, 0, sizeof(*h));
}

int hist_index(uint64_t v)
{
	int e, level;

	if (v < HIST_SUB)
		return (int)v;
	e = 63 - __builtin_clzll(v);		/* >= 7 */
	level = e - 7;
	if (level >= HIST_LEVELS)
		return HIST_BUCKETS - 1;	/* saturate: longer than 2.4 hours */
	return HIST_SUB + level * (HIST_SUB / 2) + (int)((v >> (level + 1)) - HIST_SUB / 2);
}

uint64_t hist_lower(int i)
{
	int level;

	if (i < HIST_SUB)
		return i;
	level = (i - HIST_SUB) / (HIST_SUB / 2);
	return (uint64_t)((i - HIST_SUB) % (HIST_SUB / 2) + HIST_SUB / 2) << (level + 1);
}

uint64_t hist_width(int i)
{
	return i < HIST_SUB ? 1 : 1ULL << ((i - HIST_SUB) / (HIST_SUB / 2) + 1);
}

void hist_add(struct histogram *h, uint64_t ns, double weight)
{
	if (weight <= 0)
		return;
	if (h->total == 0 || ns < h->min_ns)
		h->min_ns = ns;
	if (ns > h->max_ns)
		h->max_ns = ns;
	h->w[hist_index(ns)] += weight;
	h->total += weight;
}

void hist_merge(struct histogram *into, const struct histogram *from)
{
	if (from->total == 0)
		return;
	if (into->total == 0 || from->min_ns < into->min_ns)
		into->min_ns = from->min_ns;
	if (from->max_ns > into->max_ns)
		into->max_ns = from->max_ns;
	for (int i = 0; i < HIST_BUCKETS; i++)
		into->w[i] += from->w[i];
	into->total += from->total;
}

uint64_t hist_percentile(const struct histogram *h, double p)
{
	double target, seen = 0;
	uint64_t v;

	if (h->total <= 0)
		return 0;
	if (p <= 0)
		return h->min_ns;
	if (p >= 1)
		return h->max_ns;
	/* Float bucket sums drift: allow a hair below the target. */
	target = p * h->total * (1 - 1e-9);
	for (int i = 0; i < HIST_BUCKETS; i++) {
		seen += h->w[i];
		if (seen >= target && h->w[i] > 0) {
			v = hist_lower(i) + hist_width(i) / 2;
			if (hist_width(i) == 1)
				v = hist_lower(i);
			if (v < h->min_ns)
				v = h->min_ns;
			if (v > h->max_ns)
				v = h->max_ns;
			return v;
		}
	}
	return h->max_ns;
}
