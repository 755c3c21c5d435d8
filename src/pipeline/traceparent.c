// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Trace ids.  Parsing follows the W3C Trace Context rules strictly: a header
 * that fails any rule is ignored and the request gets a fresh trace id, as a
 * conforming tracer would do.  Fresh ids come from xoshiro256** seeded by
 * getrandom(2): one syscall per run instead of one per request.
 */
#include <errno.h>
#include <string.h>
#include <sys/random.h>
#include "traceparent.h"

static uint64_t rng[4];
static int seeded;

static int is_lower_hex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

static int all_zero(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != '0')
			return 0;
	return 1;
}

int traceparent_parse(const char *s, size_t len, char trace_id[33], char parent_id[17])
{
	/* Optional surrounding whitespace is allowed by RFC 9110 field values. */
	while (len && (*s == ' ' || *s == '\t'))
		s++, len--;
	while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
		len--;
	if (len < 55 || s[2] != '-' || s[35] != '-' || s[52] != '-')
		return -EINVAL;
	if (!is_lower_hex(s, 2) || memcmp(s, "ff", 2) == 0)
		return -EINVAL;
	/* Version 00 is exactly 55 chars; later versions may append "-...". */
	if ((memcmp(s, "00", 2) == 0 && len != 55) || (len > 55 && s[55] != '-'))
		return -EINVAL;
	if (!is_lower_hex(s + 3, 32) || !is_lower_hex(s + 36, 16) || !is_lower_hex(s + 53, 2))
		return -EINVAL;
	if (all_zero(s + 3, 32) || all_zero(s + 36, 16))
		return -EINVAL;
	memcpy(trace_id, s + 3, 32);
	trace_id[32] = 0;
	memcpy(parent_id, s + 36, 16);
	parent_id[16] = 0;
	return 0;
}

static uint64_t rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

static uint64_t next_u64(void)
{
	uint64_t result, t;

	if (!seeded)
		traceparent_seed(0);
	result = rotl(rng[1] * 5, 7) * 9;
	t = rng[1] << 17;
	rng[2] ^= rng[0];
	rng[3] ^= rng[1];
	rng[1] ^= rng[2];
	rng[0] ^= rng[3];
	rng[2] ^= t;
	rng[3] = rotl(rng[3], 45);
	return result;
}

void traceparent_seed(uint64_t seed)
{
	/* splitmix64 expands one word into the four of state. */
	if (seed == 0 && getrandom(&seed, sizeof(seed), 0) != sizeof(seed))
		seed = (uint64_t)(uintptr_t)&seed ^ 0x9e3779b97f4a7c15ULL;
	for (int i = 0; i < 4; i++) {
		uint64_t z = (seed += 0x9e3779b97f4a7c15ULL);

		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
		rng[i] = z ^ (z >> 31);
	}
	seeded = 1;
}

/* v as 16 lowercase hex digits, a byte (two digits) a step. */
static void hex64(uint64_t v, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (int i = 14; i >= 0; i -= 2, v >>= 8) {
		out[i] = digits[(v >> 4) & 15];
		out[i + 1] = digits[v & 15];
	}
}

void traceparent_new_trace_id(char out[33])
{
	uint64_t hi, lo;

	do {
		hi = next_u64();
		lo = next_u64();
	} while (!hi && !lo);
	hex64(hi, out);
	hex64(lo, out + 16);
	out[32] = 0;
}

void traceparent_new_span_id(char out[17])
{
	uint64_t v;

	do
		v = next_u64();
	while (!v);
	hex64(v, out);
	out[16] = 0;
}
