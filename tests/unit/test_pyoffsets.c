// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The per-version offset table and the packed names.  The 3.11 numbers are
 * checked against the facts measured with gdb on the pyenv debug build
 * (DESIGN.md section 4) and against CPython 3.11's public struct layouts;
 * every other version must be refused, and each packed name must carry
 * exactly its bytes, zero padded, in the order of enum pbpf_name.
 */
#include <criterion/criterion.h>
#include <string.h>
#include "pyoffsets.h"

Test(pyoffsets, py311_design_facts)
{
	const struct py_version_offsets *v = pyoffsets_find(3, 11);

	cr_assert_not_null(v);
	cr_assert_eq(v->major, 3);
	cr_assert_eq(v->minor, 11);
	cr_assert_str_eq(v->measured_on, "3.11.7");
	cr_assert_eq(v->off.tstate_frame, 0x38); /* the cframe pointer */
	cr_assert_eq(v->off.cframe_current_frame, 0x08);
	cr_assert_eq(v->off.frame_code, 0x20);
	cr_assert_eq(v->off.frame_previous, 0x30);
	cr_assert_eq(v->off.frame_localsplus, 0x48);
	cr_assert_eq(v->off.code_name, 0x78);
	cr_assert_eq(v->off.str_ascii_data, 48);
	cr_assert_eq(v->off.runtime_tstate_current, 0x240);
}

Test(pyoffsets, py311_object_layout)
{
	/* x86_64 CPython 3.11: PyObject_VAR_HEAD is 24 bytes; PyASCIIObject
	 * is {ob_base, length, hash, state, wstr} = 48, compact adds 24. */
	const struct pbpf_py_offsets *o = &pyoffsets_find(3, 11)->off;

	cr_assert_eq(o->str_length, 16);
	cr_assert_eq(o->str_state, 32);
	cr_assert_eq(o->str_compact_data, 72);
	cr_assert_eq(o->str_kind_shift, 2);
	cr_assert_eq(o->str_compact_bit, 5);
	cr_assert_eq(o->str_ascii_bit, 6);
	cr_assert_eq(o->tuple_items, 24);
	cr_assert_eq(o->long_size, 16);
	cr_assert_eq(o->long_digits, 24);
	cr_assert_eq(o->type_name, 24);
	cr_assert_eq(o->managed_dict_flag, 1u << 4); /* Py_TPFLAGS_MANAGED_DICT */
	cr_assert_eq(o->managed_dict_ptr, -3 * 8);   /* _PyObject_ManagedDictPointer */
	cr_assert_eq(o->managed_values_ptr, -4 * 8); /* _PyObject_ValuesPointer */
	cr_assert_eq(o->runtime_addr, 0, "filled per target, not in the table");
	cr_assert_eq(o->none_addr, 0);
}

