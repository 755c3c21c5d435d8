/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The console exporter: request records on standard output, compact (one
 * JSON object per line, the JSONL format) or pretty (indented, for people).
 */
#ifndef PROFILIS_CONSOLE_H
#define PROFILIS_CONSOLE_H

#include <stdbool.h>
#include <stdint.h>
#include "request.h"

struct console_opts {
	bool pretty;
	int fd; /* normally STDOUT_FILENO */
};

struct console_stats {
	uint64_t written;
	uint64_t write_errors;
};

struct console_exporter;

struct console_exporter *console__new(const struct console_opts *opts);
int console__push(struct console_exporter *x, const struct request_record *r);
/* Shows one encoded JSON line (n < 0: an encoding error, counted). */
int console__push_line(struct console_exporter *x, const char *line, int n);
int console__flush(struct console_exporter *x);
void console__stats(const struct console_exporter *x, struct console_stats *out);
/* True once the reader went away (EPIPE): nothing more can be shown. */
bool console__closed(const struct console_exporter *x);
void console__free(struct console_exporter *x);

/* Pure: re-indents one compact JSON line; the result is malloc'ed. */
char *console_pretty(const char *line);

#endif
