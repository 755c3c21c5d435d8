/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Looking into a Python process from userspace (process_vm_readv): the
 * reads of the symbolizer and of pyruntime (interpreter state), and for
 * --list, whether a module is in its sys.modules.
 */
#ifndef PROFILIS_PYINSPECT_H
#define PROFILIS_PYINSPECT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "profilis/abi.h"

/* Copies len bytes of pid's memory at addr; 0, or -errno (a short read or a
 * NULL address is -EFAULT). */
int pyinspect_read(pid_t pid, uint64_t addr, void *buf, size_t len);

/* One pointer-sized word, as pyinspect_read. */
int pyinspect_read_u64(pid_t pid, uint64_t addr, uint64_t *out);

/* 1 if `name` is a key of sys.modules of the main interpreter, 0 if not,
 * -errno when the process could not be read. */
int pyinspect_module_loaded(pid_t pid, const struct pbpf_py_offsets *off, uint64_t runtime_addr,
			    const char *name);

#endif
