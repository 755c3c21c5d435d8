// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * libFuzzer target: a target's _Py_DebugOffsets image, the leading bytes of
 * its _PyRuntime (pydebug_overlay in src/python/pyruntime.c), onto the 3.13,
 * 3.14 and 3.15 table rows.  The image comes from a process we do not trust, so:
 * an image that is refused must leave the offsets exactly as they were
 * (never half applied); an accepted one must carry the cookie and version
 * asked for, give only offsets below a megabyte (what BPF adds to pointers),
 * a frame window of at most 128 bytes or 0, and change only the fields the
 * debug offsets cover.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "pyoffsets.h"
#include "pyruntime.h"

/* The fields pydebug_overlay may change (the rest stay the table's);
 * an X-macro list, kept by hand: clang-format makes a staircase of it. */
// clang-format off
#define COVERED(X) X(runtime_interp_main) X(runtime_interpreters_head) X(interp_id) \
	X(interp_next) X(interp_modules) X(interp_ceval_gil) X(gil_last_holder) \
	X(gil_locked) X(tstate_frame) X(cframe_current_frame) X(tstate_native_thread_id) \
	X(frame_previous) X(frame_code) X(frame_prev_instr) X(frame_localsplus) \
	X(frame_owner) X(code_filename) X(code_name) X(code_qualname) X(code_linetable) \
	X(code_firstlineno) X(code_localsplusnames) X(code_code_adaptive) X(type_name) \
	X(type_flags) X(tuple_items) X(dict_keys) X(dict_values) X(long_size) \
	X(long_digits) X(bytes_size) X(bytes_data) X(str_state) X(str_length) \
	X(str_ascii_data) X(tstate_thread_id) X(type_dictoffset) X(heaptype_cached_keys) \
	X(str_compact_data)
// clang-format on

static void check_accepted(const uint8_t *img, unsigned int major, unsigned int minor,
			   const struct pbpf_py_offsets *before, const struct pbpf_py_offsets *off)
{
	struct pbpf_py_offsets masked = *off;
	uint64_t version;
	uint32_t w;

	memcpy(&version, img + 8, 8);
	if (memcmp(img, "xdebugpy", 8) || version >> 24 != major ||
	    ((version >> 16) & 0xff) != minor)
		abort();
#define SMALL(f)                                         \
	if (off->f >= (1u << 20) && off->f != PBPF_NONE) \
		abort();
	COVERED(SMALL)
#define RESTORE(f) masked.f = before->f;
	COVERED(RESTORE)
	if (memcmp(&masked, before, sizeof(masked)))
		abort(); /* a field outside the debug offsets changed */
	w = pyruntime_frame_window(off);
	if (w > 128 || w % 8)
		abort();
}

static int overlay(const uint8_t *data, size_t size, unsigned int major, unsigned int minor)
{
	const struct py_version_offsets *row = pyoffsets_find(3, minor);
	struct pbpf_py_offsets off, before;
	struct py_version_rules rules;
	char msg[256];

	if (!row)
		abort();
	off = row->off;
	before = off;
	rules = row->rules;
	if (pydebug_overlay(data, size, major, minor, &off, &rules, msg, sizeof(msg)) == 0) {
		check_accepted(data, major, minor, &before, &off);
		if (rules.stackref_tag_mask != row->rules.stackref_tag_mask ||
		    rules.type_basicsize >= (1u << 20))
			abort();
		return 0;
	}
	if (memcmp(&off, &before, sizeof(off)) || memcmp(&rules, &row->rules, sizeof(rules)))
		abort(); /* refused, yet changed */
	return -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	for (unsigned int minor = 13; minor <= 15; minor++) {
		size_t need = pydebug_size(3, minor);

		overlay(data, size, 3, minor);
		/* One byte short of the struct: always refused. */
		if (size >= need && overlay(data, need - 1, 3, minor) == 0)
			abort();
	}
	return 0;
}
