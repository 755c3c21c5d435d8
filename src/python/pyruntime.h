/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The interpreter offsets for one live target: its version's table row
 * (src/python/pyoffsets_table.inc), overlaid for 3.13+ with the target's own
 * _Py_DebugOffsets, plus what depends on where the interpreter is loaded
 * and which GIL it runs under.
 */
#ifndef PROFILIS_PYRUNTIME_H
#define PROFILIS_PYRUNTIME_H

#include <stddef.h>
#include <stdint.h>
#include "profilis/abi.h"
#include "target.h"

/* Bytes of _PyRuntime's leading _Py_DebugOffsets in 3.13. */
#define PYDEBUG_313_SIZE 584

/* Fills `out` for `t`.  0, or -errno with a message naming the cause:
 * -ENOTSUP version not in the table, -EINVAL the target's debug offsets
 * do not validate, -EFAULT its memory cannot be read, -EAGAIN the
 * interpreter has no GIL yet. */
int pyruntime_offsets(const struct target *t, struct pbpf_py_offsets *out, char *msg,
		      size_t msglen);

/* Pure: overlays a 3.13 _Py_DebugOffsets image onto `off`.  0, or -EINVAL
 * when the cookie, the version (major.minor) or the size do not match. */
int pydebug_overlay_313(const uint8_t *img, size_t len, unsigned int major, unsigned int minor,
			struct pbpf_py_offsets *off);

/* Pure: how many bytes from a frame's start the sampler must read to see
 * the code, previous, instruction and owner fields; 0 if more than 128. */
uint32_t pyruntime_frame_window(const struct pbpf_py_offsets *off);

#endif
