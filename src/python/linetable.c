// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Each decoder walks its table entry by entry and never reads past `len`:
 * the table comes from the target's memory and may be cut or garbage.
 */
#include <limits.h>
#include "linetable.h"

static unsigned int read_varint(const uint8_t *t, size_t len, size_t *i)
{
	unsigned int v = 0, shift = 0;

	while (*i < len) {
		uint8_t b = t[(*i)++];

		v |= (unsigned int)(b & 63) << shift;
		shift += 6;
		if (!(b & 64) || shift > 30)
			break;
	}
	return v;
}

static int read_svarint(const uint8_t *t, size_t len, size_t *i)
{
	unsigned int v = read_varint(t, len, i);

	return v & 1 ? -(int)(v >> 1) : (int)(v >> 1);
}

int linetable_locations_line(const uint8_t *t, size_t len, int firstlineno, int index)
{
	int line = firstlineno, unit = 0;
	size_t i = 0;

	if (index < 0)
		return -1;
	while (i < len) {
		uint8_t first = t[i++];
		int code = (first >> 3) & 15, units = (first & 7) + 1, cur = line;

		if (!(first & 0x80))
			return -1; /* not at an entry start: corrupt table */
		if (code == 15) {
			cur = -1; /* no location */
		} else if (code == 14) {
			line += read_svarint(t, len, &i); /* long form */
			read_varint(t, len, &i);
			read_varint(t, len, &i);
			read_varint(t, len, &i);
			cur = line;
		} else if (code == 13) {
			line += read_svarint(t, len, &i); /* no columns */
			cur = line;
		} else if (code >= 10) {
			line += code - 10; /* one-line form */
			i += 2;
			cur = line;
		} else {
			i += 1; /* short form */
		}
		if (index < unit + units)
			return cur;
		unit += units;
	}
	return -1;
}

/* 3.9's PyCode_Addr2Line: a pair's line delta applies from its address on,
 * so the walk stops at the first address past the offset; past the last
 * pair the last line holds (the table does not know the code's length). */
int linetable_lnotab_line(const uint8_t *t, size_t len, int firstlineno, int offset)
{
	long line = firstlineno;
	size_t addr = 0;

	if (offset < 0 || len % 2)
		return -1; /* a co_lnotab is whole pairs */
	for (size_t i = 0; i < len; i += 2) {
		addr += t[i];
		if (addr > (size_t)offset)
			break;
		line += (int8_t)t[i + 1];
	}
	return line >= INT_MIN && line <= INT_MAX ? (int)line : -1;
}

/* 3.10's _PyCode_CheckLineNumber: pair k covers [end(k-1), end(k)); a line
 * delta of -128 marks a range without a line and leaves the running line
 * alone; zero-length pairs only carry line deltas too big for one byte. */
int linetable_pep626_line(const uint8_t *t, size_t len, int firstlineno, int offset)
{
	long line = firstlineno;
	size_t end = 0;

	if (offset < 0 || len % 2)
		return -1;
	for (size_t i = 0; i < len; i += 2) {
		int delta = (int8_t)t[i + 1];

		end += t[i];
		if (delta != -128)
			line += delta;
		if ((size_t)offset < end)
			return delta == -128 || line < INT_MIN || line > INT_MAX ? -1 : (int)line;
	}
	return -1;
}

int linetable_instr_offset(const struct pbpf_py_offsets *off, uint64_t code, uint64_t instr)
{
	int32_t lasti = (int32_t)(uint32_t)instr; /* the sampler zero-extends an int */
	uint64_t base;

	switch (off->instr_kind) {
	case PBPF_INSTR_LASTI_BYTES: return lasti < 0 ? -1 : lasti;
	case PBPF_INSTR_LASTI_UNITS:
		/* 3.10's PyFrame_GetLineNumber looks up f_lasti * 2. */
		return lasti < 0 || lasti > INT_MAX / 2 ? -1 : lasti * 2;
	case PBPF_INSTR_PREV_PTR:
	case PBPF_INSTR_PTR:
		/* _PyInterpreterFrame_LASTI is the pointer minus the code in both:
		 * 3.11/3.12's prev_instr names the last instruction started, 3.13's
		 * instr_ptr the one executing, and each is the line CPython reports.
		 * Below the code is a 3.11/3.12 frame that has not started. */
		if (off->code_code_adaptive == PBPF_NONE)
			return -1;
		base = code + off->code_code_adaptive;
		if (instr < base || instr - base > INT_MAX || (instr - base) % 2)
			return -1;
		return (int)(instr - base);
	}
	return -1;
}

int linetable_frame_line(const struct pbpf_py_offsets *off, const uint8_t *table, size_t len,
			 int firstlineno, uint64_t code, uint64_t instr)
{
	int at = linetable_instr_offset(off, code, instr);

	if (at < 0)
		return -1;
	switch (off->lines_format) {
	case PBPF_LINES_LNOTAB: return linetable_lnotab_line(table, len, firstlineno, at);
	case PBPF_LINES_310: return linetable_pep626_line(table, len, firstlineno, at);
	case PBPF_LINES_LOCATIONS: return linetable_locations_line(table, len, firstlineno, at / 2);
	}
	return -1;
}
