/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Text kept in fixed-size fields (statistics rows, metric labels) is cut at a
 * character boundary, so a long route or service name is stored, looked up
 * and shown as the same valid UTF-8 text wherever it is kept.
 */
#ifndef PROFILIS_UTF8_H
#define PROFILIS_UTF8_H

#include <stddef.h>
#include <string.h>

/* Copies src into dst (size n >= 1), cut before a character that does not
 * fit whole; always NUL-terminated. */
static inline void utf8_copy_cut(char *dst, size_t n, const char *src)
{
	size_t len = strlen(src);

	if (len >= n) {
		len = n - 1;
		while (len > 0 && ((unsigned char)src[len] & 0xc0) == 0x80)
			len--; /* do not end inside a multi-byte character */
	}
	memcpy(dst, src, len);
	dst[len] = 0;
}

#endif
