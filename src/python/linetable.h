/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * From a frame's instruction word to its line: the byte offset the word
 * names, as each version's PyFrame_GetLineNumber computes it, looked up in
 * the version's line table (3.9's co_lnotab, 3.10's PEP 626 co_linetable or
 * the 3.11+ location table: Objects/lnotab_notes.txt, Objects/locations.md).
 * All pure: the symbolizer reads the table, these only decode it.
 */
#ifndef PROFILIS_LINETABLE_H
#define PROFILIS_LINETABLE_H

#include <stddef.h>
#include <stdint.h>
#include "profilis/abi.h"

/* Pure line-table decoders: the line of one instruction as CPython's
 * PyCode_Addr2Line gives it, -1 when it has none, lies past the code the
 * table describes (3.10+; a co_lnotab does not know where the code ends) or
 * the table is malformed.  None reads outside table[0, len). */
/* 3.11+ location table; `index` in code units. */
int linetable_locations_line(const uint8_t *table, size_t len, int firstlineno, int index);
/* 3.9 co_lnotab; `offset` in bytes. */
int linetable_lnotab_line(const uint8_t *table, size_t len, int firstlineno, int offset);
/* 3.10 co_linetable (PEP 626); `offset` in bytes. */
int linetable_pep626_line(const uint8_t *table, size_t len, int firstlineno, int offset);

/* Pure: the byte offset into the code of the instruction a frame's
 * instruction word names (off->instr_kind), as CPython's own
 * PyFrame_GetLineNumber computes it; -1 for a frame that has not started or
 * a word outside the code.  `code` is the PyCodeObject's address. */
int linetable_instr_offset(const struct pbpf_py_offsets *off, uint64_t code, uint64_t instr);

/* Pure: linetable_instr_offset looked up in the version's table (off->lines_format). */
int linetable_frame_line(const struct pbpf_py_offsets *off, const uint8_t *table, size_t len,
			 int firstlineno, uint64_t code, uint64_t instr);

#endif
