/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Interning: distinct keys (any bytes) get dense indexes 0, 1, 2, ... so
 * callers keep their data in plain arrays.  Used by the profile for frames,
 * stacks, routes and (route, stack) cells.
 */
#ifndef PROFILIS_INTERN_H
#define PROFILIS_INTERN_H

#include <stddef.h>
#include <stdint.h>

struct htab {
	uint32_t *slot;		/* index + 1, 0 = empty */
	size_t cap, n;		/* n: keys so far */
	char **keys;		/* keys[i]: a copy of key i */
	size_t *lens;
};

uint64_t hash_bytes(const void *key, size_t len);
/* The index of `key`, added when new (*added = 1); -1 when out of memory. */
long ht_intern(struct htab *t, const void *key, size_t len, int *added);
void ht_free(struct htab *t);

#endif
