/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Target resolution: from a PID to the CPython interpreter it runs, with the
 * symbol addresses and uprobe offsets the loader needs, and the process tree
 * (the PID and its descendants) to trace.
 */
#ifndef PROFILIS_TARGET_H
#define PROFILIS_TARGET_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "procmaps.h"

struct target {
	pid_t pid;
	char comm[64];
	char exe[MAPS_PATH_MAX];	      /* readlink /proc/PID/exe */
	char interp[MAPS_PATH_MAX];	      /* interpreter file, as the target sees it */
	char interp_host[MAPS_PATH_MAX + 32]; /* the same file, as we open it */
	int is_lib;			      /* shared libpython (else the executable) */
	int is_pie;			      /* ET_DYN: addresses need the load bias */
	unsigned int py_major, py_minor, py_micro;
	char py_version[16]; /* "3.11.2"; "3.10" when the micro is unknown */
	uint64_t load_bias;
	uint64_t set_offset, reset_offset;	    /* file offsets for the uprobes */
	uint64_t runtime_addr, none_addr;	    /* runtime addresses in the target */
	uint64_t unicode_type_addr, long_type_addr; /* &PyUnicode_Type, &PyLong_Type */
	uint64_t code_type_addr;		    /* &PyCode_Type, 0 if not exported */
	uint64_t hash_secret_addr;		    /* &_Py_HashSecret, 0 if not exported */
};

/*
 * Fills `t` for `pid`.  On failure returns -errno and writes a message that
 * names the cause and the remedy into `msg`:
 *   -ESRCH no such process, -ENOEXEC no CPython mapped, -ENOENT a needed
 *   symbol is missing, -EACCES the files cannot be read.
 */
int target_resolve(pid_t pid, struct target *t, char *msg, size_t msglen);

/* Pure: the load bias of a mapping that starts at `start` with file offset
 * `offset`, inside a PT_LOAD with the given vaddr/offset. */
uint64_t target_load_bias(uint64_t start, uint64_t offset, uint64_t seg_vaddr, uint64_t seg_offset);

/* Pure: decodes Py_Version (0x030B02F0 -> 3, 11, 2). */
void target_decode_version(uint32_t hexversion, unsigned int *major, unsigned int *minor,
			   unsigned int *micro);

/* Collects `pid` and all its live descendants; returns how many (<= max). */
int target_process_tree(pid_t pid, pid_t *out, int max);

/* A guess at the WSGI server from the command line: "gunicorn", "uwsgi",
 * "waitress", "flask run", else "python". */
void target_server_kind(pid_t pid, char *out, size_t len);

/* Whether the process still exists (and is not a zombie). */
int target_alive(pid_t pid);

#endif
