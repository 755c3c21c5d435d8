// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The latency histogram: bucket arithmetic checked for every bucket and for
 * the awkward values (powers of two and their neighbours, the saturating
 * top); nearest-rank percentiles compared with the exact value taken from
 * the sorted data, within 1%, on seeded random data (uniform, log-normal)
 * and on adversarial shapes (all equal, bimodal, one huge outlier, tiny
 * exact values); weights (a weight of 10 is ten adds, 1/rate weights against
 * a weighted exact rank); merging; and the empty histogram.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "failalloc.h"
#include "histogram.h"

#define MS 1000000ULL
#define SEC 1000000000ULL

static const double probes[] = { 0.5, 0.9, 0.95, 0.99, 0.999 };

/* splitmix64: small, seedable, good enough to spread test values. */
static uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static double rng_unit(uint64_t *s) /* [0, 1) */
{
	return (rng_next(s) >> 11) * 0x1.0p-53;
}

static double rng_normal(uint64_t *s) /* Box-Muller */
{
	double u = 1.0 - rng_unit(s), v = rng_unit(s);

	return sqrt(-2.0 * log(u)) * cos(2 * M_PI * v);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The exact nearest-rank percentile of sorted v[n]: the ceil(p*n)-th value. */
static uint64_t exact_rank(const uint64_t *v, size_t n, double p)
{
	size_t rank = (size_t)ceil(p * (double)n - 1e-9);

	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return v[rank - 1];
}

static struct histogram *hist_new(void)
{
	struct histogram *h = calloc(1, sizeof(*h));

	cr_assert_not_null(h);
	histogram_reset(h);
	return h;
}

/* Every bucket holds the same weight (an absent chunk is zeros). */
static int same_weights(const struct histogram *a, const struct histogram *b)
{
	for (int i = 0; i < HIST_BUCKETS; i++) {
		const float *x = a->chunk[i / HIST_CHUNK], *y = b->chunk[i / HIST_CHUNK];

		if ((x ? x[i % HIST_CHUNK] : 0) != (y ? y[i % HIST_CHUNK] : 0))
			return 0;
	}
	return 1;
}

/* Fills h with v[n], sorts v, and checks every probe against the exact rank. */
static void check_against_exact(const char *what, uint64_t *v, size_t n)
{
	struct histogram *h = hist_new();
	uint64_t prev = 0;

	for (size_t i = 0; i < n; i++)
		histogram_add(h, v[i], 1.0);
	qsort(v, n, sizeof(*v), cmp_u64);
	cr_assert_eq(h->total, (double)n, "%s: total %f", what, h->total);
	cr_assert_eq(h->min_ns, v[0], "%s: min", what);
	cr_assert_eq(h->max_ns, v[n - 1], "%s: max", what);
	cr_assert_eq(histogram_percentile(h, 0), v[0], "%s: p0 must be the exact min", what);
	cr_assert_eq(histogram_percentile(h, 1), v[n - 1], "%s: p100 must be the exact max", what);
	for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
		uint64_t want = exact_rank(v, n, probes[i]);
		uint64_t got = histogram_percentile(h, probes[i]);
		double err = fabs((double)got - (double)want) / (double)want;

		cr_assert_leq(err, 0.01, "%s: p%g = %llu, exact %llu (error %.3f%%)", what,
			      probes[i] * 100, (unsigned long long)got, (unsigned long long)want,
			      err * 100);
		cr_assert_geq(got, prev, "%s: percentiles must not decrease with p", what);
		prev = got;
	}
	histogram_free(h);
}

