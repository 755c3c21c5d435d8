// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * safefile.c in a scratch directory, as root would meet a hostile one:
 * symlinks to a victim file planted at every name an output could use
 * (final names, the old predictable temporary names) leave the victim's
 * bytes unchanged; new files are created 0600 whatever the umask, or with
 * the --file-mode given; renames never replace; the replace-style writer
 * refuses a symlink, directory or FIFO at its final name and leaves no
 * temporary file; -o FILE follows the admin's symlink only in a directory
 * others cannot write, refuses what another user planted in one they can,
 * and announces a FIFO without a reader before waiting for one; the
 * pre-attach check names the option, the path and the reason.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "log.h"
#include "safefile.h"
#include "stats_json.h"

#define VICTIM_TEXT "precious root-owned data\n"

static char dir[64], victim[128];

static void remove_tree(const char *path)
{
	char sub[512];
	struct dirent *e;
	DIR *d = opendir(path);

	if (!d)
		return;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
		if (e->d_type == DT_DIR) {
			umount2(sub, MNT_DETACH);
			remove_tree(sub);
		} else {
			unlink(sub);
		}
	}
	closedir(d);
	rmdir(path);
}

static void setup(void)
{
	FILE *f;

	snprintf(dir, sizeof(dir), "/tmp/profilis-safefile-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	/* The victim lives outside the output directory, as /etc/passwd would. */
	snprintf(victim, sizeof(victim), "%s.victim", dir);
	f = fopen(victim, "w");
	cr_assert_not_null(f);
	fputs(VICTIM_TEXT, f);
	fclose(f);
}

static void teardown(void)
{
	remove_tree(dir);
	unlink(victim);
}

TestSuite(safefile, .init = setup, .fini = teardown, .timeout = 30);

static char *slurp(const char *path)
{
	static char buf[65536];
	int fd = open(path, O_RDONLY);
	ssize_t n;

	cr_assert_geq(fd, 0, "%s: %s", path, strerror(errno));
	n = read(fd, buf, sizeof(buf) - 1);
	cr_assert_geq(n, 0);
	buf[n] = 0;
	close(fd);
	return buf;
}

static void assert_victim_intact(void)
{
	cr_assert_str_eq(slurp(victim), VICTIM_TEXT, "the victim file was written through");
}

static void plant(const char *name)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	cr_assert_eq(symlink(victim, path), 0, "symlink %s: %s", path, strerror(errno));
}

/* Names in the directory other than the ones planted (symlinks). */
static int regular_files(char names[][256], int max)
{
	struct dirent *e;
	DIR *d = opendir(dir);
	int n = 0;

	cr_assert_not_null(d);
	while ((e = readdir(d)))
		if (e->d_type == DT_REG && n < max)
			snprintf(names[n++], 256, "%s", e->d_name);
	closedir(d);
	return n;
}

static mode_t mode_of(const char *path)
{
	struct stat st;

	cr_assert_eq(lstat(path, &st), 0, "%s: %s", path, strerror(errno));
	return st.st_mode & 07777;
}

static bool is_symlink(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0 && S_ISLNK(st.st_mode);
}

static uid_t nobody(void)
{
	struct passwd *pw = getpwnam("nobody");

	return pw ? pw->pw_uid : 65534;
}

Test(safefile, created_names_are_new_random_and_0600_whatever_the_umask)
{
	char names[64][256], name[256], path[512];
	int dfd = safefile_dir(dir, "test");

	cr_assert_geq(dfd, 0);
	umask(0);
	for (int i = 0; i < 64; i++) {
		int fd = safefile_create(dfd, ".p-", ".x", name, sizeof(name));

		cr_assert_geq(fd, 0, "%s", strerror(-fd));
		close(fd);
		cr_assert_eq(strlen(name), 3 + 16 + 2, "%s", name);
		cr_assert_eq(strspn(name + 3, "0123456789abcdef"), 16, "%s", name);
		for (int j = 0; j < i; j++)
			cr_assert_str_neq(names[j], name, "the same name twice");
		snprintf(names[i], sizeof(names[i]), "%s", name);
	}
	snprintf(path, sizeof(path), "%s/%s", dir, names[0]);
	cr_assert_eq(mode_of(path), 0600, "mode %o with umask 0", mode_of(path));

	safefile_set_mode(0640);
	umask(077);
	{
		int fd = safefile_create(dfd, ".q-", "", name, sizeof(name));

		cr_assert_geq(fd, 0);
		close(fd);
		snprintf(path, sizeof(path), "%s/%s", dir, name);
		cr_assert_eq(mode_of(path), 0640, "--file-mode 0640 under umask 077: %o",
			     mode_of(path));
	}
	safefile_set_mode(SAFEFILE_DEFAULT_MODE);
	umask(022);
}

