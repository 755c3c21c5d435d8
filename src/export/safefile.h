/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Every file profilis-bpf writes goes through here, because it runs as root
 * in directories other users may own.  The rules:
 *
 * - A directory is opened once (O_PATH|O_DIRECTORY) the first time it is
 *   named ("pinned"), which is before attach; every later open, rename and
 *   unlink is relative to that handle, so renaming the directory or swapping
 *   a path component for a symlink afterwards cannot redirect our files.
 * - New files are created with openat(O_CREAT|O_EXCL|O_NOFOLLOW) under an
 *   unpredictable name (64 random bits from getrandom), so a planted file or
 *   symlink can neither be followed nor truncated: at worst creation retries.
 * - A finished file gets a new name with renameat2(RENAME_NOREPLACE) (or
 *   link(2) + unlink(2) where a file system lacks it): nothing is replaced.
 * - Files rewritten in place (--stats-json, --folded, --speedscope) replace
 *   their final name only when it is absent or a regular file (checked with
 *   fstatat(AT_SYMLINK_NOFOLLOW)); a symlink, directory or device there is
 *   refused.  rename(2) never writes through whatever holds the name, so the
 *   window between that check and the rename cannot make us follow anything.
 * - Files are created 0600 (request paths are private), or with the mode
 *   set by --file-mode, applied with fchmod so the umask does not matter.
 * - `-o FILE` appends, as it always did.  In a directory only we (or root)
 *   can write, a symlink at FILE is the admin's and is followed.  In a
 *   "shared" directory FILE is opened with O_NOFOLLOW and an existing file
 *   must be ours (or root's) with one link: what another user planted there
 *   is refused.  A FIFO without a reader is announced ("waiting for a
 *   reader"), then waited for, as a shell redirection would.
 *
 * A directory is "shared" when another user can add or remove entries in
 * it: owned by someone other than root or us, or writable by group or
 * others without the sticky bit.  Decision: such a directory is used (a
 * user's own log directory is a normal target), safely by the rules above,
 * and a warning says so once, naming the directory and who else can write
 * it: that user can still delete or rename our finished files, and only a
 * directory writable by root alone protects them.  Parent directories are
 * not inspected: they can only move the directory we have pinned.
 */
#ifndef PROFILIS_SAFEFILE_H
#define PROFILIS_SAFEFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#define SAFEFILE_DEFAULT_MODE 0600

/* The mode of files created from now on (bits beyond 0666 are dropped). */
void safefile_set_mode(mode_t mode);
mode_t safefile_mode(void);

/* Parses an octal --file-mode: digits 0-7 only, no bits beyond 0666. */
int safefile_parse_mode(const char *text, mode_t *out);

/* The pinned handle of directory `path` (opened and checked the first time;
 * `what` names the option in the shared-directory warning).  The handle
 * belongs to this module: do not close it.  -errno on failure. */
int safefile_dir(const char *path, const char *what);

/* 1 when others can write the directory (reason in why), 0 when not. */
int safefile_dir_shared(int dirfd, char *why, size_t whylen);

/* Creates a new file PREFIX<16 random hex>SUFFIX in dirfd, its name in
 * `name`; the file descriptor (O_WRONLY) or -errno. */
int safefile_create(int dirfd, const char *prefix, const char *suffix, char *name, size_t namelen);

/* Renames `from` to `to` in dirfd, never replacing: -EEXIST if taken. */
int safefile_rename_new(int dirfd, const char *from, const char *to);

/* Renames `from` over `to` if `to` is absent or a regular file; -ELOOP for
 * a symlink, -EISDIR for a directory, -EEXIST for anything else there. */
int safefile_rename_replace(int dirfd, const char *from, const char *to);

/* Opens `path` for appending (-o FILE) by the rules above; fd or -errno. */
int safefile_open_append(const char *path);

/* A file written whole, then put in place of `path` (replace rules). */
struct safefile_out {
	FILE *f;
	int dirfd;
	char tmp[256];
	char base[256];
};

/* Starts writing; 0 or -errno (nothing was created then). */
int safefile_begin(struct safefile_out *o, const char *path);
/* Flushes, fsyncs, closes and renames into place; 0 or -errno, and on
 * failure the temporary file is removed. */
int safefile_commit(struct safefile_out *o);

/* Checks before attach that `path` (a directory when is_dir, else a file
 * name whose directory is checked) can take our files: the directory
 * exists and a probe file can be created and removed in it, and a file's
 * name is usable.  Pins the directory.  0, or -errno with a message that
 * names `what`, the path and the reason in msg. */
int safefile_check(const char *what, const char *path, bool is_dir, char *msg, size_t msglen);

/* strerror(), with our refusals (-ELOOP, -EISDIR, -EEXIST, -EPERM from
 * the functions above) explained.  Either sign. */
const char *safefile_strerror(int err);

#endif