Test(histogram, every_bucket_is_contiguous_and_round_trips)
{
	uint64_t expect_lower = 0;

	for (int i = 0; i < HIST_BUCKETS; i++) {
		uint64_t lo = histogram_lower(i), w = histogram_width(i);

		cr_assert_eq(lo, expect_lower, "bucket %d starts at %llu, want %llu", i,
			     (unsigned long long)lo, (unsigned long long)expect_lower);
		cr_assert_gt(w, 0, "bucket %d has no width", i);
		cr_assert_eq(histogram_index(lo), i, "index(lower(%d)) = %d", i,
			     histogram_index(lo));
		cr_assert_eq(histogram_index(lo + w - 1), i, "index(upper(%d)) = %d", i,
			     histogram_index(lo + w - 1));
		/* The precision promise: exact below 128, else width <= lower / 64. */
		if (i < HIST_SUB)
			cr_assert_eq(w, 1, "bucket %d below %d must be exact", i, HIST_SUB);
		else
			cr_assert_leq(w * 64, lo, "bucket %d: width %llu too wide for %llu", i,
				      (unsigned long long)w, (unsigned long long)lo);
		expect_lower = lo + w;
	}
	/* The last bucket ends at 2^43: everything above saturates into it. */
	cr_assert_eq(expect_lower, 1ULL << 43);
}

static void check_value(uint64_t v)
{
	int i = histogram_index(v);

	cr_assert(i >= 0 && i < HIST_BUCKETS, "index(%llu) = %d out of range",
		  (unsigned long long)v, i);
	cr_assert_leq(histogram_lower(i), v, "lower(index(%llu)) = %llu", (unsigned long long)v,
		      (unsigned long long)histogram_lower(i));
	cr_assert_lt(v, histogram_lower(i) + histogram_width(i),
		     "%llu past bucket %d [%llu, +%llu)", (unsigned long long)v, i,
		     (unsigned long long)histogram_lower(i),
		     (unsigned long long)histogram_width(i));
}

Test(histogram, values_land_in_their_bucket)
{
	static const uint64_t fixed[] = { 0,
					  1,
					  2,
					  63,
					  64,
					  65,
					  127,
					  128,
					  129,
					  130,
					  254,
					  255,
					  256,
					  257,
					  1000,
					  999999,
					  1000000,
					  1ULL << 42,
					  (1ULL << 43) - 1 };
	uint64_t seed = 42;

	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		check_value(fixed[i]);
	for (int k = 1; k < 43; k++) {
		check_value((1ULL << k) - 1);
		check_value(1ULL << k);
		check_value((1ULL << k) + 1);
	}
	/* Random values of every magnitude below the saturation point. */
	for (int i = 0; i < 200000; i++) {
		int bits = 1 + (int)(rng_next(&seed) % 43);

		check_value(rng_next(&seed) >> (64 - bits));
	}
	cr_assert_eq(histogram_index(0), 0);
	cr_assert_eq(histogram_index(127), 127);
	cr_assert_eq(histogram_index(128), 128);
	cr_assert_eq(histogram_index(129), 128, "128 and 129 share a 2-wide bucket");
	cr_assert_eq(histogram_index(130), 129);
}

Test(histogram, huge_values_saturate_to_the_last_bucket)
{
	static const uint64_t big[] = { 1ULL << 43, (1ULL << 43) + 1, 1ULL << 50, 1ULL << 63,
					UINT64_MAX };

	for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++)
		cr_assert_eq(histogram_index(big[i]), HIST_BUCKETS - 1, "index(%llu) = %d",
			     (unsigned long long)big[i], histogram_index(big[i]));

	/* The extremes stay exact even when the bucket saturates. */
	struct histogram *h = hist_new();

	histogram_add(h, UINT64_MAX, 1);
	histogram_add(h, 5 * MS, 1);
	cr_assert_eq(h->max_ns, UINT64_MAX);
	cr_assert_eq(histogram_percentile(h, 1.0), UINT64_MAX);
	/* Beyond 2^43 precision is given up by design: only "very long" is promised. */
	cr_assert_geq(histogram_percentile(h, 0.99), histogram_lower(HIST_BUCKETS - 1));
	cr_assert_eq(histogram_percentile(h, 0), 5 * MS);
	cr_assert(histogram_percentile(h, 0.5) >= 5 * MS &&
		  histogram_percentile(h, 0.5) <= 5050000);
	histogram_free(h);
}

