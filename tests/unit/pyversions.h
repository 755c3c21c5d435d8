/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The CPython versions the symbolization tests run (pyenv 3.9.18 to 3.13.0),
 * what the tests need to know of each (its offsets row, the instruction word
 * the sampler records) and the Python both test files feed them.  Also the
 * per-test temporary directory their scripts live in; the test's suite
 * removes it in its .fini through pyv_cleanup().  And CPython objects forged
 * in this process in a version's layout.  Shared by test_linetables.c,
 * test_symbols.c and test_profile.c.
 */
#ifndef PROFILIS_TEST_PYVERSIONS_H
#define PROFILIS_TEST_PYVERSIONS_H

#include <stdint.h>
#include "oracle.h"
#include "pyoffsets.h"

struct pyver {
	const char *python;
	unsigned int minor;
};

static const struct pyver py39 = { "/root/.pyenv/versions/3.9.18/bin/python3.9", 9 };
static const struct pyver py310 = { "/root/.pyenv/versions/3.10.13/bin/python3.10", 10 };
static const struct pyver py311 = { PYENV_PY, 11 };
static const struct pyver py312 = { "/root/.pyenv/versions/3.12.1/bin/python3.12", 12 };
static const struct pyver py313 = { "/root/.pyenv/versions/3.13.0/bin/python3.13", 13 };

/* One test per version, so a failure names the version. */
#define FOR_EACH_VERSION(suite, fn) \
	Test(suite, fn##_3_9)       \
	{                           \
		fn(&py39);          \
	}                           \
	Test(suite, fn##_3_10)      \
	{                           \
		fn(&py310);         \
	}                           \
	Test(suite, fn##_3_11)      \
	{                           \
		fn(&py311);         \
	}                           \
	Test(suite, fn##_3_12)      \
	{                           \
		fn(&py312);         \
	}                           \
	Test(suite, fn##_3_13)      \
	{                           \
		fn(&py313);         \
	}

/* Python shared by the oracle and the child: unit_lines(co) is the line of
 * every code unit per PyCode_Addr2Line of its byte offset (-1: none),
 * checked against co_positions() (3.11+) or co_lines() (3.10); table(co) is
 * what the version's decoder reads.  Only single quotes: nothing to escape. */
#define PY_UNIT_LINES                                                                 \
	"import ctypes, sys, types\n"                                                 \
	"A2L = ctypes.pythonapi.PyCode_Addr2Line\n"                                   \
	"A2L.argtypes = (ctypes.py_object, ctypes.c_int)\n"                           \
	"A2L.restype = ctypes.c_int\n"                                                \
	"\n"                                                                          \
	"def unit_lines(co):\n"                                                       \
	"    n = len(co.co_code) // 2\n"                                              \
	"    lines = [A2L(co, 2 * i) for i in range(n)]\n"                            \
	"    if hasattr(co, 'co_positions'):\n"                                       \
	"        other = [-1 if p[0] is None else p[0] for p in co.co_positions()]\n" \
	"    elif hasattr(co, 'co_lines'):\n"                                         \
	"        other = [-1] * n\n"                                                  \
	"        for start, end, line in co.co_lines():\n"                            \
	"            for b in range(start, end, 2):\n"                                \
	"                other[b // 2] = -1 if line is None else line\n"              \
	"    else:\n"                                                                 \
	"        other = lines\n"                                                     \
	"    assert other == lines, co\n"                                             \
	"    return lines\n"                                                          \
	"\n"                                                                          \
	"def table(co):\n"                                                            \
	"    return co.co_lnotab if sys.version_info < (3, 10) else co.co_linetable\n"

/* The table row of 3.`minor` (asserts there is one); for 3.13 it agrees with
 * 3.13.0's _Py_DebugOffsets, which pyruntime overlays on it in the real
 * program. */
const struct pbpf_py_offsets *offsets_of(unsigned int minor);

/* The instruction word the sampler records (bpf/sampler.bpf.c) for a frame
 * at code unit `unit` of the code object at `code`; unit -1 is a frame that
 * has not started. */
uint64_t instr_word(const struct pbpf_py_offsets *o, uint64_t code, int unit);

/* Writes `text` to `name` in this test's temporary directory, made on first
 * use; returns the path, valid until pyv_cleanup(). */
const char *pyv_script(const char *name, const char *text);

/* Removes the script and the directory, if any. */
void pyv_cleanup(void);

/* A compact ASCII str holding `s`, laid out as `o` says; the text follows
 * the header, as in CPython, so no read may run past it.  Never freed. */
uint8_t *pyv_fake_str(const struct pbpf_py_offsets *o, const char *s);

/* Stores pointer `v` at byte `at` of a forged object. */
void pyv_set_ptr(uint8_t *obj, uint32_t at, const void *v);

#endif