/* The differences DESIGN.md section 4 names, as facts per version. */
Test(pyoffsets, per_version_design_facts)
{
	const struct pbpf_py_offsets *o39 = &pyoffsets_find(3, 9)->off,
				     *o310 = &pyoffsets_find(3, 10)->off,
				     *o312 = &pyoffsets_find(3, 12)->off,
				     *o313 = &pyoffsets_find(3, 13)->off;

	/* 3.9/3.10: PyFrameObjects, tstate->frame, no qualname, old dicts */
	cr_assert_eq(o310->tstate_frame, 24);
	cr_assert_eq(o310->cframe_current_frame, PBPF_NONE);
	cr_assert_eq(o310->frame_previous, 24); /* f_back */
	cr_assert_eq(o310->frame_code, 32);
	cr_assert_eq(o310->code_qualname, o310->code_name);
	cr_assert_eq(o310->keys_layout, PBPF_KEYS_SIZE);
	cr_assert_eq(o310->attr_layout, PBPF_ATTR_DICTOFFSET);
	cr_assert_eq(o310->instr_kind, PBPF_INSTR_LASTI_UNITS);
	cr_assert_eq(o39->instr_kind, PBPF_INSTR_LASTI_BYTES);
	cr_assert_eq(o39->lines_format, PBPF_LINES_LNOTAB);
	cr_assert_neq(o39->runtime_tstate_current, PBPF_NONE);
	cr_assert_eq(o39->tstate_native_thread_id, PBPF_NONE);
	/* 3.12: f_code at 0, previous at 8, no tstate_current, no wstr, lv_tag */
	cr_assert_eq(o312->frame_code, 0);
	cr_assert_eq(o312->frame_previous, 8);
	cr_assert_eq(o312->runtime_tstate_current, PBPF_NONE);
	cr_assert_eq(o312->str_ascii_data, 40);
	cr_assert_eq(o312->long_layout, PBPF_LONG_TAG);
	cr_assert_eq(o312->attr_layout, PBPF_ATTR_312);
	cr_assert_eq(o312->frame_owner_cstack, 3); /* FRAME_OWNED_BY_CSTACK */
	/* 3.13: no cframe layer, f_executable, inline values after the header */
	cr_assert_eq(o313->cframe_current_frame, PBPF_NONE);
	cr_assert_eq(o313->tstate_frame, 72);
	cr_assert_eq(o313->instr_kind, PBPF_INSTR_PTR);
	cr_assert_eq(o313->attr_layout, PBPF_ATTR_313);
	cr_assert_eq(o313->inline_values_flag, 1u << 2);
	cr_assert_eq(o313->inline_values_at, 16);
	cr_assert_eq(o313->values_items, 8);
}

/* 3.14 and 3.15 (Debian sid's builds, gdb on their DWARF): tagged frame
 * words, the entry frame's new owner, a cached hash in every tuple, inline
 * values after tp_basicsize. */
Test(pyoffsets, py314_py315_facts)
{
	for (unsigned int minor = 14; minor <= 15; minor++) {
		const struct py_version_offsets *v = pyoffsets_find(3, minor);
		const struct pbpf_py_offsets *o = &v->off;

		cr_assert_str_eq(v->measured_on,
				 minor == 14 ? "3.14.10 (Debian)" : "3.15.2 (Debian)");
		/* Py_TAG_BITS of the GIL build: None is &_Py_NoneStruct | 1 */
		cr_assert_eq(v->rules.stackref_tag_mask, 3);
		cr_assert_eq(v->rules.inline_values_at_basicsize, 1);
		cr_assert_eq(v->rules.type_basicsize, 32);
		/* entry frames: FRAME_OWNED_BY_INTERPRETER, 3 (3.14's CSTACK is 4,
		 * assigned nowhere; 3.15 has none) */
		cr_assert_eq(o->frame_owner_cstack, 3);
		cr_assert_eq(o->frame_owner, 74);
		cr_assert_eq(o->frame_localsplus, 80);
		cr_assert_eq(o->frame_code, 0);
		cr_assert_eq(o->frame_previous, 8);
		cr_assert_eq(o->frame_prev_instr, 56);
		cr_assert_eq(o->instr_kind, PBPF_INSTR_PTR);
		cr_assert_eq(o->lines_format, PBPF_LINES_LOCATIONS);
		cr_assert_eq(o->tuple_items, 32); /* ob_hash before ob_item */
		cr_assert_eq(o->code_code_adaptive, 208);
		cr_assert_eq(o->code_shim_flag, 0x2000000); /* CO_NO_MONITORING_EVENTS */
		cr_assert_eq(o->attr_layout, PBPF_ATTR_313);
		cr_assert_eq(o->inline_values_at, 16);
		cr_assert_eq(o->tstate_frame, 72);
		cr_assert_eq(o->tstate_thread_id, minor == 14 ? 152 : 176);
	}
	for (unsigned int minor = 9; minor <= 13; minor++) {
		cr_assert_eq(pyoffsets_find(3, minor)->rules.stackref_tag_mask, 0);
		cr_assert_eq(pyoffsets_find(3, minor)->rules.inline_values_at_basicsize, 0);
	}
}

