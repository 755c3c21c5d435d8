/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Interpreter descriptors: what it takes to read one process's Python
 * objects (its build's offsets and the addresses in its address space), how
 * a process is resolved into one, and the registry that gives each distinct
 * descriptor a small id.  The id travels with the process in the BPF traced
 * set and with every stack event, so the symbolizer reads each process's
 * code objects with its own layout, whatever mix of versions is traced.
 */
#ifndef PROFILIS_INTERPS_H
#define PROFILIS_INTERPS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "profilis/abi.h"
#include "target.h"

/* One resolved process. */
struct interp {
	struct target t;
	struct pbpf_py_offsets off;
};

/* What the symbolizer needs of a descriptor. */
struct interp_desc {
	struct pbpf_py_offsets off;
	uint64_t code_type; /* &PyCode_Type in the process, 0: not exported */
};

/*
 * Resolves `pid` (a thread resolves to its process): the interpreter it
 * maps, the version, the offsets and the addresses.  On failure -errno and a
 * message naming cause and remedy: -ESRCH no such process, -ENOEXEC not a
 * CPython, -ENOTSUP a version we do not support (the message names the
 * supported ones), -ENOENT a supported version without the hooked symbols
 * (an executable whose libpython is not mapped yet), -EAGAIN an interpreter
 * not initialized yet.
 */
int interp_resolve(pid_t pid, struct interp *out, char *msg, size_t msglen);

/*
 * hash() in process `ip` of each name BPF looks up (enum pbpf_name), from
 * its _Py_HashSecret; 0, or -errno when the secret is not exported (-ENOENT)
 * or cannot be read.  A fork shares the secret.
 */
int interp_name_hashes(const struct interp *ip, int64_t out[PBPF_NAME__COUNT]);

struct interps;

struct interps *interps__new(void);
/* The id of a descriptor equal to `d`, added when new; -ENOMEM.  Safe to
 * call while another thread calls interps__get. */
long interps__add(struct interps *r, const struct interp_desc *d);
/* Copies descriptor `id` into `out`; -ENOENT for an id never given. */
int interps__get(struct interps *r, uint32_t id, struct interp_desc *out);
size_t interps__count(struct interps *r);
void interps__free(struct interps *r);

#endif
