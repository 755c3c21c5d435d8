// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * HDR-style bucketing: index = the value's top 7 significant bits, placed by
 * its power of two.  Percentiles return the bucket midpoint, clamped to the
 * exact min and max so p0 and p100 are exact.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "histogram.h"

_Static_assert(HIST_BUCKETS % HIST_CHUNK == 0, "whole chunks");

void histogram_reset(struct histogram *h)
{
	for (int c = 0; c < HIST_CHUNKS; c++)
		free(h->chunk[c]);
	memset(h, 0, sizeof(*h));
}

void histogram_free(struct histogram *h)
{
	if (!h)
		return;
	histogram_reset(h);
	free(h);
}

size_t histogram_bytes(const struct histogram *h)
{
	size_t n = sizeof(*h);

	for (int c = 0; c < HIST_CHUNKS; c++)
		n += h->chunk[c] ? HIST_CHUNK * sizeof(float) : 0;
	return n;
}

/* Bucket i's weight slot, its chunk allocated if `make`; NULL if absent. */
static float *bucket(struct histogram *h, int i, int make)
{
	float **c = &h->chunk[i / HIST_CHUNK];

	if (!*c && make)
		*c = calloc(HIST_CHUNK, sizeof(float));
	return *c ? &(*c)[i % HIST_CHUNK] : NULL;
}

static double weight_at(const struct histogram *h, int i)
{
	const float *c = h->chunk[i / HIST_CHUNK];

	return c ? c[i % HIST_CHUNK] : 0;
}

int histogram_index(uint64_t v)
{
	int e, level;

	if (v < HIST_SUB)
		return (int)v;
	e = 63 - __builtin_clzll(v); /* >= 7 */
	level = e - 7;
	if (level >= HIST_LEVELS)
		return HIST_BUCKETS - 1; /* saturate: longer than 2.4 hours */
	return HIST_SUB + level * (HIST_SUB / 2) + (int)((v >> (level + 1)) - HIST_SUB / 2);
}

uint64_t histogram_lower(int i)
{
	int level;

	if (i < HIST_SUB)
		return i;
	level = (i - HIST_SUB) / (HIST_SUB / 2);
	return (uint64_t)((i - HIST_SUB) % (HIST_SUB / 2) + HIST_SUB / 2) << (level + 1);
}

uint64_t histogram_width(int i)
{
	return i < HIST_SUB ? 1 : 1ULL << ((i - HIST_SUB) / (HIST_SUB / 2) + 1);
}

int histogram_add(struct histogram *h, uint64_t ns, double weight)
{
	float *w;

	if (weight <= 0)
		return 0;
	if (!(w = bucket(h, histogram_index(ns), 1))) {
		h->lost++;
		return -ENOMEM;
	}
	if (h->total == 0 || ns < h->min_ns)
		h->min_ns = ns;
	if (ns > h->max_ns)
		h->max_ns = ns;
	*w += weight;
	h->total += weight;
	return 0;
}

/* Chunk by chunk: a chunk that cannot be allocated leaves its weight out
 * (counted), the rest is merged. */
int histogram_merge(struct histogram *into, const struct histogram *from)
{
	double before = into->total, missed = 0;
	int err = 0;

	if (from->total == 0)
		return 0;
	for (int c = 0; c < HIST_CHUNKS; c++) {
		const float *src = from->chunk[c];
		float *dst;

		if (!src)
			continue;
		if (!(dst = bucket(into, c * HIST_CHUNK, 1))) {
			for (int i = 0; i < HIST_CHUNK; i++)
				missed += src[i];
			into->lost++;
			err = -ENOMEM;
			continue;
		}
		for (int i = 0; i < HIST_CHUNK; i++)
			dst[i] += src[i];
	}
	into->total += err ? from->total - missed : from->total;
	if (into->total > before) {
		if (before == 0 || from->min_ns < into->min_ns)
			into->min_ns = from->min_ns;
		if (from->max_ns > into->max_ns)
			into->max_ns = from->max_ns;
	}
	return err;
}

uint64_t histogram_percentile(const struct histogram *h, double p)
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
		double w = weight_at(h, i);

		if (!h->chunk[i / HIST_CHUNK]) {
			i += HIST_CHUNK - 1; /* an empty chunk */
			continue;
		}
		seen += w;
		if (seen >= target && w > 0) {
			v = histogram_lower(i) + histogram_width(i) / 2;
			if (histogram_width(i) == 1)
				v = histogram_lower(i);
			if (v < h->min_ns)
				v = h->min_ns;
			if (v > h->max_ns)
				v = h->max_ns;
			return v;
		}
	}
	return h->max_ns;
}
