/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The per-version CPython offset table and the names the BPF side compares
 * Python strings against, packed for rodata.
 */
#ifndef PROFILIS_PYOFFSETS_H
#define PROFILIS_PYOFFSETS_H

#include "profilis/abi.h"

/*
 * Facts of 3.14+ that struct pbpf_py_offsets (abi.h) has no field for yet;
 * measured like the rest (tools/gen-offsets) and meant to move into abi.h
 * as they are, for the BPF side to read:
 *   stackref_tag_mask  3.14+ frames hold _PyStackRefs: clear these low bits
 *                      of f_executable and of every localsplus word before
 *                      using it as a pointer or comparing it with None's
 *                      address (PyStackRef_None is None | 1; a NULL ref is 1).
 *                      A word with both bits set is a tagged int, not an
 *                      object.  0 before 3.14.
 *   type_basicsize     PyTypeObject.tp_basicsize
 *   inline_values_at_basicsize  3.14+: an object's inline values start
 *                      tp_basicsize bytes in (3.13: right after the header,
 *                      pbpf_py_offsets.inline_values_at, which stays the
 *                      value for a basicsize-16 class such as Flask's).
 */
struct py_version_rules {
	__u64 stackref_tag_mask;
	__u32 type_basicsize;
	__u32 inline_values_at_basicsize;
};

struct py_version_offsets {
	unsigned int major, minor;
	const char *measured_on; /* the build the numbers came from */
	struct pbpf_py_offsets off;
	struct py_version_rules rules;
};

/* The table entry for major.minor, or NULL when that version is unsupported. */
const struct py_version_offsets *pyoffsets_find(unsigned int major, unsigned int minor);

/* "3.11" style list of supported versions, for error messages. */
const char *pyoffsets_supported(void);

/* The string behind a pbpf_name id, NULL when out of range. */
const char *pyoffsets_name(enum pbpf_name id);

/* Packs every name into `out` (PBPF_NAME__COUNT entries); 0 or -E2BIG. */
int pyoffsets_pack_names(struct pbpf_name_key *out);

#endif