Test(histogram, empty_is_zero)
{
	struct histogram *h = hist_new();

	for (double p = 0; p <= 1.0; p += 0.125)
		cr_assert_eq(histogram_percentile(h, p), 0, "empty p%g", p * 100);
	/* Weights of zero or less are not observations. */
	histogram_add(h, 5 * MS, 0);
	histogram_add(h, 7 * MS, -1);
	cr_assert_eq(h->total, 0);
	cr_assert_eq(histogram_percentile(h, 0.5), 0);
	cr_assert_eq(h->max_ns, 0);
	histogram_add(h, 5 * MS, 1);
	histogram_reset(h);
	cr_assert_eq(histogram_percentile(h, 0.5), 0, "reset must empty it");
	histogram_free(h);
}

Test(histogram, uniform_random_matches_exact_ranks)
{
	size_t n = 100000;
	uint64_t *v = malloc(n * sizeof(*v)), seed = 0x5eed0001;

	cr_assert_not_null(v);
	for (size_t i = 0; i < n; i++)
		v[i] = 1000 + rng_next(&seed) % (1000000000ULL - 1000 + 1);
	check_against_exact("uniform [1us, 1s]", v, n);
	free(v);
}

Test(histogram, lognormal_matches_exact_ranks)
{
	size_t n = 100000;
	uint64_t *v = malloc(n * sizeof(*v)), seed = 0x5eed0002;

	cr_assert_not_null(v);
	/* Median 5 ms, sigma 1.5: spans ~50 us to seconds, like real latencies. */
	for (size_t i = 0; i < n; i++)
		v[i] = (uint64_t)(5e6 * exp(1.5 * rng_normal(&seed)));
	check_against_exact("log-normal", v, n);
	free(v);
}

Test(histogram, all_equal_is_exact)
{
	struct histogram *h = hist_new();
	const uint64_t x = 1234567;

	for (int i = 0; i < 1000; i++)
		histogram_add(h, x, 1);
	for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++)
		cr_assert_eq(histogram_percentile(h, probes[i]), x, "p%g of 1000 x %llu = %llu",
			     probes[i] * 100, (unsigned long long)x,
			     (unsigned long long)histogram_percentile(h, probes[i]));
	cr_assert_eq(histogram_percentile(h, 0), x);
	cr_assert_eq(histogram_percentile(h, 1), x);
	histogram_free(h);
}

Test(histogram, small_values_are_exact)
{
	uint64_t v[100];

	for (int i = 0; i < 100; i++)
		v[i] = 100 - i; /* 1..100, fed in reverse */
	check_against_exact("1..100", v, 100);

	struct histogram *h = hist_new();

	for (int i = 1; i <= 100; i++)
		histogram_add(h, i, 1);
	cr_assert_eq(histogram_percentile(h, 0.5), 50);
	cr_assert_eq(histogram_percentile(h, 0.9), 90);
	cr_assert_eq(histogram_percentile(h, 0.99), 99);
	cr_assert_eq(histogram_percentile(h, 0.001), 1);
	histogram_free(h);
}

Test(histogram, bimodal)
{
	size_t n = 20000;
	uint64_t *v = malloc(n * sizeof(*v)), seed = 0x5eed0003;
	struct histogram *h = hist_new();

	cr_assert_not_null(v);
	/* Half ~1 ms (0.9-1.1), half ~100 ms (90-110), interleaved. */
	for (size_t i = 0; i < n; i++) {
		uint64_t base = i % 2 ? 100 * MS : 1 * MS;

		v[i] = base * 9 / 10 + rng_next(&seed) % (base / 5 + 1);
		histogram_add(h, v[i], 1);
	}
	cr_assert(histogram_percentile(h, 0.5) >= 900000 && histogram_percentile(h, 0.5) <= 1110000,
		  "bimodal p50 %llu is not ~1 ms",
		  (unsigned long long)histogram_percentile(h, 0.5));
	cr_assert(histogram_percentile(h, 0.95) >= 90 * MS &&
			  histogram_percentile(h, 0.95) <= 111 * MS,
		  "bimodal p95 %llu is not ~100 ms",
		  (unsigned long long)histogram_percentile(h, 0.95));
	check_against_exact("bimodal", v, n);
	histogram_free(h);
	free(v);
}

