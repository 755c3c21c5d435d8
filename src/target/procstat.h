/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * /proc/PID/stat: a process's state, parent and start time, the fields the
 * process tree, the liveness checks and the symbol cache's exit detection
 * need (proc(5)).  One reader, so the comm field (which may hold spaces and
 * parentheses) is handled the same way everywhere.
 */
#ifndef PROFILIS_PROCSTAT_H
#define PROFILIS_PROCSTAT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct procstat {
	char state;	      /* 'R', 'S', 'D', 'Z', ... */
	pid_t ppid;	      /* field 4 */
	uint64_t start_ticks; /* field 22: clock ticks after boot */
};

/* Pure: parses the text of a stat file; 0, or -EINVAL when a field is
 * missing. */
int procstat_parse(const char *text, struct procstat *out);

/* Reads /proc/PID/stat; 0, -errno when it cannot be opened (-ENOENT: no
 * such process), or -EINVAL when it cannot be parsed. */
int procstat_read(pid_t pid, struct procstat *out);

/* A zombie or a dead task: nothing is left to trace or to read. */
bool procstat_dead(char state);

#endif
