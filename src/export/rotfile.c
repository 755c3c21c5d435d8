// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Rotated JSONL files.  The active file is a new hidden file with an
 * unpredictable name (safefile.c: O_EXCL|O_NOFOLLOW in the pinned
 * directory), so nothing planted there is ever written through or truncated.
 * Finished files appear only complete: fsync, then a rename that never
 * replaces to the template's name, with "-1", "-2", ... inserted when that
 * name is taken (two rotations in one second both survive).  When that
 * rename fails for any other reason the records are kept under a fallback
 * name, profilis-unrenamed-PID-RANDOM.jsonl (or, failing that, under the
 * active name), and counted: a failed rename never loses data.  A write that
 * fails half way is truncated back, so a reader never meets a partial line.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "clock.h"
#include "rotfile.h"
#include "safefile.h"

#define DEFAULT_TEMPLATE "profilis-{timestamp}.jsonl"
/* Longest expansions: a 16-character timestamp, a PID up to pid_max
 * (4194304), a %06llu counter up to 20 digits, and a "-9999" suffix. */
#define TS_LEN 16
#define PID_LEN 7
#define SEQ_LEN 20
#define SUFFIX_LEN 5

struct rotfile {
	struct rotfile_opts o;
	int fd;
	int owns_fd;
	int is_regular;
	int dirfd; /* dir mode: the pinned directory (safefile's) */
	char active_name[NAME_MAX + 1];
	char active[PATH_MAX + NAME_MAX + 2]; /* for messages */
	off_t size;			      /* bytes of complete lines in the active file */
	uint64_t opened_ns;		      /* when the active file was opened (monotonic) */
	uint64_t seq;			      /* finished files so far */
	uint64_t rename_failures;	      /* finished files kept under a fallback name */
	uint64_t deleted_files;		      /* active files someone else deleted */
	uint64_t deleted_bytes;		      /* what was in them */
	int rename_error;		      /* why the last of them failed, -errno */
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
	for (const char *p = t; (p = strchr(p, '{'));) {
		size_t i, n = sizeof(fields) / sizeof(fields[0]);

		for (i = 0; i < n; i++)
			if (strncmp(p, fields[i], strlen(fields[i])) == 0)
				break;
		if (i == n) {
			snprintf(msg, msglen,
				 "--filename-template: unknown field '%.*s' in '%s'; "
				 "known: {timestamp}, {pid}, {seq}",
				 (int)strcspn(p, "}") + 1, p, t);
			return -EINVAL;
		}
		has_unique |= i != 1;
		p += strlen(fields[i]);
	}
	if (!has_unique) {
		snprintf(msg, msglen,
			 "--filename-template: '%s' needs {timestamp} or {seq} so "
			 "that files get distinct names",
			 t);
		return -EINVAL;
	}
	if (rotfile_template_max_len(t) > NAME_MAX) {
		snprintf(msg, msglen,
			 "--filename-template: names from '%.40s...' can be %zu "
			 "characters long; a file name has at most %d",
			 t, rotfile_template_max_len(t), NAME_MAX);
		return -ENAMETOOLONG;
	}
	return 0;
}

size_t rotfile_template_max_len(const char *t)
{
	size_t n = SUFFIX_LEN;

	for (const char *p = t ? t : DEFAULT_TEMPLATE; *p;) {
		if (strncmp(p, "{timestamp}", 11) == 0)
			n += TS_LEN, p += 11;
		else if (strncmp(p, "{pid}", 5) == 0)
			n += PID_LEN, p += 5;
		else if (strncmp(p, "{seq}", 5) == 0)
			n += SEQ_LEN, p += 5;
		else
			n++, p++;
	}
	return n;
}

int rotfile_check_path(const char *dir, const char *t, char *msg, size_t msglen)
{
	int err = rotfile_check_template(t, msg, msglen);
	size_t n = strlen(dir) + 1 + rotfile_template_max_len(t);

	if (!err && n >= PATH_MAX) {
		snprintf(msg, msglen,
			 "-o %.60s%s: paths of files there can be %zu characters "
			 "long; a path has at most %d",
			 dir, strlen(dir) > 60 ? "..." : "", n, PATH_MAX - 1);
		err = -ENAMETOOLONG;
	}
	return err;
}

