// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * SipHash-c-d over a byte string, the way CPython's Python/pyhash.c feeds it
 * (little-endian words, the length in the top byte of the last block), and
 * the str-hash conventions around it.  Written from the SipHash paper's
 * description; checked against real interpreters in tests/unit/test_pyhash.c.
 */
#include <string.h>
#include "pyhash.h"

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

struct sip {
	uint64_t v0, v1, v2, v3;
};

static void sip_round(struct sip *s)
{
	s->v0 += s->v1;
	s->v1 = ROTL(s->v1, 13);
	s->v1 ^= s->v0;
	s->v0 = ROTL(s->v0, 32);
	s->v2 += s->v3;
	s->v3 = ROTL(s->v3, 16);
	s->v3 ^= s->v2;
	s->v0 += s->v3;
	s->v3 = ROTL(s->v3, 21);
	s->v3 ^= s->v0;
	s->v2 += s->v1;
	s->v1 = ROTL(s->v1, 17);
	s->v1 ^= s->v2;
	s->v2 = ROTL(s->v2, 32);
}

static void sip_block(struct sip *s, uint64_t m, int crounds)
{
	s->v3 ^= m;
	for (int i = 0; i < crounds; i++)
		sip_round(s);
	s->v0 ^= m;
}

static uint64_t le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint64_t siphash(int crounds, int drounds, uint64_t k0, uint64_t k1, const uint8_t *in,
			size_t len)
{
	struct sip s = { k0 ^ 0x736f6d6570736575ULL, k1 ^ 0x646f72616e646f6dULL,
			 k0 ^ 0x6c7967656e657261ULL, k1 ^ 0x7465646279746573ULL };
	uint8_t last[8] = { 0 };
	size_t full = len / 8 * 8;

	for (size_t off = 0; off < full; off += 8)
		sip_block(&s, le64(in + off), crounds);
	memcpy(last, in + full, len - full);
	sip_block(&s, le64(last) | (uint64_t)(len & 0xff) << 56, crounds);
	s.v2 ^= 0xff;
	for (int i = 0; i < drounds; i++)
		sip_round(&s);
	return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

enum pyhash_alg pyhash_alg_for(unsigned int minor)
{
	return minor >= 11 ? PYHASH_SIPHASH13 : PYHASH_SIPHASH24;
}

int64_t pyhash_ascii(enum pyhash_alg alg, const uint8_t secret[16], const char *s, size_t len)
{
	int64_t h;

	if (len == 0)
		return 0;
	h = (int64_t)siphash(alg == PYHASH_SIPHASH13 ? 1 : 2, alg == PYHASH_SIPHASH13 ? 3 : 4,
			     le64(secret), le64(secret + 8), (const uint8_t *)s, len);
	return h == -1 ? -2 : h;
}
