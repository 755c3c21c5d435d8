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
#include "pyoffsets.h"
#include "target.h"

/* Bytes of the largest _Py_DebugOffsets layout known (3.15). */
#define PYDEBUG_MAX_SIZE 888

/* Fills `out` for `t`.  0, or -errno with a message naming the cause:
 * -ENOTSUP version not in the table, -EINVAL the target's debug offsets
 * do not validate, -EFAULT its memory cannot be read, -EAGAIN the
 * interpreter has no GIL yet. */
int pyruntime_offsets(const struct target *t, struct pbpf_py_offsets *out, char *msg,
		      size_t msglen);

/* The same, and the version's struct py_version_rules (3.14+ facts the
 * abi has no field for yet).  -ENOTSUP also for a build refused by name
 * (free-threaded, pre-release). */
int pyruntime_offsets_rules(const struct target *t, struct pbpf_py_offsets *out,
			    struct py_version_rules *rules, char *msg, size_t msglen);

/* Bytes of major.minor's _Py_DebugOffsets; 0 when it has none we know. */
size_t pydebug_size(unsigned int major, unsigned int minor);

/* Pure: overlays a target's _Py_DebugOffsets image (`len` bytes from the
 * start of its _PyRuntime) onto `off` and `rules`, which hold major.minor's
 * table row.  The layout is the one of the image's version word.  0;
 * -ENOTSUP for a build refused by name (free-threaded, a pre-release, a
 * minor version with no known layout); -EINVAL for an image that is not
 * major.minor's in that layout (cookie, version, truncated, a foreign or
 * absurd layout).  `msg` says which; a refused image changes nothing. */
int pydebug_overlay(const uint8_t *img, size_t len, unsigned int major, unsigned int minor,
		    struct pbpf_py_offsets *off, struct py_version_rules *rules, char *msg,
		    size_t msglen);

/* Pure: how many bytes from a frame's start the sampler must read to see
 * the code, previous, instruction and owner fields; 0 if more than 128. */
uint32_t pyruntime_frame_window(const struct pbpf_py_offsets *off);

#endif