int rotfile_render(const char *t, time_t when, int pid, uint64_t seq, char *out, size_t outlen)
{
	size_t o = 0;
	const char *p = t ? t : DEFAULT_TEMPLATE;
	struct tm tm;

	if (outlen == 0)
		return -ENAMETOOLONG;
	if (!gmtime_r(&when, &tm))
		return -EOVERFLOW; /* a time no calendar year holds */
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
	char prefix[64];
	int fd;

	/* The directory as pinned now: safefile pins it again when it was
	 * removed, and a retry after a failed rotation must see that. */
	fd = safefile_dir(rf->o.dir, "-o");
	if (fd < 0)
		return fd;
	rf->dirfd = fd;
	snprintf(prefix, sizeof(prefix), ".profilis-active-%d-", (int)getpid());
	fd = safefile_create(rf->dirfd, prefix, ".jsonl", rf->active_name, sizeof(rf->active_name));
	rf->opened_ns = mono_ns();
	if (fd < 0)
		return fd;
	snprintf(rf->active, sizeof(rf->active), "%s/%s", rf->o.dir, rf->active_name);
	rf->fd = fd;
	rf->owns_fd = 1;
	rf->is_regular = 1;
	rf->size = 0;
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
	rf->fd = -1;
	if (o->dir) {
		rf->dirfd = safefile_dir(o->dir, "-o");
		err = rf->dirfd < 0 ? rf->dirfd : open_active(rf);
	} else if (o->file && strcmp(o->file, "-") != 0) {
		rf->fd = safefile_open_append(o->file);
		if (rf->fd < 0)
			err = rf->fd;
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

/* Someone deleted the active file, or the whole directory, under us: what was
 * in it is gone with it, and writing on would lose everything that follows
 * silently.  Counted; writing goes on in a new file, in the directory now at
 * the same path when the pinned one was removed. */
static int reopen_if_deleted(struct rotfile *rf)
{
	struct stat st;

	if (fstat(rf->fd, &st) != 0 || st.st_nlink > 0)
		return 0;
	rf->deleted_files++;
	rf->deleted_bytes += rf->size;
	close(rf->fd);
	rf->fd = -1;
	rf->size = 0;
	return open_active(rf); /* in the directory now at that path */
}

int rotfile__write(struct rotfile *rf, const char *buf, size_t len)
{
	size_t off = 0;
	int err;

	if (rf->o.dir && rf->fd >= 0 && (err = reopen_if_deleted(rf)))
		return err;

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

/* The template's name, or with "-N" before the extension when taken. */
static int publish(struct rotfile *rf)
{
	char base[NAME_MAX + 1], name[NAME_MAX + 1 + 16];
	int err = rotfile_render(rf->o.template, time(NULL), getpid(), rf->seq, base, sizeof(base));

	for (int attempt = 0; !err && attempt < 10000; attempt++) {
		const char *dot = strrchr(base, '.');

		if (attempt == 0)
			snprintf(name, sizeof(name), "%s", base);
		else if (dot)
			snprintf(name, sizeof(name), "%.*s-%d%s", (int)(dot - base), base, attempt,
				 dot);
		else
			snprintf(name, sizeof(name), "%s-%d", base, attempt);
		err = strlen(name) > NAME_MAX
			      ? -ENAMETOOLONG
			      : safefile_rename_new(rf->dirfd, rf->active_name, name);
		if (err != -EEXIST)
			return err;
		err = 0;
	}
	return err ? err : -EEXIST;
}

/* Keeps records whose file could not get its name: a visible fallback
 * name with the active name's random part, else the active name itself
 * (open_active then picks a new one). */
static void keep_unrenamed(struct rotfile *rf)
{
	char name[NAME_MAX + 1];
	const char *rnd = strrchr(rf->active_name, '-');

	snprintf(name, sizeof(name), "profilis-unrenamed-%d%s", (int)getpid(), rnd ? rnd : "");
	safefile_rename_new(rf->dirfd, rf->active_name, name);
	rf->rename_failures++;
}

/* Gives the active file its final name, never replacing another file and
 * never losing it.  A name that cannot be given is not an error: the file
 * is kept and counted (rotfile__rename_failures); fsync's is. */
static int finish_active(struct rotfile *rf)
{
	int err = 0, err2;

	if (rf->fd < 0)
		return 0; /* a failed rotation left no active file */
	if (fsync(rf->fd) != 0)
		err = -errno;
	close(rf->fd);
	rf->fd = -1;
	rf->size = 0;
	err2 = publish(rf);
	if (err2) {
		rf->rename_error = err2;
		keep_unrenamed(rf);
	}
	rf->seq++;
	return err;
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

uint64_t rotfile__rename_failures(const struct rotfile *rf, int *last_err)
{
	if (last_err)
		*last_err = rf->rename_error;
	return rf->rename_failures;
}

uint64_t rotfile__deleted(const struct rotfile *rf, uint64_t *bytes)
{
	if (bytes)
		*bytes = rf->deleted_bytes;
	return rf->deleted_files;
}

const char *rotfile__name(const struct rotfile *rf)
{
	return rf->active;
}

void rotfile__finish(struct rotfile *rf)
{
	if (!rf || rf->fd < 0 || !rf->owns_fd)
		return;
	if (rf->o.dir) {
		if (rf->size > 0) {
			finish_active(rf);
			return;
		}
		unlinkat(rf->dirfd, rf->active_name, 0);
	} else {
		fsync(rf->fd);
	}
	close(rf->fd);
	rf->fd = -1;
}

uint64_t rotfile__close(struct rotfile *rf)
{
	uint64_t files;

	if (!rf)
		return 0;
	rotfile__finish(rf);
	files = rf->seq;
	free(rf);
	return files;
}
