// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Golden test of pystr_to_utf8's ASCII fast path: its output must equal,
 * byte for byte and in length, that of the previous decoder (one code unit
 * at a time), kept below verbatim as the REFERENCE (ref_*), for 200,000
 * seeded random strs of every kind: ASCII runs of every length around the
 * 8-byte word, latin-1 and invalid UTF-8 bytes, surrogates, values past
 * U+10FFFF, copied lengths past the data, odd lengths for kinds 2 and 4,
 * and output buffers from 0 bytes up, so every place a run is cut by a full
 * buffer is covered.
 */
#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include "pystr.h"

/* ---------- REFERENCE: the previous decoder, unchanged but renamed ---------- */

static size_t ref_put_utf8(uint32_t cp, char *out, size_t room)
{
	if (cp >= 0xd800 && cp <= 0xdfff)
		cp = 0xfffd; /* lone surrogates (surrogateescape) are not text */
	if (cp > 0x10ffff)
		cp = 0xfffd;
	if (cp < 0x80 && room >= 1) {
		out[0] = cp;
		return 1;
	}
	if (cp < 0x800 && room >= 2) {
		out[0] = 0xc0 | (cp >> 6);
		out[1] = 0x80 | (cp & 0x3f);
		return 2;
	}
	if (cp < 0x10000 && cp >= 0x800 && room >= 3) {
		out[0] = 0xe0 | (cp >> 12);
		out[1] = 0x80 | ((cp >> 6) & 0x3f);
		out[2] = 0x80 | (cp & 0x3f);
		return 3;
	}
	if (cp >= 0x10000 && room >= 4) {
		out[0] = 0xf0 | (cp >> 18);
		out[1] = 0x80 | ((cp >> 12) & 0x3f);
		out[2] = 0x80 | ((cp >> 6) & 0x3f);
		out[3] = 0x80 | (cp & 0x3f);
		return 4;
	}
	return 0;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when invalid. */
static size_t ref_utf8_valid_seq(const unsigned char *s, size_t n)
{
	size_t need;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		need = 2, cp = s[0] & 0x1f;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		need = 3, cp = s[0] & 0x0f;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		need = 4, cp = s[0] & 0x07;
	else
		return 0;
	if (n < need)
		return 0;
	for (size_t i = 1; i < need; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* Overlong forms, surrogates and values past U+10FFFF. */
	if ((need == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (need == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return need;
}

static size_t ref_bytes_to_utf8(const unsigned char *b, size_t n, char *out, size_t out_size)
{
	size_t o = 0, i = 0;

	while (i < n) {
		size_t len = ref_utf8_valid_seq(b + i, n - i), w;

		if (len) {
			if (o + len >= out_size)
				break;
			memcpy(out + o, b + i, len);
			o += len;
			i += len;
			continue;
		}
		w = ref_put_utf8(0xfffd, out + o, out_size - o - 1);
		if (!w)
			break;
		o += w;
		i++;
	}
	out[o] = 0;
	return o;
}

static size_t ref_pystr_to_utf8(const struct pbpf_str_hdr *hdr, const char *data, size_t data_size,
				bool wsgi_bytes, char *out, size_t out_size)
{
	size_t units, o = 0, copied = hdr->copied;
	unsigned int kind = hdr->kind;

	if (out_size == 0)
		return 0;
	out[0] = 0;
	if (kind != 1 && kind != 2 && kind != 4)
		return 0;
	if (copied > data_size)
		copied = data_size;
	units = copied / kind;
	if (kind == 1 && wsgi_bytes)
		return ref_bytes_to_utf8((const unsigned char *)data, units, out, out_size);
	for (size_t i = 0; i < units; i++) {
		uint32_t cp = 0;
		size_t w;

		memcpy(&cp, data + i * kind, kind); /* little-endian code unit */
		w = ref_put_utf8(cp, out + o, out_size - o - 1);
		if (!w)
			break;
		o += w;
	}
	out[o] = 0;
	return o;
}

/* ---------- the corpus ---------- */

static uint64_t next(uint64_t *s)
{
	*s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
	return *s >> 33;
}

/* Mostly ASCII runs, with every kind of hostile code unit among them. */
static void fill(uint64_t *rng, unsigned char *b, size_t n, unsigned kind)
{
	static const uint32_t odd[] = { 0x80,	 0xe9,	   0xff,     0x3bb,	0x7ff,
					0x800,	 0xd800,   0xdfff,   0xfffd,	0xffff,
					0x10000, 0x10ffff, 0x110000, 0xffffffff };
	size_t units = n / kind;

	for (size_t i = 0; i < units; i++) {
		uint32_t r = next(rng), cp;

		if (r % 16 < 13)
			cp = 0x20 + r / 16 % 0x5f; /* printable ASCII */
		else if (r % 16 == 13)
			cp = r / 16 % 0x80; /* any ASCII, NUL and DEL included */
		else if (kind == 1)
			cp = 0x80 + r / 16 % 0x80; /* a byte UTF-8 may or may not continue */
		else
			cp = odd[r / 16 % (sizeof(odd) / sizeof(odd[0]))];
		memcpy(b + i * kind, &cp, kind);
	}
}

/* A valid multi-byte UTF-8 sequence somewhere, so WSGI bytes keep some. */
static void plant_utf8(uint64_t *rng, unsigned char *b, size_t n)
{
	static const char *const seqs[] = { "\xc3\xa9",	    "\xe2\x80\xa8", "\xf0\x9f\x98\x80",
					    "\xe0\x80\x80", "\xed\xa0\x80", "\xf4\x90\x80\x80" };
	const char *s = seqs[next(rng) % 6];
	size_t len = strlen(s);

	if (n >= len)
		memcpy(b + next(rng) % (n - len + 1), s, len);
}

Test(pystr_golden, equals_the_previous_decoder)
{
	static const unsigned kinds[] = { 1, 1, 1, 2, 4 };
	unsigned char data[96];
	char got[300], want[300];
	uint64_t rng = 15;

	for (int iter = 0; iter < 200000; iter++) {
		unsigned kind = kinds[next(&rng) % 5];
		size_t n = next(&rng) % (sizeof(data) + 1),
		       out_size = next(&rng) % 4 ? 300 : next(&rng) % 40;
		struct pbpf_str_hdr h = { .kind = kind, .len = n / kind + next(&rng) % 3 };
		bool wsgi = next(&rng) & 1;
		size_t g, w;

		fill(&rng, data, sizeof(data), kind);
		if (kind == 1 && next(&rng) % 2)
			plant_utf8(&rng, data, n);
		h.copied = next(&rng) % 8 ? n : n + next(&rng) % 64; /* past the data: clamped */
		memset(got, 0x55, sizeof(got));
		memset(want, 0x55, sizeof(want));
		g = pystr_to_utf8(&h, (const char *)data, n, wsgi, got, out_size);
		w = ref_pystr_to_utf8(&h, (const char *)data, n, wsgi, want, out_size);
		cr_assert_eq(g, w, "iteration %d: kind %u, %zu bytes, out_size %zu, wsgi %d", iter,
			     kind, n, out_size, wsgi);
		cr_assert_eq(memcmp(got, want, out_size), 0, "iteration %d: bytes differ", iter);
	}
}