Test(safefile, file_mode_parsing)
{
	mode_t m = 0;

	cr_assert_eq(safefile_parse_mode("0640", &m), 0);
	cr_assert_eq(m, 0640);
	cr_assert_eq(safefile_parse_mode("600", &m), 0);
	cr_assert_eq(m, 0600);
	cr_assert_eq(safefile_parse_mode("0", &m), 0);
	cr_assert_eq(m, 0);
	cr_assert_eq(safefile_parse_mode("0666", &m), 0);
	cr_assert_eq(m, 0666);
	m = 0123;
	cr_assert_eq(safefile_parse_mode("0755", &m), -EINVAL);
	cr_assert_eq(safefile_parse_mode("04600", &m), -EINVAL);
	cr_assert_eq(safefile_parse_mode("0680", &m), -EINVAL);
	cr_assert_eq(safefile_parse_mode("rw", &m), -EINVAL);
	cr_assert_eq(safefile_parse_mode("", &m), -EINVAL);
	cr_assert_eq(safefile_parse_mode("-600", &m), -EINVAL);
	cr_assert_eq(m, 0123, "a rejected mode was stored");
}

Test(safefile, rename_new_never_replaces)
{
	char name[256], path[256];
	int dfd = safefile_dir(dir, "test");
	int fd = safefile_create(dfd, "t-", "", name, sizeof(name));

	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, "new\n", 4), 4);
	close(fd);
	plant("taken");
	cr_assert_eq(safefile_rename_new(dfd, name, "taken"), -EEXIST);
	assert_victim_intact();
	snprintf(path, sizeof(path), "%s/taken", dir);
	cr_assert(is_symlink(path), "the planted name was replaced");
	cr_assert_eq(safefile_rename_new(dfd, name, "free"), 0);
	snprintf(path, sizeof(path), "%s/free", dir);
	cr_assert_str_eq(slurp(path), "new\n");
}

/* --stats-json, --folded and --speedscope replace their final name only
 * when it is absent or a regular file. */
Test(safefile, replace_refuses_a_symlink_directory_or_fifo_at_the_final_name)
{
	struct safefile_out o;
	char path[256], names[8][256];

	snprintf(path, sizeof(path), "%s/out.json", dir);
	plant("out.json");
	cr_assert_eq(safefile_begin(&o, path), 0);
	fputs("{\"new\":1}\n", o.f);
	cr_assert_eq(safefile_commit(&o), -ELOOP);
	assert_victim_intact();
	cr_assert_eq(regular_files(names, 8), 0, "a temporary file was left: %s", names[0]);
	cr_assert_eq(unlink(path), 0);

	cr_assert_eq(mkdir(path, 0700), 0);
	cr_assert_eq(safefile_begin(&o, path), 0);
	cr_assert_eq(safefile_commit(&o), -EISDIR);
	cr_assert_eq(rmdir(path), 0, "the directory was changed");

	cr_assert_eq(mkfifo(path, 0600), 0);
	cr_assert_eq(safefile_begin(&o, path), 0);
	cr_assert_eq(safefile_commit(&o), -EEXIST);
	cr_assert_eq(unlink(path), 0);

	/* A regular file is replaced whole; a fresh name is created. */
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(safefile_begin(&o, path), 0);
		fprintf(o.f, "doc %d\n", i);
		cr_assert_eq(safefile_commit(&o), 0);
		cr_assert_str_eq(slurp(path), i ? "doc 1\n" : "doc 0\n");
		cr_assert_eq(mode_of(path), 0600);
	}
	cr_assert_eq(regular_files(names, 8), 1, "temporary files left behind");
}

