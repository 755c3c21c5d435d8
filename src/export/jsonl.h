/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The JSONL exporter: one Profilis-compatible REQ object per line, written
 * whole or not at all, to stdout or a file.
 */
#ifndef PROFILIS_JSONL_H
#define PROFILIS_JSONL_H

#include <stddef.h>
#include <stdint.h>
#include "request.h"

#define JSONL_SCHEMA_VERSION 1
/* The longest line a record can produce, escapes included: a text byte
 * escapes to at most 6 ("\u0000"), and route may be a copy of path. */
#define JSONL_LINE_MAX 32768
_Static_assert(6 * (PBPF_METHOD_MAX + 2 * PBPF_PATH_MAX + PBPF_ENDPOINT_MAX + PBPF_EXC_MAX) +
			       1024 <=
		       JSONL_LINE_MAX,
	       "a record's longest line fits");

/* Encodes one record as a JSON line ending in '\n'.  Returns its length, or
 * -ENOSPC if `size` is too small (nothing partial is left in `buf`). */
int jsonl_encode_request(const struct request_record *r, char *buf, size_t size);

/* The same record as an indented object for people (the console's pretty
 * mode): each field on its own line, two spaces in, ": " after each key,
 * "}\n" on the last line; the same bytes console_pretty makes of the
 * compact line, plus its '\n'. */
int jsonl_encode_request_pretty(const struct request_record *r, char *buf, size_t size);

/* Appends `s` as a JSON string literal; returns the new length or -ENOSPC. */
int jsonl_put_string(char *buf, size_t size, size_t pos, const char *s);
/* The same for `n` bytes that may hold NULs (written as \u0000). */
int jsonl_put_string_n(char *buf, size_t size, size_t pos, const char *s, size_t n);

struct jsonl_opts {
	const char *path;	       /* NULL or "-": standard output */
	const char *dir;	       /* rotated files in this directory (wins over path) */
	long long rotate_bytes;	       /* dir: new file past this size, 0 never */
	double rotate_secs;	       /* dir: new file at this age, 0 never */
	const char *filename_template; /* dir: NULL = profilis-{timestamp}.jsonl */
};

struct jsonl_stats {
	uint64_t written;      /* records fully written */
	uint64_t write_errors; /* records lost to a failed write */
	uint64_t bytes;
	uint64_t files;		  /* finished (rotated) files */
	uint64_t rename_failures; /* of those, kept under a fallback name */
	uint64_t deleted_files;	  /* active files deleted by someone else */
	uint64_t deleted_bytes;	  /* the records they held */
	uint64_t other_written;	  /* PROFILE and other non-request records */
	uint64_t other_errors;
};

/* Validates a filename template for files in dir (fields, NAME_MAX,
 * PATH_MAX); 0 or -errno with the reason in msg. */
int jsonl_check_template(const char *dir, const char *template, char *msg, size_t msglen);

struct jsonl_exporter;

struct jsonl_exporter *jsonl__new(const struct jsonl_opts *opts);
int jsonl__push(struct jsonl_exporter *x, const struct request_record *r);
int jsonl__flush(struct jsonl_exporter *x);
/* Appends one already encoded record line (ending in '\n'). */
int jsonl__push_line(struct jsonl_exporter *x, const char *line, size_t n);
/* Flushes and applies time-based rotation; call about every flush interval. */
int jsonl__tick(struct jsonl_exporter *x);
void jsonl__stats(const struct jsonl_exporter *x, struct jsonl_stats *out);
/* Flushes and closes the output (a rotated active file gets its final
 * name); stats stay readable.  jsonl__free does it when not done yet. */
void jsonl__finish(struct jsonl_exporter *x);
void jsonl__free(struct jsonl_exporter *x);

#endif
