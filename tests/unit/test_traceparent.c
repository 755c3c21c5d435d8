// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * W3C Trace Context: the spec's own example header is accepted, every rule
 * violation (upper case, all-zero ids, version ff, length, separators,
 * non-hex, version 00 with a suffix) is rejected and leaves the outputs
 * alone, a future version with extra fields and surrounding whitespace are
 * accepted.  Fresh ids are lowercase hex of the exact width, reproducible
 * under traceparent_seed(), and do not repeat over 10000 draws.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "traceparent.h"

#define EXAMPLE "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

static int parse(const char *s, char trace[33], char parent[17])
{
	return traceparent_parse(s, strlen(s), trace, parent);
}

Test(traceparent, w3c_example)
{
	char trace[33], parent[17];

	cr_assert_eq(parse(EXAMPLE, trace, parent), 0);
	cr_assert_str_eq(trace, "4bf92f3577b34da6a3ce929d0e0e4736");
	cr_assert_str_eq(parent, "00f067aa0ba902b7");
	cr_assert_eq(parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", trace,
			   parent),
		     0, "unsampled flags");
}

Test(traceparent, rejects)
{
	static const char *const bad[] = {
		"",
		"00",
		"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",  /* upper trace */
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",  /* upper parent */
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0A",  /* upper flags */
		"0A-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  /* upper version */
		"00-00000000000000000000000000000000-00f067aa0ba902b7-01",  /* zero trace */
		"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",  /* zero parent */
		"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  /* version ff */
		"00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",   /* short trace */
		"00-4bf92f3577b34da6a3ce929d0e0e47366-00f067aa0ba902b7-01", /* long trace */
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b-01",   /* short parent */
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",   /* short flags */
		"00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",  /* separator */
		"00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7_01",
		"00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01", /* non-hex */
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902bz-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x",
		"0x-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", /* 00 + suffix */
		"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-010",
		"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01extra", /* no '-' */
		"00-4bf92f3577b34da6a3ce929d0e0e4736 -00f067aa0ba902b7-01",
	};
	char trace[33] = "untouched", parent[17] = "untouched";

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		cr_assert_eq(parse(bad[i], trace, parent), -EINVAL, "accepted \"%s\"", bad[i]);
		cr_assert_str_eq(trace, "untouched");
		cr_assert_str_eq(parent, "untouched");
	}
}

Test(traceparent, future_version_with_suffix)
{
	char trace[33], parent[17];

	cr_assert_eq(parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra", trace,
			   parent),
		     0);
	cr_assert_str_eq(trace, "4bf92f3577b34da6a3ce929d0e0e4736");
	cr_assert_str_eq(parent, "00f067aa0ba902b7");
	cr_assert_eq(parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", trace,
			   parent),
		     0, "future version, exact length");
}

Test(traceparent, surrounding_whitespace)
{
	char trace[33], parent[17];

	cr_assert_eq(parse("  " EXAMPLE " \t", trace, parent), 0);
	cr_assert_str_eq(trace, "4bf92f3577b34da6a3ce929d0e0e4736");
	cr_assert_eq(parse("\t" EXAMPLE, trace, parent), 0);
}

Test(traceparent, length_argument_is_respected)
{
	/* The header is not NUL terminated where len ends. */
	char s[] = EXAMPLE "-ffff", trace[33], parent[17];

	cr_assert_eq(traceparent_parse(s, 55, trace, parent), 0);
	cr_assert_str_eq(parent, "00f067aa0ba902b7");
	cr_assert_eq(traceparent_parse(s, 54, trace, parent), -EINVAL);
	cr_assert_eq(traceparent_parse(s, 0, trace, parent), -EINVAL);
}

static void assert_lower_hex(const char *s, size_t n)
{
	cr_assert_eq(strlen(s), n, "\"%s\" is not %zu chars", s, n);
	cr_assert_eq(strspn(s, "0123456789abcdef"), n, "\"%s\" is not lowercase hex", s);
	cr_assert_neq(strspn(s, "0"), n, "all-zero id");
}

