/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * A Python str read from another process (PEP 393: a header, then code units
 * of 1, 2 or 4 bytes, little-endian) as UTF-8 text.  One decoder for every str we read:
 * request fields copied by BPF and code objects' names and files read by the
 * symbolizer, so both say U+FFFD for what is not text (lone surrogates,
 * values past U+10FFFF, invalid WSGI bytes) and never emit invalid UTF-8.
 */
#ifndef PROFILIS_PYSTR_H
#define PROFILIS_PYSTR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "profilis/abi.h"

/*
 * Converts a copied Python str to UTF-8.  With `wsgi_bytes` the str is a WSGI
 * "bytes as latin-1" value (PATH_INFO): its code units are the raw bytes,
 * which are emitted as-is when they form valid UTF-8 and with U+FFFD for
 * every invalid sequence otherwise.  Kinds other than 1, 2 and 4 give "".
 * Stops before a character that does not fit in `out_size` (NUL included).
 * Returns the output length.
 */
/* A str object's header as read from another process. */
struct pystr_shape {
	uint64_t len;	   /* code points */
	unsigned int kind; /* bytes per code unit: 1, 2 or 4 */
	bool ascii;	   /* every code point < 128 (kind 1) */
	uint32_t data;	   /* offset of the code units from the object */
};

/* Pure: reads the length and state fields of the str header at `hdr` (at
 * least str_state + 4 and str_length + 8 bytes) in the layout `off`.  0, or
 * -EINVAL when it is not a compact str of kind 1, 2 or 4, which are the only
 * ones whose code units follow the header. */
int pystr_shape(const struct pbpf_py_offsets *off, const void *hdr, struct pystr_shape *out);

size_t pystr_to_utf8(const struct pbpf_str_hdr *hdr, const char *data, size_t data_size,
		     bool wsgi_bytes, char *out, size_t out_size);

#endif
