// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * libFuzzer target: traceparent_parse (src/pipeline/traceparent.c) on header bytes
 * that are not NUL terminated (libFuzzer's exact-size buffer, so ASan sees
 * any read past `len`).  Differential: a second, plain reading of the W3C
 * Trace Context rules must agree on accept/reject and on the ids.  And ids
 * made by trace_new_*_id, seeded from the input, must parse back.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "traceparent.h"

static int lhex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

/* hex digits at s[0..n), not all zero when nonzero is asked */
static int field(const char *s, size_t n, int nonzero)
{
	int any = 0;

	for (size_t i = 0; i < n; i++) {
		if (!lhex(s[i]))
			return 0;
		any |= s[i] != '0';
	}
	return !nonzero || any;
}

/* version "-" trace-id "-" parent-id "-" flags, after trimming SP and HTAB;
 * version ff is invalid, version 00 has nothing after the flags, a later
 * version may continue after a '-'. */
static int reference(const char *s, size_t len)
{
	size_t a = 0, b = len;

	while (a < b && (s[a] == ' ' || s[a] == '\t'))
		a++;
	while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t'))
		b--;
	s += a;
	len = b - a;
	if (len < 55 || !field(s, 2, 0) || (s[0] == 'f' && s[1] == 'f'))
		return 0;
	if (s[2] != '-' || !field(s + 3, 32, 1) || s[35] != '-' || !field(s + 36, 16, 1) ||
	    s[52] != '-' || !field(s + 53, 2, 0))
		return 0;
	if (s[0] == '0' && s[1] == '0')
		return len == 55;
	return len == 55 || s[55] == '-';
}

static void round_trip(uint64_t seed)
{
	char trace[33], span[17], header[56], t2[33], p2[17];

	traceparent_seed(seed);
	traceparent_new_trace_id(trace);
	traceparent_new_span_id(span);
	memcpy(header, "00-", 3);
	memcpy(header + 3, trace, 32);
	header[35] = '-';
	memcpy(header + 36, span, 16);
	memcpy(header + 52, "-01", 3);
	if (traceparent_parse(header, 55, t2, p2) || strcmp(t2, trace) || strcmp(p2, span))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *s = (const char *)data;
	char trace[33], parent[17];
	int rc = traceparent_parse(s, size, trace, parent);
	int ok = reference(s, size);
	uint64_t seed = 0;

	if (rc != (ok ? 0 : -EINVAL))
		abort();
	if (ok) {
		const char *p = s;

		while (*p == ' ' || *p == '\t')
			p++;
		if (strlen(trace) != 32 || strlen(parent) != 16 || memcmp(trace, p + 3, 32) ||
		    memcmp(parent, p + 36, 16))
			abort();
	}
	memcpy(&seed, data, size < sizeof(seed) ? size : sizeof(seed));
	round_trip(seed | 1); /* 0 would ask getrandom: keep runs reproducible */
	return 0;
}
