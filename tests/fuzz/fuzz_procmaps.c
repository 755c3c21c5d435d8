// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * libFuzzer target: /proc/PID/maps text (src/target/procmaps.c).  Every line goes
 * through procmaps_parse_line from an exact-size copy (ASan sees any read past
 * it) and must give a sane entry or -EINVAL; procmaps_python_kind must answer
 * 0, 1 or a 3xx version.  Differential: procmaps_find_python reading the text
 * as a FILE must choose exactly the mapping that the harness chooses from
 * the same whole lines, so a long line is never taken for two.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "procmaps.h"

static int sane_kind(int k)
{
	return k == 0 || k == 1 || (k >= 300 && k <= 399);
}

/* One whole line (no '\n'): parse it and fold it into the expected choice. */
static void check_line(const char *line, size_t len, struct py_mapping *want, int *found)
{
	char *copy = malloc(len + 1);
	struct maps_entry e;
	int kind, is_lib;

	memcpy(copy, line, len);
	copy[len] = 0;
	if (procmaps_parse_line(copy, &e) != 0) {
		free(copy);
		return;
	}
	free(copy);
	if (e.start > e.end || strlen(e.perms) != 4 || strlen(e.path) >= MAPS_PATH_MAX ||
	    strchr(e.path, '\n'))
		abort();
	kind = procmaps_python_kind(e.path);
	if (!sane_kind(kind))
		abort();
	/* The choice procmaps_find_python documents: the first mapping of the
	 * first python file, libpython winning over an executable. */
	if (e.path[0] != '/' || !kind)
		return;
	is_lib = strstr(strrchr(e.path, '/'), "libpython") != NULL;
	if (*found && (want->is_lib || !is_lib))
		return;
	snprintf(want->path, sizeof(want->path), "%s", e.path);
	want->version_hint = kind;
	want->is_lib = is_lib;
	want->start = e.start;
	want->offset = e.offset;
	*found = 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* The kernel never writes a NUL into maps: the text ends at one. */
	size_t len = strnlen((const char *)data, size);
	struct py_mapping want, got;
	int found = 0, rc;
	FILE *f;

	memset(&want, 0, sizeof(want));
	for (size_t i = 0; i < len;) {
		const char *nl = memchr(data + i, '\n', len - i);
		size_t n = nl ? (size_t)(nl - (const char *)data) - i : len - i;

		check_line((const char *)data + i, n, &want, &found);
		i += n + 1;
	}
	if (len == 0)
		return 0;
	f = fmemopen((void *)data, len, "r");
	if (!f)
		abort();
	rc = procmaps_find_python(f, &got);
	fclose(f);
	if (rc != (found ? 0 : -ENOENT))
		abort();
	if (found &&
	    (strcmp(got.path, want.path) || got.version_hint != want.version_hint ||
	     got.is_lib != want.is_lib || got.start != want.start || got.offset != want.offset))
		abort();
	return 0;
}