/* The pre-attach check refuses exactly the names the final rename would:
 * an option that passed the check is never refused at exit, and the
 * reverse. */
Test(safefile, check_and_commit_refuse_the_same_names)
{
	static const char *const kinds[] = { "absent", "regular", "symlink", "dir", "fifo" };
	char path[256], msg[512];

	snprintf(path, sizeof(path), "%s/out.json", dir);
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		struct safefile_out o;
		int checked, committed;

		if (k == 1)
			cr_assert_eq(close(open(path, O_WRONLY | O_CREAT | O_EXCL, 0600)), 0);
		else if (k == 2)
			plant("out.json");
		else if (k == 3)
			cr_assert_eq(mkdir(path, 0700), 0);
		else if (k == 4)
			cr_assert_eq(mkfifo(path, 0600), 0);
		checked = safefile_check("--speedscope", path, false, msg, sizeof(msg));
		cr_assert_eq(safefile_begin(&o, path), 0);
		committed = safefile_commit(&o);
		cr_assert_eq(checked, committed, "%s: check %d, commit %d", kinds[k], checked,
			     committed);
		cr_assert_eq(committed,
			     k < 2    ? 0
			     : k == 2 ? -ELOOP
			     : k == 3 ? -EISDIR
				      : -EEXIST,
			     "%s: %d", kinds[k], committed);
		cr_assert_eq(k == 3 ? rmdir(path) : unlink(path), 0);
	}
	assert_victim_intact();
}

/* The old writer used PATH.tmp-PID: a symlink planted there was truncated
 * and filled.  Plant it (and PATH.tmp), write three times. */
Test(safefile, stats_json_never_writes_through_planted_temporary_names)
{
	struct agg_snapshot snap = { 0 };
	char path[256], name[64];

	snprintf(path, sizeof(path), "%s/stats.json", dir);
	snprintf(name, sizeof(name), "stats.json.tmp-%d", (int)getpid());
	plant(name);
	plant("stats.json.tmp");
	for (int i = 0; i < 3; i++)
		cr_assert_eq(stats_json_write(path, &snap, 15), 0);
	assert_victim_intact();
	cr_assert_eq(slurp(path)[0], '{');
	cr_assert_eq(mode_of(path), 0600);
	/* A symlink at the final name is refused, not followed or replaced. */
	cr_assert_eq(unlink(path), 0);
	plant("stats.json");
	cr_assert_eq(stats_json_write(path, &snap, 15), -ELOOP);
	assert_victim_intact();
	cr_assert(is_symlink(path), "the planted name was replaced");
	cr_assert_not_null(strstr(safefile_strerror(-ELOOP), "symbolic link"));
}

/* -o FILE in a directory only root can write: the admin's symlink is followed. */
Test(safefile, append_follows_a_symlink_only_where_nobody_else_can_plant_one)
{
	char path[256], why[128];
	int fd, dfd = safefile_dir(dir, "test");

	cr_assert_eq(safefile_dir_shared(dfd, why, sizeof(why)), 0);
	snprintf(path, sizeof(path), "%s/out.jsonl", dir);
	plant("out.jsonl");
	fd = safefile_open_append(path);
	cr_assert_geq(fd, 0, "%s", strerror(-fd));
	cr_assert_eq(write(fd, "more\n", 5), 5);
	close(fd);
	cr_assert_str_eq(slurp(victim), VICTIM_TEXT "more\n", "the admin's symlink");
}

