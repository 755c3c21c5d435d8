// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Rotated JSONL files.  The active file is a hidden name in the directory;
 * finished files appear only complete: fsync, then renameat2(RENAME_NOREPLACE)
 * to the template's name, with "-1", "-2", ... inserted when that name is
 * taken (two rotations in one second both survive).  A write that fails half
 * way is truncated back, so a reader never meets a partial line.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "clock.h"
#include "rotfile.h"

#define DEFAULT_TEMPLATE "profilis-{timestamp}.jsonl"

struct rotfile {
	struct rotfile_opts o;
	int fd;
	int owns_fd;
	int is_regular;
	char active[4096];
	off_t size;		/* bytes of complete lines in the active file */
	uint64_t opened_ns;	/* when the active file was opened (monotonic) */
	uint64_t seq;		/* finished files so far */
};

static const char *const fields[] = { "{timestamp}", "{pid}", "{seq}" };

int rotfile_check_template(const char *t, char *msg, size_t msglen)
{
	int has_unique = 0;

	if (!t)
		return 0;
	if (!*t || strchr(t, '/')) {
		snprintf(msg, msglen, "--filename-template: '%s' must be a file name (no '/')", t);
		return -EINVAL;
	}
	for (const char *p = t; (p = strchr(p, '{')); ) {
		size_t i, n = sizeof(fields) / sizeof(fields[0]);

		for (i = 0; i < n; i++)
			if (strncmp(p, fields[i], strlen(fields[i])) == 0)
				break;
		if (i == n) {
			snprintf(msg, msglen, "--filename-template: unknown field '%.*s' in '%s'; "
				 "known: {timestamp}, {pid}, {seq}",
				 (int)strcspn(p, "}") + 1, p, t);
			return -EINVAL;
		}
		has_unique |= i != 1;
		p += strlen(fields[i]);
	}
	if (!has_unique) {
		snprintf(msg, msglen, "--filename-template: '%s' needs {timestamp} or {seq} so "
			 "that files get distinct names", t);
		return -EINVAL;
	}
	return 0;
}

int rotfile_render(const char *t, time_t when, int pid, uint64_t seq, char *out,
		   size_t outlen)
{
	size_t o = 0;
	const char *p = t ? t : DEFAULT_TEMPLATE;
	struct tm tm;

	gmtime_r(&when, &tm);
	while (*p && o + 1 < outlen) {
		int n = 0;

		if (strncmp(p, "{timestamp}", 11) == 0) {
			n = strftime(out + o, outlen - o, "%Y%m%dT%H%M%SZ", &tm);
			p += 11;
		} else if (strncmp(p, "{pid}", 5) == 0) {
			n = snprintf(out + o, outlen - o, "%d", pid);
			p += 5;
		} else if (strncmp(p, "{seq}", 5) == 0) {
			n = snprintf(out + o, outlen - o, "%06llu", (unsigned long long)seq);
			p += 5;
		} else {
			out[o++] = *p++;
			continue;
		}
		if (n <= 0 || (size_t)n >= outlen - o)
			return -ENAMETOOLONG;
		o += n;
	}
	out[o] = 0;
	return *p ? -ENAMETOOLONG : 0;
}