Test(histogram, one_huge_outlier)
{
	uint64_t v[1000];
	struct histogram *h = hist_new();

	for (int i = 0; i < 999; i++)
		v[i] = 1 * MS;
	v[999] = 60 * SEC;
	for (int i = 0; i < 1000; i++)
		histogram_add(h, v[i], 1);
	cr_assert_eq(h->max_ns, 60 * SEC);
	cr_assert_eq(histogram_percentile(h, 1.0), 60 * SEC, "max must be exactly 60 s");
	for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
		uint64_t got = histogram_percentile(h, probes[i]);

		cr_assert(got >= 990000 && got <= 1010000, "p%g = %llu, want ~1 ms",
			  probes[i] * 100, (unsigned long long)got);
	}
	/* Just past 999/1000 of the weight the outlier is the answer. */
	cr_assert_geq(histogram_percentile(h, 0.9995), 59.4e9);
	check_against_exact("outlier", v, 1000);
	histogram_free(h);
}

Test(histogram, weight_ten_equals_ten_adds)
{
	struct histogram *a = hist_new(), *b = hist_new();
	uint64_t seed = 0x5eed0004;

	for (int i = 0; i < 5000; i++) {
		uint64_t ns = 1000 + rng_next(&seed) % (2 * SEC);

		histogram_add(a, ns, 10.0);
		for (int k = 0; k < 10; k++)
			histogram_add(b, ns, 1.0);
	}
	cr_assert_eq(a->total, b->total);
	cr_assert_eq(a->total, 50000);
	cr_assert_eq(a->min_ns, b->min_ns);
	cr_assert_eq(a->max_ns, b->max_ns);
	cr_assert(same_weights(a, b), "bucket weights differ");
	for (int p = 1; p < 1000; p++)
		cr_assert_eq(histogram_percentile(a, p / 1000.0),
			     histogram_percentile(b, p / 1000.0), "p%g differs", p / 10.0);
	histogram_free(a);
	histogram_free(b);
}

struct wv {
	uint64_t ns;
	double w;
};

static int cmp_wv(const void *a, const void *b)
{
	return cmp_u64(&((const struct wv *)a)->ns, &((const struct wv *)b)->ns);
}

/* Sampled records weigh 1/rate: the percentile is the weighted nearest rank. */
Test(histogram, sampling_weights_match_weighted_exact_ranks)
{
	static const double rates[] = { 1.0, 0.5, 0.1, 0.01 };
	size_t n = 20000;
	struct wv *v = malloc(n * sizeof(*v));
	struct histogram *h = hist_new();
	uint64_t seed = 0x5eed0005;
	double total = 0;

	cr_assert_not_null(v);
	for (size_t i = 0; i < n; i++) {
		/* Slow requests are sampled more sparsely, so weights matter. */
		double rate = rates[rng_next(&seed) % 4];

		v[i].ns = (uint64_t)((rate < 0.2 ? 80e6 : 2e6) * exp(0.5 * rng_normal(&seed)));
		v[i].w = 1.0 / rate;
		histogram_add(h, v[i].ns, v[i].w);
		total += v[i].w;
	}
	qsort(v, n, sizeof(*v), cmp_wv);
	cr_assert_lt(fabs(h->total - total), 1e-6 * total);
	for (size_t k = 0; k < sizeof(probes) / sizeof(probes[0]); k++) {
		double seen = 0, target = probes[k] * total;
		uint64_t want = v[n - 1].ns, got = histogram_percentile(h, probes[k]);

		for (size_t i = 0; i < n; i++) {
			seen += v[i].w;
			if (seen >= target * (1 - 1e-12)) {
				want = v[i].ns;
				break;
			}
		}
		cr_assert_leq(fabs((double)got - (double)want) / (double)want, 0.01,
			      "weighted p%g = %llu, exact %llu", probes[k] * 100,
			      (unsigned long long)got, (unsigned long long)want);
	}
	histogram_free(h);
	free(v);
}

