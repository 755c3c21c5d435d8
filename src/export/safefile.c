// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Safe file creation for a root process in directories others may own: a
 * pinned directory handle per output directory, O_EXCL|O_NOFOLLOW creation
 * under random names, renames that never replace what we did not create,
 * and a pre-attach probe.  The rules and the decisions behind them are in
 * safefile.h.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>
#include "log.h"
#include "safefile.h"

#define PIN_MAX 16

static struct pin {
	char path[PATH_MAX];
	int fd;
} pins[PIN_MAX];
static int npins;
static pthread_mutex_t pin_lock = PTHREAD_MUTEX_INITIALIZER;
static mode_t file_mode = SAFEFILE_DEFAULT_MODE;

void safefile_set_mode(mode_t mode)
{
	file_mode = mode & 0666;
}

mode_t safefile_mode(void)
{
	return file_mode;
}

int safefile_parse_mode(const char *text, mode_t *out)
{
	unsigned long v = 0;

	if (!*text || strlen(text) > 6)
		return -EINVAL;
	for (const char *p = text; *p; p++) {
		if (*p < '0' || *p > '7')
			return -EINVAL;
		v = v * 8 + (*p - '0');
	}
	/* Records are data: never executable, never set-id or sticky. */
	if (v & ~0666UL)
		return -EINVAL;
	*out = v;
	return 0;
}

int safefile_dir_shared(int dirfd, char *why, size_t whylen)
{
	struct stat st;
	uid_t me = geteuid();

	if (fstat(dirfd, &st) != 0)
		return -errno;
	if (st.st_uid != me && st.st_uid != 0) {
		snprintf(why, whylen, "its owner, uid %u", (unsigned)st.st_uid);
		return 1;
	}
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX)) {
		snprintf(why, whylen, "%s (mode %04o, no sticky bit)",
			 st.st_mode & S_IWOTH ? "every user" : "its group", st.st_mode & 07777);
		return 1;
	}
	return 0;
}

static void warn_if_shared(int fd, const char *path, const char *what)
{
	char why[128];

	if (safefile_dir_shared(fd, why, sizeof(why)) == 1)
		p_warn("%s: directory %s can be written by %s: files are created there without "
		       "following symbolic links or replacing files we did not create, but that "
		       "user can rename or delete them; use a directory only root can write to "
		       "keep them",
		       what ? what : "output", path, why);
}

static int pin_dir(const char *path, const char *what)
{
	int fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	warn_if_shared(fd, path, what);
	if (npins < PIN_MAX) {
		snprintf(pins[npins].path, sizeof(pins[npins].path), "%s", path);
		pins[npins++].fd = fd;
	}
	/* More directories than outputs exist cannot happen; were it to, the
	 * handle is simply kept unpinned (and leaks, once). */
	return fd;
}

/* A pinned directory that was removed (rm -rf) is pinned again by its path,
 * where a new one may stand: files made in the removed one are unreachable. */