/* The same in a directory another user owns (its files are theirs). */
Test(safefile, append_in_a_shared_directory_refuses_what_others_planted)
{
	char sub[128], path[256], hard[256], why[128];
	int fd, dfd;

	log_set_level(LOG_ERR); /* the shared-directory warning is expected */

	snprintf(sub, sizeof(sub), "%s/user", dir);
	cr_assert_eq(mkdir(sub, 0755), 0);
	cr_assert_eq(chown(sub, nobody(), nobody()), 0);
	dfd = safefile_dir(sub, "test");
	cr_assert_geq(dfd, 0);
	cr_assert_eq(safefile_dir_shared(dfd, why, sizeof(why)), 1);
	cr_assert_not_null(strstr(why, "its owner, uid"), "%s", why);

	snprintf(path, sizeof(path), "%s/out.jsonl", sub);
	cr_assert_eq(symlink(victim, path), 0);
	cr_assert_eq(safefile_open_append(path), -ELOOP);
	assert_victim_intact();
	cr_assert_eq(unlink(path), 0);

	/* A file the other user made: they could read what we append. */
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
	cr_assert_geq(fd, 0);
	cr_assert_eq(fchown(fd, nobody(), nobody()), 0);
	close(fd);
	cr_assert_eq(safefile_open_append(path), -EPERM);
	cr_assert_eq(unlink(path), 0);

	/* A second hard link to a root file elsewhere. */
	snprintf(hard, sizeof(hard), "%s/linked.jsonl", sub);
	cr_assert_eq(link(victim, hard), 0);
	cr_assert_eq(safefile_open_append(hard), -EPERM);
	assert_victim_intact();

	/* A new file is created 0600 and owned by us. */
	fd = safefile_open_append(path);
	cr_assert_geq(fd, 0, "%s", strerror(-fd));
	close(fd);
	cr_assert_eq(mode_of(path), 0600);
	/* and reopened (appended) later. */
	fd = safefile_open_append(path);
	cr_assert_geq(fd, 0, "%s", strerror(-fd));
	close(fd);
}

Test(safefile, world_writable_without_sticky_is_shared_with_sticky_is_not)
{
	char sub[128], why[128];
	int dfd;

	log_set_level(LOG_ERR); /* the shared-directory warning is expected */

	snprintf(sub, sizeof(sub), "%s/ww", dir);
	cr_assert_eq(mkdir(sub, 0700), 0);
	cr_assert_eq(chmod(sub, 0777), 0);
	dfd = safefile_dir(sub, "test");
	cr_assert_eq(safefile_dir_shared(dfd, why, sizeof(why)), 1);
	cr_assert_str_eq(why, "every user (mode 0777, no sticky bit)");
	cr_assert_eq(chmod(sub, 01777), 0);
	cr_assert_eq(safefile_dir_shared(dfd, why, sizeof(why)), 0, "like /tmp");
	cr_assert_eq(chmod(sub, 0770), 0);
	cr_assert_eq(safefile_dir_shared(dfd, why, sizeof(why)), 1);
	cr_assert_str_eq(why, "its group (mode 0770, no sticky bit)");
}

/* The directory is pinned: replacing its path by a symlink later (a user
 * who owns the parent could) does not redirect our files. */
Test(safefile, a_pinned_directory_cannot_be_swapped_for_a_symlink)
{
	char sub[128], moved[128], out[256], elsewhere[128], msg[256];
	struct safefile_out o;

	snprintf(sub, sizeof(sub), "%s/d", dir);
	snprintf(moved, sizeof(moved), "%s/d.moved", dir);
	snprintf(elsewhere, sizeof(elsewhere), "%s/elsewhere", dir);
	snprintf(out, sizeof(out), "%s/stats.json", sub);
	cr_assert_eq(mkdir(sub, 0700), 0);
	cr_assert_eq(mkdir(elsewhere, 0700), 0);
	cr_assert_eq(safefile_check("--stats-json", out, false, msg, sizeof(msg)), 0, "%s", msg);
	cr_assert_eq(rename(sub, moved), 0);
	cr_assert_eq(symlink(elsewhere, sub), 0);
	cr_assert_eq(safefile_begin(&o, out), 0);
	fputs("x\n", o.f);
	cr_assert_eq(safefile_commit(&o), 0);
	snprintf(out, sizeof(out), "%s/stats.json", moved);
	cr_assert_str_eq(slurp(out), "x\n");
	snprintf(out, sizeof(out), "%s/stats.json", elsewhere);
	cr_assert_neq(access(out, F_OK), 0, "the write followed the swapped path");
	unlink(sub);
}

