// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * An open-addressing table that gives every distinct key (any bytes) a dense
 * index, in insertion order.  FNV-1a, linear probing, grown at half full.
 * Every allocation a new key needs (probe slots, key arrays, the copy of the
 * key, room in the caller's parallel value array) is made before anything
 * is changed, so a failure leaves the table and the values as they were.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "intern.h"

uint64_t intern_hash(const void *k, size_t len)
{
	const unsigned char *p = k;
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < len; i++)
		h = (h ^ p[i]) * 1099511628211ULL;
	return h;
}

/* Where `key` is (slot index, and *id set) or would go (*id = -1). */
static size_t probe(const struct htab *t, const void *key, size_t len, long *id)
{
	size_t j = intern_hash(key, len) & (t->cap - 1);

	*id = -1;
	for (; t->slot[j]; j = (j + 1) & (t->cap - 1)) {
		size_t i = t->slot[j] - 1;

		if (t->lens[i] == len && memcmp(t->keys[i], key, len) == 0) {
			*id = i;
			break;
		}
	}
	return j;
}

static int grow_slots(struct htab *t)
{
	size_t cap = t->cap ? t->cap * 2 : 256;
	uint32_t *slot = calloc(cap, sizeof(*slot));

	if (!slot)
		return -ENOMEM;
	for (size_t i = 0; i < t->n; i++) {
		size_t j = intern_hash(t->keys[i], t->lens[i]) & (cap - 1);

		while (slot[j])
			j = (j + 1) & (cap - 1);
		slot[j] = i + 1;
	}
	free(t->slot);
	t->slot = slot;
	t->cap = cap;
	return 0;
}

/* Room for key n in keys[] and lens[]; a realloc that succeeded is kept
 * (only bigger) even when the other one fails. */
static int grow_keys(struct htab *t)
{
	size_t c = t->keycap ? t->keycap * 2 : 16;
	char **k;
	size_t *l;

	if (t->n < t->keycap)
		return 0;
	if (!(k = realloc(t->keys, c * sizeof(*k))))
		return -ENOMEM;
	t->keys = k;
	if (!(l = realloc(t->lens, c * sizeof(*l))))
		return -ENOMEM;
	t->lens = l;
	t->keycap = c;
	return 0;
}

static int grow_vals(struct htab *t, void **vals, size_t elem)
{
	size_t c = t->valcap ? t->valcap * 2 : 16;
	void *v;

	if (!vals || t->n < t->valcap)
		return 0;
	if (!(v = realloc(*vals, c * elem)))
		return -ENOMEM;
	*vals = v;
	t->valcap = c;
	return 0;
}

long intern_find(const struct htab *t, const void *key, size_t len)
{
	long id;

	if (!t->cap)
		return -ENOENT;
	probe(t, key, len, &id);
	return id >= 0 ? id : -ENOENT;
}

long intern_add_vals(struct htab *t, const void *key, size_t len, void **vals, size_t elem,
		     int *added)
{
	long id = intern_find(t, key, len);
	char *copy;
	size_t j;

	*added = 0;
	if (id >= 0)
		return id;
	if (t->max && t->n >= t->max)
		return -ENOSPC;
	if ((t->n + 1) * 2 > t->cap && grow_slots(t))
		return -ENOMEM;
	if (grow_keys(t) || grow_vals(t, vals, elem) || !(copy = malloc(len ? len : 1)))
		return -ENOMEM;
	memcpy(copy, key, len);
	if (vals)
		memset((char *)*vals + t->n * elem, 0, elem);
	j = probe(t, key, len, &id);
	t->keys[t->n] = copy;
	t->lens[t->n] = len;
	t->slot[j] = t->n + 1;
	*added = 1;
	return t->n++;
}

long intern_add(struct htab *t, const void *key, size_t len, int *added)
{
	return intern_add_vals(t, key, len, NULL, 0, added);
}

void intern_free(struct htab *t)
{
	for (size_t i = 0; i < t->n; i++)
		free(t->keys[i]);
	free(t->keys);
	free(t->lens);
	free(t->slot);
	memset(t, 0, sizeof(*t));
}
