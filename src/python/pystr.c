// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The target's memory is untrusted: lengths are clamped to what was copied,
 * unknown kinds give nothing, and every code unit or byte that is not text
 * becomes U+FFFD, so the exporters can pass our UTF-8 through unchecked.
 */
#include <errno.h>
#include <string.h>
#include "pystr.h"

int pystr_shape(const struct pbpf_py_offsets *off, const void *hdr, struct pystr_shape *out)
{
	const uint8_t *b = hdr;
	uint32_t state;
	uint64_t len;
	unsigned int kind;

	memcpy(&len, b + off->str_length, 8);
	memcpy(&state, b + off->str_state, 4);
	kind = (state >> off->str_kind_shift) & 7;
	if (!((state >> off->str_compact_bit) & 1) || (kind != 1 && kind != 2 && kind != 4))
		return -EINVAL;
	out->len = len;
	out->kind = kind;
	out->ascii = (state >> off->str_ascii_bit) & 1;
	out->data = out->ascii ? off->str_ascii_data : off->str_compact_data;
	return 0;
}

static size_t put_utf8(uint32_t cp, char *out, size_t room)
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
static size_t utf8_valid_seq(const unsigned char *s, size_t n)
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

/* How many of the n bytes at b are ASCII, eight at a time: paths, methods
 * and routes are nearly always all ASCII, and are copied in runs. */
static size_t ascii_run(const unsigned char *b, size_t n)
{
	size_t i = 0;

	for (uint64_t w; i + 8 <= n; i += 8) {
		memcpy(&w, b + i, 8);
		if (w & 0x8080808080808080ULL)
			break;
	}
	while (i < n && b[i] < 0x80)
		i++;
	return i;
}

/* Copies the ASCII run at b[*i..n) to out[*o..), as far as it fits before
 * the NUL; false when the output is full. */
static bool copy_ascii(const unsigned char *b, size_t n, size_t *i, char *out, size_t out_size,
		       size_t *o)
{
	size_t run = ascii_run(b + *i, n - *i), room = out_size - 1 - *o;
	bool fits = run <= room;

	if (!fits)
		run = room;
	memcpy(out + *o, b + *i, run);
	*o += run;
	*i += run;
	return fits;
}

static size_t bytes_to_utf8(const unsigned char *b, size_t n, char *out, size_t out_size)
{
	size_t o = 0, i = 0;

	while (i < n) {
		size_t len, w;

		if (!copy_ascii(b, n, &i, out, out_size, &o) || i == n)
			break;
		len = utf8_valid_seq(b + i, n - i);
		if (len) {
			if (o + len >= out_size)
				break;
			memcpy(out + o, b + i, len);
			o += len;
			i += len;
			continue;
		}
		w = put_utf8(0xfffd, out + o, out_size - o - 1);
		if (!w)
			break;
		o += w;
		i++;
	}
	out[o] = 0;
	return o;
}

size_t pystr_to_utf8(const struct pbpf_str_hdr *hdr, const char *data, size_t data_size,
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
		return bytes_to_utf8((const unsigned char *)data, units, out, out_size);
	for (size_t i = 0; i < units; i++) {
		uint32_t cp = 0;
		size_t w;

		if (kind == 1 &&
		    !copy_ascii((const unsigned char *)data, units, &i, out, out_size, &o))
			break;
		if (i == units)
			break;
		memcpy(&cp, data + i * kind, kind); /* little-endian code unit */
		w = put_utf8(cp, out + o, out_size - o - 1);
		if (!w)
			break;
		o += w;
	}
	out[o] = 0;
	return o;
}