/* A FIFO with no reader: a word on stderr first, then the wait. */
Test(safefile, a_fifo_without_reader_is_announced_then_waited_for)
{
	char path[256], got[64] = "";
	int cap = memfd_create("stderr", 0), saved = dup(STDERR_FILENO), fd, status;
	struct timespec t0, t1;
	pid_t reader;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/pipe", dir);
	cr_assert_eq(mkfifo(path, 0600), 0);
	reader = fork();
	cr_assert_geq(reader, 0);
	if (reader == 0) {
		int r;

		usleep(400000);
		r = open(path, O_RDONLY);
		n = r >= 0 ? read(r, got, sizeof(got) - 1) : -1;
		_exit(n == 6 && memcmp(got, "hello\n", 6) == 0 ? 0 : 1);
	}
	cr_assert_eq(dup2(cap, STDERR_FILENO), STDERR_FILENO);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	fd = safefile_open_append(path);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	dup2(saved, STDERR_FILENO);
	cr_assert_geq(fd, 0, "%s", strerror(-fd));
	cr_assert_gt((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000, 200,
		     "returned before a reader came");
	cr_assert_eq(fcntl(fd, F_GETFL) & O_NONBLOCK, 0, "writes must block, not fail");
	cr_assert_eq(write(fd, "hello\n", 6), 6);
	close(fd);
	cr_assert_eq(waitpid(reader, &status, 0), reader);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the reader got other bytes");
	n = pread(cap, got, sizeof(got) - 1, 0);
	got[n > 0 ? n : 0] = 0;
	cr_assert_not_null(strstr(got, "waiting for a reader on FIFO"), "stderr: %s", got);
}

Test(safefile, the_check_names_option_path_and_reason)
{
	char msg[512], want[512], path[256], ro[128];

	cr_assert_eq(safefile_check("--speedscope", "/nonexistent-profilis/p.json", false, msg,
				    sizeof(msg)),
		     -ENOENT);
	cr_assert_str_eq(msg, "--speedscope /nonexistent-profilis/p.json: no such directory "
			      "/nonexistent-profilis (create it first)");
	cr_assert_eq(safefile_check("--folded", "/etc/passwd/x", false, msg, sizeof(msg)),
		     -ENOTDIR);
	cr_assert_str_eq(msg, "--folded /etc/passwd/x: no such directory /etc/passwd (create "
			      "it first)");
	snprintf(path, sizeof(path), "%s/", dir);
	cr_assert_eq(safefile_check("--folded", path, false, msg, sizeof(msg)), -EISDIR);
	snprintf(want, sizeof(want), "--folded %s: names a directory; give a file name", path);
	cr_assert_str_eq(msg, want);

	snprintf(path, sizeof(path), "%s/stats.json", dir);
	plant("stats.json");
	cr_assert_eq(safefile_check("--stats-json", path, false, msg, sizeof(msg)), -ELOOP);
	snprintf(want, sizeof(want), "--stats-json %s: %s", path, safefile_strerror(-ELOOP));
	cr_assert_str_eq(msg, want);

	/* A read-only file system: root passes access(2), the probe does not. */
	snprintf(ro, sizeof(ro), "%s/ro", dir);
	cr_assert_eq(mkdir(ro, 0755), 0);
	if (mount("tmpfs", ro, "tmpfs", MS_RDONLY, "size=4k") != 0)
		cr_skip_test("cannot mount a read-only tmpfs: %s", strerror(errno));
	snprintf(path, sizeof(path), "%s/p.json", ro);
	cr_assert_eq(safefile_check("--speedscope", path, false, msg, sizeof(msg)), -EROFS);
	snprintf(want, sizeof(want), "--speedscope %s: directory %s is not writable: %s", path, ro,
		 strerror(EROFS));
	cr_assert_str_eq(msg, want);
	umount2(ro, MNT_DETACH);
}