Test(pyoffsets, supported_versions)
{
	static const unsigned int other[][2] = { { 3, 8 },  { 3, 16 }, { 2, 7 },
						 { 4, 11 }, { 0, 0 },  { 11, 3 } };

	for (unsigned int minor = 9; minor <= 15; minor++)
		cr_assert_not_null(pyoffsets_find(3, minor), "3.%u", minor);
	for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++)
		cr_assert_null(pyoffsets_find(other[i][0], other[i][1]), "%u.%u", other[i][0],
			       other[i][1]);
	cr_assert_str_eq(pyoffsets_supported(), "3.9, 3.10, 3.11, 3.12, 3.13, 3.14, 3.15");
}

Test(pyoffsets, names)
{
	static const char *const want[PBPF_NAME__COUNT] = {
		[PBPF_NAME_REQUEST_CTX] = "flask.request_ctx",
		[PBPF_NAME_WSGI_APP] = "wsgi_app",
		[PBPF_NAME_ENVIRON] = "environ",
		[PBPF_NAME_CTX] = "ctx",
		[PBPF_NAME_ERROR] = "error",
		[PBPF_NAME_RESPONSE] = "response",
		[PBPF_NAME_REQUEST_METHOD] = "REQUEST_METHOD",
		[PBPF_NAME_PATH_INFO] = "PATH_INFO",
		[PBPF_NAME_HTTP_TRACEPARENT] = "HTTP_TRACEPARENT",
		[PBPF_NAME_REQUEST] = "request",
		[PBPF_NAME_URL_RULE] = "url_rule",
		[PBPF_NAME_RULE] = "rule",
		[PBPF_NAME_ENDPOINT] = "endpoint",
		[PBPF_NAME_STATUS_CODE] = "_status_code",
	};

	for (int i = 0; i < PBPF_NAME__COUNT; i++) {
		cr_assert_not_null(pyoffsets_name(i), "name %d", i);
		cr_assert_str_eq(pyoffsets_name(i), want[i], "name %d", i);
	}
	cr_assert_null(pyoffsets_name(PBPF_NAME__COUNT));
	cr_assert_null(pyoffsets_name((enum pbpf_name) - 1));
}

Test(pyoffsets, pack_names)
{
	struct pbpf_name_key keys[PBPF_NAME__COUNT + 1];

	memset(keys, 0xa5, sizeof(keys));
	cr_assert_eq(pyoffsets_pack_names(keys), 0);
	for (int i = 0; i < PBPF_NAME__COUNT; i++) {
		const char *name = pyoffsets_name(i);
		unsigned char bytes[PBPF_NAME_BYTES], zero[PBPF_NAME_BYTES] = { 0 };
		size_t len = strlen(name);

		cr_assert_eq(keys[i].len, len, "%s", name);
		memcpy(bytes, keys[i].w, sizeof(bytes));
		cr_assert_eq(memcmp(bytes, name, len), 0, "%s", name);
		cr_assert_eq(memcmp(bytes + len, zero, PBPF_NAME_BYTES - len), 0,
			     "%s is not zero padded", name);
	}
	/* Little-endian words: "flask.re" is the first u64 as BPF loads it. */
	cr_assert_eq(keys[PBPF_NAME_REQUEST_CTX].w[0], 0x65722e6b73616c66ULL);
	cr_assert_eq(keys[PBPF_NAME_REQUEST_CTX].len, 17);
	unsigned char *past = (unsigned char *)&keys[PBPF_NAME__COUNT];

	for (size_t i = 0; i < sizeof(keys[0]); i++)
		cr_assert_eq(past[i], 0xa5, "wrote past PBPF_NAME__COUNT entries");
}
