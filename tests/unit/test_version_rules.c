// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The version rules the BPF programs apply (include/profilis/abi.h), with
 * each version's table row: 3.14+ stack references are untagged, and the
 * frames each version's walkers skip are the ones skipped.
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include "profilis/abi.h"
#include "pyoffsets.h"

static const struct py_version_offsets *row(unsigned int minor)
{
	const struct py_version_offsets *r = pyoffsets_find(3, minor);

	cr_assert_not_null(r, "no row for 3.%u", minor);
	return r;
}

Test(version_rules, stackrefs_untagged_from_314)
{
	const uint64_t none = 0xb52bb0; /* an object address: 8-aligned */

	for (unsigned int minor = 9; minor <= 13; minor++) {
		uint64_t mask = row(minor)->rules.stackref_tag_mask;

		cr_assert_eq(mask, 0, "3.%u has no tagged references", minor);
		cr_assert_eq(pbpf_stackref_obj(mask, none), none, "3.%u: a plain pointer", minor);
		cr_assert_eq(pbpf_stackref_obj(mask, 0), 0);
	}
	for (unsigned int minor = 14; minor <= 15; minor++) {
		uint64_t mask = row(minor)->rules.stackref_tag_mask;

		cr_assert_eq(mask, 3, "3.%u: Py_TAG_BITS", minor);
		/* None is immortal: deferred-tagged, as measured in a live frame. */
		cr_assert_eq(pbpf_stackref_obj(mask, none | 1), none, "3.%u: None|1", minor);
		cr_assert_eq(pbpf_stackref_obj(mask, none), none, "3.%u: an owned reference",
			     minor);
		cr_assert_eq(pbpf_stackref_obj(mask, 1), 0, "3.%u: PyStackRef_NULL", minor);
		cr_assert_eq(pbpf_stackref_obj(mask, (42 << 2) | 3), 0, "3.%u: a tagged int",
			     minor);
	}
}

Test(version_rules, shim_frames_per_version)
{
	/* 3.9/3.10 frames have no owner; 3.11 owners are thread, generator,
	 * frame object (0..2), none of them a shim. */
	for (unsigned int minor = 9; minor <= 11; minor++)
		for (int owner = 0; owner < 256; owner++)
			cr_assert_not(pbpf_frame_is_shim(&row(minor)->off, owner), "3.%u owner %d",
				      minor, owner);
	/* 3.12/3.13: FRAME_OWNED_BY_CSTACK = 3 is the C-stack entry frame. */
	for (unsigned int minor = 12; minor <= 13; minor++) {
		for (int owner = 0; owner <= 2; owner++)
			cr_assert_not(pbpf_frame_is_shim(&row(minor)->off, owner));
		cr_assert(pbpf_frame_is_shim(&row(minor)->off, 3), "3.%u: the C stack", minor);
	}
	/* 3.14: FRAME_OWNED_BY_INTERPRETER = 3 and the moved CSTACK = 4;
	 * 3.15: the interpreter's base frame, owner 3. */
	for (unsigned int minor = 14; minor <= 15; minor++) {
		for (int owner = 0; owner <= 2; owner++)
			cr_assert_not(pbpf_frame_is_shim(&row(minor)->off, owner), "3.%u owner %d",
				      minor, owner);
		cr_assert(pbpf_frame_is_shim(&row(minor)->off, 3), "3.%u: the interpreter", minor);
		cr_assert(pbpf_frame_is_shim(&row(minor)->off, 4), "3.%u: owner 4", minor);
	}
}
