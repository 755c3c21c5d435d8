/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Command line: argp parsing with range-checked numbers into a config.
 */
#ifndef PROFILIS_CLI_H
#define PROFILIS_CLI_H

#include <stddef.h>
#include <sys/types.h>

#define EXIT_USAGE 64

struct config {
	pid_t pid;
	const char *output;		/* NULL: stdout */
	double duration_s;		/* 0: until interrupted */
	int verbosity;			/* 0 normal, 1 -v, 2 -vv */
	int quiet;
	size_t ringbuf_bytes;
};

/* Parses argv into cfg.  Returns 0, or EXIT_USAGE after printing why. */
int cli_parse(int argc, char **argv, struct config *cfg);

#endif
