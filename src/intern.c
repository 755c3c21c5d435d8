// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * An open-addressing table that gives every distinct key (any bytes) a dense
 * index, in insertion order.  FNV-1a, linear probing, grown at half full.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "intern.h"

uint64_t hash_bytes(const void *k, size_t len)
{
	const unsigned char *p = k;
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 1099511628211ULL;
	return h;
}

static int ht_grow(struct htab *t)
{
	size_t cap = t->cap ? t->cap * 2 : 256;
	uint32_t *slot = calloc(cap, sizeof(*slot));

	if (!slot)
		return -ENOMEM;
	for (size_t i = 0; i < t->n; i++) {
		size_t j = hash_bytes(t->keys[i], t->lens[i]) & (cap - 1);

		while (slot[j])
			j = (j + 1) & (cap - 1);
		slot[j] = i + 1;
	}
	free(t->slot);
	t->slot = slot;
	t->cap = cap;
	return 0;
}

/* The index of `key`, added when new (*added set); -1 on allocation failure. */
long ht_intern(struct htab *t, const void *key, size_t len, int *added)
{
	size_t j;

	*added = 0;
	if ((t->n + 1) * 2 > t->cap && ht_grow(t))
		return -1;
	for (j = hash_bytes(key, len) & (t->cap - 1); t->slot[j]; j = (j + 1) & (t->cap - 1)) {
		size_t i = t->slot[j] - 1;

		if (t->lens[i] == len && memcmp(t->keys[i], key, len) == 0)
			return i;
	}
	if (!(t->n & (t->n - 1)) || t->n == 0) {
		size_t c = t->n ? t->n * 2 : 1;
		char **k = realloc(t->keys, c * sizeof(*k));
		size_t *l = k ? realloc(t->lens, c * sizeof(*l)) : NULL;

		if (!k || !l) {
			if (k)
				t->keys = k;
			return -1;
		}
		t->keys = k;
		t->lens = l;
	}
	t->keys[t->n] = malloc(len ? len : 1);
	if (!t->keys[t->n])
		return -1;
	memcpy(t->keys[t->n], key, len);
	t->lens[t->n] = len;
	t->slot[j] = t->n + 1;
	*added = 1;
	return t->n++;
}

void ht_free(struct htab *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->keys[i]);
	free(t->keys);
	free(t->lens);
	free(t->slot);
}
