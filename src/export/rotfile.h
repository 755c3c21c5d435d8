/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * An append-only line sink: standard output, one file, or a directory of
 * rotated files.  Writes are whole lines or nothing: a failed write (a full
 * disk) is cut back to the last complete line.  Rotation fsyncs the active
 * file and renames it, without ever replacing an existing file, to a name
 * made from a template; a file that cannot get that name keeps its records
 * under a fallback name and is counted.  Files are created by safefile.c.
 */
#ifndef PROFILIS_ROTFILE_H
#define PROFILIS_ROTFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct rotfile_opts {
	const char *dir;	/* rotated files here; else: */
	const char *file;	/* append to this file; else stdout */
	long long rotate_bytes; /* 0: never by size */
	double rotate_secs;	/* 0: never by age */
	const char *template;	/* NULL: "profilis-{timestamp}.jsonl" */
};

struct rotfile;

/* NULL with errno set on failure. */
struct rotfile *rotfile__open(const struct rotfile_opts *o);
/* Appends whole lines; 0 or -errno (nothing of buf is then in the file). */
int rotfile__write(struct rotfile *rf, const char *buf, size_t len);
/* Whether `len` more bytes would pass rotate_bytes (dir mode). */
bool rotfile__would_overflow(const struct rotfile *rf, size_t len);
/* Rotates first if `len` more bytes would pass rotate_bytes and the active
 * file is not empty (a single oversized line still gets written). */
int rotfile__make_room(struct rotfile *rf, size_t len);
/* Rotates if the active file is older than rotate_secs and not empty. */
int rotfile__tick(struct rotfile *rf);
/* How many finished files were produced (fallback-named ones included). */
uint64_t rotfile__rotations(const struct rotfile *rf);
/* How many finished files could not get their template name and were kept
 * as profilis-unrenamed-PID-RANDOM.jsonl (or under their hidden active name
 * if even that failed); the last one's -errno in *last_err if not NULL. */
uint64_t rotfile__rename_failures(const struct rotfile *rf, int *last_err);
/* Active files deleted by someone else while being written (and the bytes
 * of records they held); each was replaced by a new one. */
uint64_t rotfile__deleted(const struct rotfile *rf, uint64_t *bytes);
const char *rotfile__name(const struct rotfile *rf);
/* Final rotation (a non-empty active file gets its name) and close; the
 * counters stay readable.  Idempotent. */
void rotfile__finish(struct rotfile *rf);
/* rotfile__finish, then free; returns how many finished files there were. */
uint64_t rotfile__close(struct rotfile *rf);

/* Checks a template: only {timestamp}, {pid} and {seq}, at least one of
 * {timestamp} or {seq}, no '/', and names within NAME_MAX.  0, or -EINVAL
 * (-ENAMETOOLONG for the length) with the reason in msg. */
int rotfile_check_template(const char *template, char *msg, size_t msglen);
/* The longest name a template can expand to ({pid} up to pid_max, {seq}
 * up to 20 digits) plus the "-N" a name collision adds. */
size_t rotfile_template_max_len(const char *template);
/* rotfile_check_template, plus: the longest name fits NAME_MAX and DIR/NAME
 * fits PATH_MAX.  0, or -EINVAL / -ENAMETOOLONG with the reason in msg. */
int rotfile_check_path(const char *dir, const char *template, char *msg, size_t msglen);
/* Expands a checked template. */
int rotfile_render(const char *template, time_t when, int pid, uint64_t seq, char *out,
		   size_t outlen);

#endif