Test(histogram, merge_equals_adding_into_one)
{
	struct histogram *parts[3], *merged = hist_new(), *one = hist_new();
	uint64_t seed = 0x5eed0006;

	for (int k = 0; k < 3; k++)
		parts[k] = hist_new();
	for (int i = 0; i < 30000; i++) {
		/* Each part gets a different range, so min and max come from different parts. */
		int k = (int)(rng_next(&seed) % 3);
		uint64_t ns =
			(uint64_t)(k + 1) * 1000 + rng_next(&seed) % ((uint64_t)(k + 1) * SEC);

		histogram_add(parts[k], ns, 1);
		histogram_add(one, ns, 1);
	}
	for (int k = 0; k < 3; k++)
		histogram_merge(merged, parts[k]);
	cr_assert_eq(merged->total, one->total);
	cr_assert_eq(merged->min_ns, one->min_ns, "merged min %llu, want %llu",
		     (unsigned long long)merged->min_ns, (unsigned long long)one->min_ns);
	cr_assert_eq(merged->max_ns, one->max_ns);
	cr_assert(same_weights(merged, one), "bucket weights differ");
	for (int p = 0; p <= 1000; p++)
		cr_assert_eq(histogram_percentile(merged, p / 1000.0),
			     histogram_percentile(one, p / 1000.0));
	for (int k = 0; k < 3; k++)
		histogram_free(parts[k]);
	histogram_free(merged);
	histogram_free(one);
}

Test(histogram, merge_with_empty_keeps_the_extremes)
{
	struct histogram *a = hist_new(), *empty = hist_new(), *into = hist_new();

	histogram_add(a, 5000, 1);
	histogram_add(a, 9000, 1);
	/* Merging into an empty histogram must not keep its min of 0. */
	histogram_merge(into, a);
	cr_assert_eq(into->min_ns, 5000);
	cr_assert_eq(into->max_ns, 9000);
	cr_assert_eq(histogram_percentile(into, 0), 5000);
	/* Merging an empty one changes nothing. */
	histogram_merge(into, empty);
	cr_assert_eq(into->min_ns, 5000);
	cr_assert_eq(into->total, 2);
	histogram_merge(empty, empty);
	cr_assert_eq(histogram_percentile(empty, 0.5), 0);
	histogram_free(a);
	histogram_free(empty);
	histogram_free(into);
}

/* Latencies of one route span a few powers of two: a few chunks, not all. */
Test(histogram, memory_follows_the_values)
{
	struct histogram *h = hist_new();
	uint64_t seed = 0x5eed0009;

	cr_assert_eq(histogram_bytes(h), sizeof(*h));
	for (int i = 0; i < 100000; i++)
		histogram_add(h, MS + rng_next(&seed) % (9 * MS), 1); /* 1-10 ms */
	cr_assert_leq(histogram_bytes(h), sizeof(*h) + 5 * HIST_CHUNK * sizeof(float),
		      "%zu bytes for 1-10 ms", histogram_bytes(h));
	histogram_reset(h);
	cr_assert_eq(histogram_bytes(h), sizeof(*h), "a reset gives the chunks back");
	histogram_free(h);
}

/* A chunk that cannot be allocated: the value is left out and counted, and
 * the histogram stays consistent (totals, extremes, percentiles). */
Test(histogram, failed_chunk_allocation)
{
	struct histogram *h = hist_new(), *into = hist_new();

	if (!failalloc_available())
		cr_skip_test("sanitizer build: allocations cannot be made to fail");
	cr_assert_eq(histogram_add(h, 5 * MS, 1), 0);
	failalloc_arm(0);
	cr_assert_eq(histogram_add(h, 50 * SEC, 1), -ENOMEM);
	failalloc_disarm();
	cr_assert(failalloc_fired());
	cr_assert_eq(h->lost, 1);
	cr_assert_eq(h->total, 1);
	cr_assert_eq(h->max_ns, 5 * MS, "a refused value is no extreme");
	cr_assert_eq(histogram_percentile(h, 0.99), 5 * MS);
	cr_assert_eq(histogram_add(h, 50 * SEC, 1), 0, "allocated next time");
	failalloc_arm(0);
	cr_assert_eq(histogram_merge(into, h), -ENOMEM);
	failalloc_disarm();
	cr_assert_eq(into->total, 1, "one chunk merged, one refused");
	cr_assert_eq(into->lost, 1);
	histogram_free(h);
	histogram_free(into);
}
