// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The per-version facts, the script directory and the forged objects of
 * pyversions.h.  Every
 * Criterion test runs in its own process, so one directory and one script
 * per process is all a test needs.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "pyversions.h"

static char dir[] = "/tmp/pbpf-sym-XXXXXX";
static char script[256];

const struct pbpf_py_offsets *offsets_of(unsigned int minor)
{
	const struct py_version_offsets *v = pyoffsets_find(3, minor);

	cr_assert_not_null(v, "no offsets for 3.%u", minor);
	return &v->off;
}

/* 3.9's f_lasti counts bytes, 3.10's code units, both an int zero-extended;
 * later versions point into co_code_adaptive.  Unit -1 is f_lasti -1, or
 * on 3.11/3.12 prev_instr one unit before the code; 3.13 has no such word. */
uint64_t instr_word(const struct pbpf_py_offsets *o, uint64_t code, int unit)
{
	switch (o->instr_kind) {
	case PBPF_INSTR_LASTI_BYTES: return (uint32_t)(2 * unit);
	case PBPF_INSTR_LASTI_UNITS: return (uint32_t)unit;
	default: return code + o->code_code_adaptive + 2 * (int64_t)unit;
	}
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	cr_assert_eq(fputs(text, f) >= 0, 1);
	cr_assert_eq(fclose(f), 0);
}

const char *pyv_script(const char *name, const char *text)
{
	if (strstr(dir, "XXXXXX"))
		cr_assert_not_null(mkdtemp(dir));
	snprintf(script, sizeof(script), "%s/%s", dir, name);
	write_file(script, text);
	return script;
}

void pyv_cleanup(void)
{
	if (script[0])
		unlink(script);
	if (!strstr(dir, "XXXXXX"))
		rmdir(dir);
}

uint8_t *pyv_fake_str(const struct pbpf_py_offsets *o, const char *s)
{
	uint8_t *obj = calloc(1, o->str_ascii_data + strlen(s) + 1);
	uint64_t len = strlen(s);
	uint32_t state = 1u << o->str_compact_bit | 1u << o->str_ascii_bit |
			 1u << o->str_kind_shift;

	cr_assert_not_null(obj);
	memcpy(obj + o->str_length, &len, 8);
	memcpy(obj + o->str_state, &state, 4);
	memcpy(obj + o->str_ascii_data, s, len);
	return obj;
}

void pyv_set_ptr(uint8_t *obj, uint32_t at, const void *v)
{
	uint64_t p = (uint64_t)(uintptr_t)v;

	memcpy(obj + at, &p, 8);
}
