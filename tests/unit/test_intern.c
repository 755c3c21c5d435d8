// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The interning table: dense ids in insertion order, lookups, the key cap,
 * and real allocation failures (failalloc.h) at every allocation a new key
 * needs, each of which must leave the table, its keys' ids and the caller's
 * values exactly as they were.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "failalloc.h"
#include "intern.h"

struct val {
	long id, check;
};

static long put(struct htab *t, struct val **v, const char *key, int *added)
{
	return intern_add_vals(t, key, strlen(key), (void **)v, sizeof(**v), added);
}

static void fill(struct htab *t, struct val **v, int n)
{
	char key[32];
	int added;

	for (int i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "key-%d", i);
		cr_assert_eq(put(t, v, key, &added), i);
		cr_assert(added);
		(*v)[i] = (struct val){ .id = i, .check = 1000 + i };
	}
}

/* Every key still has its id and its value. */
static void expect_intact(const struct htab *t, const struct val *v, int n)
{
	char key[32];

	cr_assert_eq(t->n, (size_t)n);
	for (int i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "key-%d", i);
		cr_assert_eq(intern_find(t, key, strlen(key)), i, "%s lost", key);
		cr_assert(v[i].id == i && v[i].check == 1000 + i, "value %d changed", i);
	}
}

Test(intern, ids_are_dense_and_stable)
{
	struct htab t = { 0 };
	struct val *v = NULL;
	int added;

	fill(&t, &v, 1000);
	expect_intact(&t, v, 1000);
	cr_assert_eq(put(&t, &v, "key-7", &added), 7);
	cr_assert_not(added);
	cr_assert_eq(intern_find(&t, "nope", 4), -ENOENT);
	cr_assert_eq(intern_add(&t, "", 0, &added), 1000, "an empty key is a key");
	intern_free(&t);
	free(v);
}

Test(intern, cap_refuses_new_keys_only)
{
	struct htab t = { .max = 3 };
	struct val *v = NULL;
	int added;

	fill(&t, &v, 3);
	cr_assert_eq(put(&t, &v, "key-4", &added), -ENOSPC);
	cr_assert_not(added);
	cr_assert_eq(put(&t, &v, "key-1", &added), 1, "known keys are still found");
	expect_intact(&t, v, 3);
	intern_free(&t);
	free(v);
}

/* Key 128 needs five allocations: the probe slots (half full at 256), the
 * key and length arrays, the value array, the copy of the key.  Each one
 * fails in turn; then the same insert succeeds. */
Test(intern, failed_allocations_leave_the_table_intact)
{
	int added;

	if (!failalloc_available())
		cr_skip_test("sanitizer build: allocations cannot be made to fail");
	for (long k = 0;; k++) {
		struct htab t = { 0 };
		struct val *v = NULL;
		long id;

		fill(&t, &v, 128);
		failalloc_arm(k);
		id = put(&t, &v, "new", &added);
		failalloc_disarm();
		if (!failalloc_fired()) {
			cr_assert_eq(k, 5, "key 128 took %ld allocations, 5 expected", k);
			cr_assert_eq(id, 128);
			intern_free(&t);
			free(v);
			break;
		}
		cr_assert_eq(id, -ENOMEM, "allocation %ld failed: %ld", k, id);
		cr_assert_not(added);
		expect_intact(&t, v, 128);
		cr_assert_eq(intern_find(&t, "new", 3), -ENOENT, "allocation %ld: half added", k);
		/* The table works on: the same key, then more. */
		cr_assert_eq(put(&t, &v, "new", &added), 128);
		cr_assert(added && v[128].id == 0 && v[128].check == 0, "a new value is zeroed");
		v[128] = (struct val){ .id = 128, .check = 1128 };
		for (int i = 129; i < 300; i++) {
			char key[32];

			snprintf(key, sizeof(key), "key-%d", i);
			cr_assert_eq(put(&t, &v, key, &added), i);
			v[i] = (struct val){ .id = i, .check = 1000 + i };
		}
		cr_assert_eq(intern_find(&t, "new", 3), 128);
		intern_free(&t);
		free(v);
	}
}