static int open_active(struct rotfile *rf)
{
	snprintf(rf->active, sizeof(rf->active), "%s/.profilis-active-%d.jsonl", rf->o.dir,
		 (int)getpid());
	rf->fd = open(rf->active, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	rf->opened_ns = mono_ns();
	if (rf->fd < 0)
		return -errno;
	rf->owns_fd = 1;
	rf->is_regular = 1;
	rf->size = 0;
	rf->opened_ns = mono_ns();
	return 0;
}

struct rotfile *rotfile__open(const struct rotfile_opts *o)
{
	struct rotfile *rf = calloc(1, sizeof(*rf));
	struct stat st;
	int err = 0;

	if (!rf)
		return NULL;
	rf->o = *o;
	if (o->dir) {
		err = open_active(rf);
	} else if (o->file && strcmp(o->file, "-") != 0) {
		rf->fd = open(o->file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
		if (rf->fd < 0)
			err = -errno;
		rf->owns_fd = 1;
		snprintf(rf->active, sizeof(rf->active), "%s", o->file);
	} else {
		rf->fd = STDOUT_FILENO;
		snprintf(rf->active, sizeof(rf->active), "stdout");
	}
	if (!err && fstat(rf->fd, &st) == 0 && S_ISREG(st.st_mode)) {
		rf->is_regular = 1;
		rf->size = st.st_size;
	}
	if (err) {
		free(rf);
		errno = -err;
		return NULL;
	}
	return rf;
}

int rotfile__write(struct rotfile *rf, const char *buf, size_t len)
{
	size_t off = 0;
	int err;

	/* A rotation that could not open the next file is retried here. */
	if (rf->fd < 0 && rf->o.dir && (err = open_active(rf)))
		return err;

	while (off < len) {
		ssize_t n = write(rf->fd, buf + off, len - off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			err = n < 0 ? errno : EIO;
			/* Cut a half-written batch back to the last complete line, and
			 * write the next one there (the active file is not O_APPEND). */
			if (rf->is_regular && off > 0 &&
			    (ftruncate(rf->fd, rf->size) != 0 ||
			     lseek(rf->fd, rf->size, SEEK_SET) < 0))
				err = errno;
			return -err;
		}
		off += n;
	}
	rf->size += len;
	return 0;
}

/* Gives the active file its final name, never replacing another file. */
static int finish_active(struct rotfile *rf)
{
	char name[1100], path[4096 + 1200], base[1024];
	int err = 0;

	if (fsync(rf->fd) != 0)
		err = -errno;
	close(rf->fd);
	rf->fd = -1;
	if (rotfile_render(rf->o.template, time(NULL), getpid(), rf->seq, base, sizeof(base)))
		return -ENAMETOOLONG;
	for (int attempt = 0; attempt < 10000; attempt++) {
		const char *dot = strrchr(base, '.');

		if (attempt == 0)
			snprintf(name, sizeof(name), "%s", base);
		else if (dot)
			snprintf(name, sizeof(name), "%.*s-%d%s", (int)(dot - base), base, attempt,
				 dot);
		else
			snprintf(name, sizeof(name), "%s-%d", base, attempt);
		snprintf(path, sizeof(path), "%s/%s", rf->o.dir, name);
		if (renameat2(AT_FDCWD, rf->active, AT_FDCWD, path, RENAME_NOREPLACE) == 0) {
			rf->seq++;
			return err;
		}
		if (errno != EEXIST)
			return -errno;
	}
	return -EEXIST;
}

static int rotate(struct rotfile *rf)
{
	int err = finish_active(rf);
	int err2 = open_active(rf);

	return err ? err : err2;
}

bool rotfile__would_overflow(const struct rotfile *rf, size_t len)
{
	return rf->o.dir && rf->o.rotate_bytes && rf->size + (long long)len > rf->o.rotate_bytes;
}

int rotfile__make_room(struct rotfile *rf, size_t len)
{
	if (!rf->o.dir || !rf->o.rotate_bytes || rf->size == 0 ||
	    rf->size + (long long)len <= rf->o.rotate_bytes)
		return 0;
	return rotate(rf);
}

int rotfile__tick(struct rotfile *rf)
{
	double age = (mono_ns() - rf->opened_ns) / 1e9;

	if (!rf->o.dir || rf->o.rotate_secs <= 0 || age < rf->o.rotate_secs)
		return 0;
	if (rf->size == 0) {
		/* Nothing to publish: restart the clock instead of making an empty file. */
		rf->opened_ns = mono_ns();
		return 0;
	}
	return rotate(rf);
}

uint64_t rotfile__rotations(const struct rotfile *rf)
{
	return rf->seq;
}

const char *rotfile__name(const struct rotfile *rf)
{
	return rf->active;
}

uint64_t rotfile__close(struct rotfile *rf)
{
	uint64_t files;

	if (!rf)
		return 0;
	if (rf->o.dir && rf->fd >= 0) {
		if (rf->size > 0)
			finish_active(rf);
		else {
			close(rf->fd);
			unlink(rf->active);
		}
	} else if (rf->owns_fd && rf->fd >= 0) {
		fsync(rf->fd);
		close(rf->fd);
	}
	files = rf->seq;
	free(rf);
	return files;
}