static int repin_if_removed(int i, const char *what)
{
	struct stat st;
	int fd;

	if (fstat(pins[i].fd, &st) != 0 || st.st_nlink > 0)
		return pins[i].fd;
	fd = open(pins[i].path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	warn_if_shared(fd, pins[i].path, what);
	/* The old handle stays open: another output may still hold its number,
	 * and a reused number would point it elsewhere (one fd per removal). */
	pins[i].fd = fd;
	return fd;
}

int safefile_dir(const char *path, const char *what)
{
	int fd = -1;

	if (strlen(path) >= PATH_MAX)
		return -ENAMETOOLONG;
	pthread_mutex_lock(&pin_lock);
	for (int i = 0; i < npins && fd < 0; i++)
		if (strcmp(pins[i].path, path) == 0)
			fd = repin_if_removed(i, what);
	if (fd == -1)
		fd = pin_dir(path, what);
	pthread_mutex_unlock(&pin_lock);
	return fd;
}

/* "a/b/c" -> "a/b" and "c"; "c" -> "." and "c"; "/c" -> "/" and "c". */
static int split(const char *path, char *dir, size_t dirlen, char *base, size_t baselen)
{
	const char *slash = strrchr(path, '/');
	const char *b = slash ? slash + 1 : path;
	size_t dl = slash ? (size_t)(slash - path) : 1;

	if (!*b || strcmp(b, ".") == 0 || strcmp(b, "..") == 0)
		return -EISDIR;
	if (strlen(b) > NAME_MAX || strlen(b) >= baselen || dl >= dirlen)
		return -ENAMETOOLONG;
	strcpy(base, b);
	if (!slash)
		strcpy(dir, ".");
	else if (dl == 0)
		strcpy(dir, "/");
	else {
		memcpy(dir, path, dl);
		dir[dl] = 0;
	}
	return 0;
}

/* A new file at dirfd/name, never an existing one nor through a link, with
 * the configured mode whatever the umask; nothing is left behind on failure.
 * The fd, or -errno (-EEXIST when the name is taken). */
static int create_new(int dirfd, const char *name, int flags)
{
	int fd = openat(dirfd, name, flags | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);

	if (fd < 0)
		return -errno;
	if (fchmod(fd, file_mode) != 0) {
		int err = -errno;

		close(fd);
		unlinkat(dirfd, name, 0);
		return err;
	}
	return fd;
}

int safefile_create(int dirfd, const char *prefix, const char *suffix, char *name, size_t namelen)
{
	for (int attempt = 0; attempt < 8; attempt++) {
		uint64_t r;
		int fd;

		if (getrandom(&r, sizeof(r), 0) != sizeof(r))
			return -EIO;
		if ((size_t)snprintf(name, namelen, "%s%016llx%s", prefix, (unsigned long long)r,
				     suffix) >= namelen)
			return -ENAMETOOLONG;
		fd = create_new(dirfd, name, O_WRONLY);
		if (fd != -EEXIST)
			return fd;
		/* planted, or a 1 in 2^64 collision: another name */
	}
	return -EEXIST;
}

int safefile_rename_new(int dirfd, const char *from, const char *to)
{
	if (renameat2(dirfd, from, dirfd, to, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -errno;
	/* No RENAME_NOREPLACE on this file system: link(2) never replaces either. */
	if (linkat(dirfd, from, dirfd, to, 0) != 0)
		return -errno;
	unlinkat(dirfd, from, 0);
	return 0;
}

/* A name a file output may take: absent, or a regular file we may replace
 * (-ELOOP a symbolic link, -EISDIR a directory, -EEXIST anything else). */
static int check_name(int dirfd, const char *name)
{
	struct stat st;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return errno == ENOENT ? 0 : -errno;
	return S_ISREG(st.st_mode)   ? 0
	       : S_ISLNK(st.st_mode) ? -ELOOP
	       : S_ISDIR(st.st_mode) ? -EISDIR
				     : -EEXIST;
}

int safefile_rename_replace(int dirfd, const char *from, const char *to)
{
	int err = check_name(dirfd, to);

	if (err)
		return err;
	return renameat(dirfd, from, dirfd, to) == 0 ? 0 : -errno;
}

/* In a shared directory, an existing file must be ours or root's, with no
 * second name (a hard link to a file elsewhere). */
static int check_ours(int fd)
{
	struct stat st;

	if (fstat(fd, &st) != 0)
		return -errno;
	if ((st.st_uid != geteuid() && st.st_uid != 0) || (S_ISREG(st.st_mode) && st.st_nlink > 1))
		return -EPERM;
	return 0;
}

static int open_existing(int dirfd, const char *base, int flags, const char *path)
{
	int fd = openat(dirfd, base, flags | O_NONBLOCK);

	if (fd < 0 && errno == ENXIO) {
		/* A FIFO nobody reads yet: say so, then wait as a shell would. */
		p_warn("waiting for a reader on FIFO %s before attaching (Ctrl-C to give up)",
		       path);
		fd = openat(dirfd, base, flags);
		return fd < 0 ? -errno : fd;
	}
	if (fd < 0)
		return -errno;
	/* Writes to a pipe must wait for a slow reader, not fail with EAGAIN. */
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

int safefile_open_append(const char *path)
{
	const int flags = O_WRONLY | O_APPEND | O_CLOEXEC | O_NOCTTY;
	char dir[PATH_MAX], base[NAME_MAX + 1], why[128];
	int dirfd, shared, fd, err;

	if ((err = split(path, dir, sizeof(dir), base, sizeof(base))))
		return err;
	if ((dirfd = safefile_dir(dir, "-o")) < 0)
		return dirfd;
	if ((shared = safefile_dir_shared(dirfd, why, sizeof(why))) < 0)
		return shared;
	fd = create_new(dirfd, base, flags);
	if (fd != -EEXIST)
		return fd;
	/* Where only we can write, a symlink at FILE is the admin's: follow it. */
	fd = open_existing(dirfd, base, flags | (shared ? O_NOFOLLOW : 0), path);
	if (fd >= 0 && shared && (err = check_ours(fd))) {
		close(fd);
		return err;
	}
	return fd;
}

int safefile_begin(struct safefile_out *o, const char *path)
{
	char dir[PATH_MAX];
	int err, fd;

	memset(o, 0, sizeof(*o));
	o->dirfd = -1;
	if ((err = split(path, dir, sizeof(dir), o->base, sizeof(o->base))))
		return err;
	if ((o->dirfd = safefile_dir(dir, NULL)) < 0)
		return o->dirfd;
	fd = safefile_create(o->dirfd, ".profilis-", ".tmp", o->tmp, sizeof(o->tmp));
	if (fd < 0)
		return fd;
	o->f = fdopen(fd, "w");
	if (!o->f) {
		err = -errno;
		close(fd);
		unlinkat(o->dirfd, o->tmp, 0);
		return err;
	}
	return 0;
}

int safefile_commit(struct safefile_out *o)
{
	int err = 0;

	if (fflush(o->f) != 0)
		err = -errno;
	else if (ferror(o->f))
		err = -EIO;
	if (!err && fsync(fileno(o->f)) != 0)
		err = -errno;
	if (fclose(o->f) != 0 && !err)
		err = -errno;
	o->f = NULL;
	if (!err)
		err = safefile_rename_replace(o->dirfd, o->tmp, o->base);
	if (err)
		unlinkat(o->dirfd, o->tmp, 0);
	return err;
}

/* The probe: create and remove a file, as root's access(2) says yes anyway. */
static int probe(int dirfd)
{
	char name[64];
	int fd = safefile_create(dirfd, ".profilis-probe-", "", name, sizeof(name));

	if (fd < 0)
		return fd;
	close(fd);
	unlinkat(dirfd, name, 0);
	return 0;
}

int safefile_check(const char *what, const char *path, bool is_dir, char *msg, size_t msglen)
{
	char dir[PATH_MAX], base[NAME_MAX + 1];
	int dirfd, err;

	if (is_dir && strlen(path) >= sizeof(dir))
		err = -ENAMETOOLONG;
	else if (is_dir)
		err = (strcpy(dir, path), 0);
	else
		err = split(path, dir, sizeof(dir), base, sizeof(base));
	if (err) {
		snprintf(msg, msglen, "%s %s: %s", what, path,
			 err == -EISDIR ? "names a directory; give a file name"
					: "the name is too long (NAME_MAX 255, PATH_MAX 4096)");
		return err;
	}
	dirfd = safefile_dir(dir, what);
	if (dirfd == -ENOENT || dirfd == -ENOTDIR) {
		if (is_dir)
			snprintf(msg, msglen, "%s %s: no such directory (create it first)", what,
				 path);
		else
			snprintf(msg, msglen, "%s %s: no such directory %s (create it first)", what,
				 path, dir);
		return dirfd;
	}
	if (dirfd < 0) {
		snprintf(msg, msglen, "%s %s: cannot open directory %s: %s", what, path, dir,
			 strerror(-dirfd));
		return dirfd;
	}
	if ((err = probe(dirfd))) {
		if (is_dir)
			snprintf(msg, msglen, "%s %s: the directory is not writable: %s", what,
				 path, strerror(-err));
		else
			snprintf(msg, msglen, "%s %s: directory %s is not writable: %s", what, path,
				 dir, strerror(-err));
		return err;
	}
	if (!is_dir && (err = check_name(dirfd, base))) {
		snprintf(msg, msglen, "%s %s: %s", what, path, safefile_strerror(err));
		return err;
	}
	return 0;
}

const char *safefile_strerror(int err)
{
	switch (err < 0 ? -err : err) {
	case ELOOP:
		return "it is a symbolic link, which is not followed or replaced here (remove "
		       "it, or give the path it points to)";
	case EISDIR: return "it is a directory";
	case EEXIST: return "something that is not a regular file has that name";
	case EPERM:
		return "it belongs to another user, or has a second hard link, in a directory "
		       "others can write to (remove it, or choose another name)";
	default: return strerror(err < 0 ? -err : err);
	}
}
