/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The per-version CPython offset table and the names the BPF side compares
 * Python strings against, packed for rodata.
 */
#ifndef PROFILIS_PYOFFSETS_H
#define PROFILIS_PYOFFSETS_H

#include "profilis/abi.h"

struct py_version_offsets {
	unsigned int major, minor;
	const char *measured_on; /* the debug build the numbers came from */
	struct pbpf_py_offsets off;
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