Test(traceparent, fresh_ids_are_valid_and_parse)
{
	char trace[33], span[17], hdr[64], t2[33], p2[17];

	traceparent_seed(7);
	for (int i = 0; i < 100; i++) {
		traceparent_new_trace_id(trace);
		traceparent_new_span_id(span);
		assert_lower_hex(trace, 32);
		assert_lower_hex(span, 16);
		snprintf(hdr, sizeof(hdr), "00-%s-%s-01", trace, span);
		cr_assert_eq(parse(hdr, t2, p2), 0, "%s", hdr);
		cr_assert_str_eq(t2, trace);
		cr_assert_str_eq(p2, span);
	}
}

static void draw(uint64_t seed, char trace[4][33], char span[4][17])
{
	traceparent_seed(seed);
	for (int i = 0; i < 4; i++) {
		traceparent_new_trace_id(trace[i]);
		traceparent_new_span_id(span[i]);
	}
}

Test(traceparent, seeded_ids_are_reproducible)
{
	char t1[4][33], s1[4][17], t2[4][33], s2[4][17], t3[4][33], s3[4][17];

	draw(42, t1, s1);
	draw(43, t3, s3);
	draw(42, t2, s2);
	for (int i = 0; i < 4; i++) {
		cr_assert_str_eq(t1[i], t2[i], "seed 42 draw %d", i);
		cr_assert_str_eq(s1[i], s2[i], "seed 42 draw %d", i);
		cr_assert_str_neq(t1[i], t3[i], "seeds 42 and 43 agree at draw %d", i);
		cr_assert_str_neq(s1[i], s3[i], "seeds 42 and 43 agree at draw %d", i);
	}
	/* Ids within one stream differ from each other. */
	cr_assert_str_neq(t1[0], t1[1]);
	cr_assert_str_neq(s1[0], s1[1]);
}

static int cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

Test(traceparent, no_duplicates_in_10000)
{
	enum { N = 10000 };
	static char traces[N][33], spans[N][17];

	traceparent_seed(42);
	for (int i = 0; i < N; i++) {
		traceparent_new_trace_id(traces[i]);
		traceparent_new_span_id(spans[i]);
	}
	qsort(traces, N, sizeof(traces[0]), cmp);
	qsort(spans, N, sizeof(spans[0]), cmp);
	for (int i = 1; i < N; i++) {
		cr_assert_str_neq(traces[i - 1], traces[i], "duplicate trace id");
		cr_assert_str_neq(spans[i - 1], spans[i], "duplicate span id");
	}
}

Test(traceparent, unseeded_generator_works)
{
	/* Each test runs in a fresh process, so this is the getrandom path. */
	char a[33], b[33];

	traceparent_new_trace_id(a);
	traceparent_new_trace_id(b);
	assert_lower_hex(a, 32);
	assert_lower_hex(b, 32);
	cr_assert_str_neq(a, b);
}

/* An independent xoshiro256** seeded by splitmix64 (the published reference
 * algorithms), so the ids' digits are checked against printf's. */
static uint64_t ref_s[4];

static uint64_t ref_rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static void ref_seed(uint64_t seed)
{
	for (int i = 0; i < 4; i++) {
		uint64_t z = (seed += 0x9e3779b97f4a7c15ULL);

		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
		ref_s[i] = z ^ (z >> 31);
	}
}

static uint64_t ref_next(void)
{
	uint64_t result = ref_rotl(ref_s[1] * 5, 7) * 9, t = ref_s[1] << 17;

	ref_s[2] ^= ref_s[0];
	ref_s[3] ^= ref_s[1];
	ref_s[1] ^= ref_s[2];
	ref_s[0] ^= ref_s[3];
	ref_s[2] ^= t;
	ref_s[3] = ref_rotl(ref_s[3], 45);
	return result;
}

Test(traceparent, fresh_ids_are_the_generators_words_in_hex)
{
	char trace[33], span[17], want[33];

	traceparent_seed(20240611);
	ref_seed(20240611);
	for (int i = 0; i < 1000; i++) {
		uint64_t hi = ref_next(), lo = ref_next(), s = ref_next();

		traceparent_new_trace_id(trace);
		traceparent_new_span_id(span);
		snprintf(want, sizeof(want), "%016llx%016llx", (unsigned long long)hi,
			 (unsigned long long)lo);
		cr_assert_str_eq(trace, want, "trace id %d", i);
		snprintf(want, sizeof(want), "%016llx", (unsigned long long)s);
		cr_assert_str_eq(span, want, "span id %d", i);
	}
}
