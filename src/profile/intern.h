/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Interning: distinct keys (any bytes) get dense indexes 0, 1, 2, ... so
 * callers keep their data in plain arrays.  Used by the profile for frames,
 * stacks, routes and (route, stack) cells.  A table may be capped (`max`
 * keys); a new key is refused, never half added: on any failure the table
 * and the caller's value array are unchanged and every key already in it
 * is still found.
 */
#ifndef PROFILIS_INTERN_H
#define PROFILIS_INTERN_H

#include <stddef.h>
#include <stdint.h>

struct htab {
	uint32_t *slot; /* index + 1, 0 = empty */
	size_t cap, n;	/* n: keys so far */
	char **keys;	/* keys[i]: a copy of key i */
	size_t *lens;
	size_t keycap; /* room in keys[] and lens[] */
	size_t valcap; /* room in the caller's value array (intern_add_vals) */
	size_t max;    /* most keys, 0: no limit; set before the first key */
};

uint64_t intern_hash(const void *key, size_t len);
/* The index of `key`, or -ENOENT. */
long intern_find(const struct htab *t, const void *key, size_t len);
/* The index of `key`, added when new (*added = 1); -ENOSPC when the table
 * holds `max` keys, -ENOMEM when an allocation failed. */
long intern_add(struct htab *t, const void *key, size_t len, int *added);
/* intern_add for a table whose caller keeps one value of `elem` bytes per key
 * in *vals (realloc'ed here, before the key is added; a new value is zeroed).
 * Always pass the same array and size for a table.  The caller frees *vals. */
long intern_add_vals(struct htab *t, const void *key, size_t len, void **vals, size_t elem,
		     int *added);
/* Frees the keys and resets *t to empty (max included). */
void intern_free(struct htab *t);

#endif
