// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Rotated output files in a scratch directory: templates are checked and
 * rendered exactly; size rotation keeps every line exactly once and in
 * order, never splits one, never leaves an empty or hidden file, and gives
 * rotations within one second the names name, name-1, name-2, ...; age
 * rotation publishes a non-empty file and skips an empty one; file mode
 * appends.  Fault tests: /dev/full, a file-size limit that makes write(2)
 * stop half way, and a full 8 KiB tmpfs, after which the file must hold
 * whole lines only, also once writing works again.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "rotfile.h"
#include "safefile.h"

#define MAX_FILES 512

static char dir[64];

static void make_dir(void)
{
	snprintf(dir, sizeof(dir), "/tmp/profilis-rotfile-XXXXXX");
	cr_assert_not_null(mkdtemp(dir), "mkdtemp: %s", strerror(errno));
}

static void remove_dir(void)
{
	struct dirent *e;
	char path[512];
	DIR *d;

	/* A failed tmpfs test may have left its mount behind. */
	snprintf(path, sizeof(path), "%s/mnt", dir);
	umount2(path, MNT_DETACH);
	rmdir(path);
	d = opendir(dir);
	if (!d)
		return;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		unlink(path);
	}
	closedir(d);
	rmdir(dir);
}

TestSuite(rotfile, .init = make_dir, .fini = remove_dir);

struct file {
	char name[256];
	char *data;
	size_t size;
	long first; /* the number on its first line */
};

static char *slurp(const char *path, size_t *size)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = calloc(1, n + 1);
	cr_assert_eq(fread(buf, 1, n, f), (size_t)n);
	fclose(f);
	*size = n;
	return buf;
}

/* Reads every entry of the directory; hidden ones are counted apart. */
static int list_files(struct file *files, int *hidden)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[512];
	int n = 0;

	cr_assert_not_null(d);
	*hidden = 0;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (e->d_name[0] == '.') {
			(*hidden)++;
			continue;
		}
		cr_assert_lt(n, MAX_FILES);
		snprintf(files[n].name, sizeof(files[n].name), "%s", e->d_name);
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		files[n].data = slurp(path, &files[n].size);
		files[n].first = strtol(files[n].data, NULL, 10);
		n++;
	}
	closedir(d);
	return n;
}

static void free_files(struct file *files, int n)
{
	for (int i = 0; i < n; i++)
		free(files[i].data);
}

static int by_first(const void *a, const void *b)
{
	const struct file *x = a, *y = b;

	return (x->first > y->first) - (x->first < y->first);
}

/* "profilis-20231114T221320Z-3.jsonl" -> timestamp and suffix (0 for none). */
static void split_name(const char *name, char *stamp, int *suffix)
{
	cr_assert_eq(strncmp(name, "profilis-", 9), 0, "%s", name);
	cr_assert_eq(strlen(name) >= 9 + 16 + 6, 1, "%s", name);
	memcpy(stamp, name + 9, 16);
	stamp[16] = 0;
	if (strcmp(name + 25, ".jsonl") == 0) {
		*suffix = 0;
		return;
	}
	cr_assert_eq(name[25], '-', "%s", name);
	*suffix = atoi(name + 26);
	cr_assert_gt(*suffix, 0, "%s", name);
	cr_assert_eq(strcmp(strchr(name + 26, '.'), ".jsonl"), 0, "%s", name);
}

/* Writes one numbered line of 10..60 bytes the way the JSONL exporter does. */
static size_t put_line(struct rotfile *rf, int i, unsigned *seed)
{
	char line[80];
	int len = 10 + rand_r(seed) % 51;
	int n = snprintf(line, sizeof(line), "%06d ", i);

	memset(line + n, 'a' + i % 26, len - n - 1);
	line[len - 1] = '\n';
	cr_assert_eq(rotfile__make_room(rf, len), 0);
	cr_assert_eq(rotfile__write(rf, line, len), 0, "line %d", i);
	return len;
}

Test(rotfile, templates_are_checked)
{
	char msg[256];

	msg[0] = 0;
	cr_assert_eq(rotfile_check_template(NULL, msg, sizeof(msg)), 0);
	cr_assert_eq(rotfile_check_template("x-{timestamp}.jsonl", msg, sizeof(msg)), 0);
	cr_assert_eq(rotfile_check_template("{pid}-{seq}", msg, sizeof(msg)), 0);
	cr_assert_eq(rotfile_check_template("{timestamp}{pid}{seq}{seq}", msg, sizeof(msg)), 0);

	cr_assert_eq(rotfile_check_template("{pid}.jsonl", msg, sizeof(msg)), -EINVAL);
	cr_assert_str_eq(msg, "--filename-template: '{pid}.jsonl' needs {timestamp} or {seq} "
			      "so that files get distinct names");
	cr_assert_eq(rotfile_check_template("plain.jsonl", msg, sizeof(msg)), -EINVAL);
	cr_assert_str_eq(msg, "--filename-template: 'plain.jsonl' needs {timestamp} or {seq} "
			      "so that files get distinct names");
	cr_assert_eq(rotfile_check_template("a/{seq}", msg, sizeof(msg)), -EINVAL);
	cr_assert_str_eq(msg, "--filename-template: 'a/{seq}' must be a file name (no '/')");
	cr_assert_eq(rotfile_check_template("", msg, sizeof(msg)), -EINVAL);
	cr_assert_str_eq(msg, "--filename-template: '' must be a file name (no '/')");
	cr_assert_eq(rotfile_check_template("{bogus}", msg, sizeof(msg)), -EINVAL);
	cr_assert_str_eq(msg, "--filename-template: unknown field '{bogus}' in '{bogus}'; "
			      "known: {timestamp}, {pid}, {seq}");
	cr_assert_eq(rotfile_check_template("r-{seq}-{time}.jsonl", msg, sizeof(msg)), -EINVAL);
	cr_assert_str_eq(msg, "--filename-template: unknown field '{time}' in "
			      "'r-{seq}-{time}.jsonl'; known: {timestamp}, {pid}, {seq}");
}

Test(rotfile, templates_render_exactly)
{
	char out[256];
	const time_t when = 1700000000; /* 2023-11-14 22:13:20 UTC */

	cr_assert_eq(rotfile_render(NULL, when, 4123, 0, out, sizeof(out)), 0);
	cr_assert_str_eq(out, "profilis-20231114T221320Z.jsonl");
	cr_assert_eq(rotfile_render("p-{timestamp}-{pid}-{seq}.jsonl", when, 4123, 7, out,
				    sizeof(out)),
		     0);
	cr_assert_str_eq(out, "p-20231114T221320Z-4123-000007.jsonl");
	cr_assert_eq(rotfile_render("{seq}", when, 1, 1234567, out, sizeof(out)), 0);
	cr_assert_str_eq(out, "1234567");
	cr_assert_eq(rotfile_render("{seq}{seq}", 0, 1, 42, out, sizeof(out)), 0);
	cr_assert_str_eq(out, "000042000042");
	cr_assert_eq(rotfile_render("{timestamp}", 0, 1, 0, out, sizeof(out)), 0);
	cr_assert_str_eq(out, "19700101T000000Z");
	/* Exactly fits: 31 characters and the NUL. */
	cr_assert_eq(rotfile_render(NULL, when, 1, 0, out, 32), 0);
	cr_assert_str_eq(out, "profilis-20231114T221320Z.jsonl");
}

Test(rotfile, a_name_that_does_not_fit_is_an_error_not_a_truncation)
{
	char out[256];
	const time_t when = 1700000000;

	memset(out, 'X', sizeof(out));
	cr_assert_eq(rotfile_render("p-{timestamp}.jsonl", when, 1, 0, out, 10), -ENAMETOOLONG);
	/* A literal tail longer than the room left must not be cut silently. */
	cr_assert_eq(rotfile_render("{seq}-abcdefghij.jsonl", when, 1, 0, out, 12), -ENAMETOOLONG,
		     "rendered '%s' into 12 bytes", out);
	cr_assert_eq(rotfile_render(NULL, when, 1, 0, out, 31), -ENAMETOOLONG,
		     "rendered '%s' into 31 bytes", out);
}

Test(rotfile, size_rotation_keeps_every_line_once_in_order)
{
	static struct file files[MAX_FILES];
	struct rotfile_opts o = { .dir = dir, .rotate_bytes = 100 };
	unsigned seed = 1234;
	const int lines = 150;
	size_t lens[150];
	struct rotfile *rf = rotfile__open(&o);
	uint64_t rotations;
	int n, hidden, next = 0;

	cr_assert_not_null(rf, "rotfile__open: %s", strerror(errno));
	for (int i = 0; i < lines; i++)
		lens[i] = put_line(rf, i, &seed);
	rotations = rotfile__rotations(rf);
	cr_assert_eq(rotfile__close(rf), rotations + 1, "the active file is published");

	n = list_files(files, &hidden);
	cr_assert_eq(hidden, 0, "an active file was left behind");
	cr_assert_eq((uint64_t)n, rotations + 1);
	qsort(files, n, sizeof(files[0]), by_first);
	for (int f = 0; f < n; f++) {
		size_t off = 0;
		int in_file = 0;

		cr_assert_gt(files[f].size, 0, "%s is empty", files[f].name);
		while (off < files[f].size) {
			char want[16];

			cr_assert_lt(next, lines, "%s: more lines than written", files[f].name);
			snprintf(want, sizeof(want), "%06d ", next);
			cr_assert_eq(strncmp(files[f].data + off, want, 7), 0,
				     "%s: line %d should be %d", files[f].name, in_file, next);
			cr_assert_eq(files[f].data[off + lens[next] - 1], '\n');
			off += lens[next++];
			in_file++;
		}
		cr_assert_eq(off, files[f].size, "%s ends in a partial line", files[f].name);
		cr_assert(files[f].size <= 100 || in_file == 1, "%s: %zu bytes in %d lines",
			  files[f].name, files[f].size, in_file);
		/* Each file was rotated only when the next line would not fit. */
		if (f + 1 < n)
			cr_assert_gt(files[f].size + lens[next], 100, "%s rotated early",
				     files[f].name);
	}
	cr_assert_eq(next, lines, "only %d of %d lines found", next, lines);

	/* Names: within one second's timestamp, "", -1, -2, ... in rotation order. */
	for (int f = 0, k = 0; f < n; f++) {
		char stamp[17], prev[17] = "";
		int suffix;

		split_name(files[f].name, stamp, &suffix);
		if (f > 0) {
			int ps;

			split_name(files[f - 1].name, prev, &ps);
			cr_assert_geq(strcmp(stamp, prev), 0);
			k = strcmp(stamp, prev) == 0 ? k + 1 : 0;
		}
		cr_assert_eq(suffix, k, "%s: expected suffix %d", files[f].name, k);
	}
	free_files(files, n);
}

Test(rotfile, two_rotations_in_one_second_both_survive)
{
	static struct file files[MAX_FILES];
	struct rotfile_opts o = { .dir = dir, .rotate_bytes = 1, .template = "x-{timestamp}" };
	struct rotfile *rf;
	time_t before, after;
	int n, hidden;

	/* Start at the beginning of a second so that all three land in it. */
	before = time(NULL);
	while (time(NULL) == before)
		usleep(1000);
	before = time(NULL);
	rf = rotfile__open(&o);
	cr_assert_not_null(rf);
	for (int i = 0; i < 3; i++) {
		char line[16];
		int len = snprintf(line, sizeof(line), "%d\n", i);

		cr_assert_eq(rotfile__make_room(rf, len), 0);
		cr_assert_eq(rotfile__write(rf, line, len), 0);
	}
	cr_assert_eq(rotfile__close(rf), 3);
	after = time(NULL);
	cr_assert_eq(before, after, "the test took over a second; its premise is gone");

	n = list_files(files, &hidden);
	cr_assert_eq(n, 3);
	cr_assert_eq(hidden, 0);
	qsort(files, n, sizeof(files[0]), by_first);
	for (int i = 0; i < 3; i++) {
		char want[64], line[16], stamp[32];
		struct tm tm;

		gmtime_r(&before, &tm);
		strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm);
		/* No '.' in the template: the counter goes at the end. */
		if (i == 0)
			snprintf(want, sizeof(want), "x-%s", stamp);
		else
			snprintf(want, sizeof(want), "x-%s-%d", stamp, i);
		snprintf(line, sizeof(line), "%d\n", i);
		cr_assert_str_eq(files[i].name, want);
		cr_assert_str_eq(files[i].data, line);
	}
	free_files(files, n);
}

Test(rotfile, seq_template_counts_finished_files)
{
	static struct file files[MAX_FILES];
	struct rotfile_opts o = { .dir = dir, .rotate_bytes = 4, .template = "{seq}.log" };
	struct rotfile *rf = rotfile__open(&o);
	int n, hidden;

	cr_assert_not_null(rf);
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(rotfile__make_room(rf, 3), 0);
		cr_assert_eq(rotfile__write(rf, "ab\n", 3), 0);
	}
	cr_assert_eq(rotfile__rotations(rf), 3);
	cr_assert_eq(rotfile__close(rf), 4);
	n = list_files(files, &hidden);
	cr_assert_eq(n, 4);
	for (int i = 0; i < 4; i++) {
		char want[16];
		struct stat st;
		char path[512];

		snprintf(want, sizeof(want), "%06d.log", i);
		snprintf(path, sizeof(path), "%s/%s", dir, want);
		cr_assert_eq(stat(path, &st), 0, "%s missing", want);
		cr_assert_eq(st.st_size, 3);
	}
	free_files(files, n);
}

Test(rotfile, a_single_oversized_line_is_written_whole)
{
	static struct file files[MAX_FILES];
	struct rotfile_opts o = { .dir = dir, .rotate_bytes = 10 };
	char big[40];
	struct rotfile *rf = rotfile__open(&o);
	int n, hidden;

	memset(big, 'b', sizeof(big));
	big[39] = '\n';
	cr_assert_not_null(rf);
	cr_assert(!rotfile__would_overflow(rf, 10));
	cr_assert(rotfile__would_overflow(rf, 11));
	cr_assert_eq(rotfile__make_room(rf, 40), 0);
	cr_assert_eq(rotfile__rotations(rf), 0, "an empty file is never rotated");
	cr_assert_eq(rotfile__write(rf, big, 40), 0);
	cr_assert_eq(rotfile__make_room(rf, 2), 0);
	cr_assert_eq(rotfile__rotations(rf), 1);
	cr_assert_eq(rotfile__write(rf, "x\n", 2), 0);
	cr_assert_eq(rotfile__close(rf), 2);
	n = list_files(files, &hidden);
	cr_assert_eq(n, 2);
	cr_assert_eq(hidden, 0);
	cr_assert_eq(files[0].size + files[1].size, 42);
	cr_assert(files[0].size == 40 || files[1].size == 40);
	free_files(files, n);
}

Test(rotfile, age_rotation_publishes_only_non_empty_files)
{
	static struct file files[MAX_FILES];
	struct rotfile_opts o = { .dir = dir, .rotate_secs = 0.2 };
	struct rotfile *rf = rotfile__open(&o);
	int n, hidden;

	cr_assert_not_null(rf);
	/* Idle: ticks past the age make no file. */
	usleep(300000);
	cr_assert_eq(rotfile__tick(rf), 0);
	cr_assert_eq(rotfile__rotations(rf), 0);
	n = list_files(files, &hidden);
	cr_assert_eq(n, 0, "an empty file was published");
	cr_assert_eq(hidden, 1, "the active file");

	/* The idle tick restarted the clock: a line now is not yet due. */
	cr_assert_eq(rotfile__write(rf, "one\n", 4), 0);
	cr_assert_eq(rotfile__tick(rf), 0);
	cr_assert_eq(rotfile__rotations(rf), 0, "rotated before rotate_secs");
	usleep(300000);
	cr_assert_eq(rotfile__tick(rf), 0);
	cr_assert_eq(rotfile__rotations(rf), 1);
	n = list_files(files, &hidden);
	cr_assert_eq(n, 1);
	cr_assert_eq(hidden, 1, "a fresh active file");
	cr_assert_str_eq(files[0].data, "one\n");
	free_files(files, n);

	/* Right after a rotation the new file is young. */
	cr_assert_eq(rotfile__write(rf, "two\n", 4), 0);
	cr_assert_eq(rotfile__tick(rf), 0);
	cr_assert_eq(rotfile__rotations(rf), 1);
	cr_assert_eq(rotfile__close(rf), 2);
	n = list_files(files, &hidden);
	cr_assert_eq(n, 2);
	cr_assert_eq(hidden, 0);
	free_files(files, n);
}

Test(rotfile, close_removes_an_empty_active_file)
{
	static struct file files[MAX_FILES];
	struct rotfile_opts o = { .dir = dir, .rotate_bytes = 1000 };
	struct rotfile *rf = rotfile__open(&o);
	int n, hidden;

	cr_assert_not_null(rf);
	cr_assert_eq(strncmp(rotfile__name(rf), dir, strlen(dir)), 0);
	cr_assert_not_null(strstr(rotfile__name(rf), "/.profilis-active-"));
	n = list_files(files, &hidden);
	cr_assert_eq(hidden, 1);
	cr_assert_eq(rotfile__close(rf), 0);
	n = list_files(files, &hidden);
	cr_assert_eq(n, 0);
	cr_assert_eq(hidden, 0, "the empty active file was left behind");
	cr_assert_eq(rotfile__close(NULL), 0);
}

Test(rotfile, file_mode_appends)
{
	char path[128];
	struct rotfile_opts o = { .file = path, .rotate_bytes = 1 };
	struct rotfile *rf;
	char *data;
	size_t size;
	FILE *f;

	snprintf(path, sizeof(path), "%s/out.jsonl", dir);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs("old\n", f);
	fclose(f);
	rf = rotfile__open(&o);
	cr_assert_not_null(rf);
	cr_assert_str_eq(rotfile__name(rf), path);
	cr_assert(!rotfile__would_overflow(rf, 1000), "size rotation is for directories only");
	cr_assert_eq(rotfile__make_room(rf, 1000), 0);
	cr_assert_eq(rotfile__write(rf, "new\n", 4), 0);
	cr_assert_eq(rotfile__write(rf, "newer\n", 6), 0);
	cr_assert_eq(rotfile__tick(rf), 0);
	cr_assert_eq(rotfile__close(rf), 0);
	data = slurp(path, &size);
	cr_assert_str_eq(data, "old\nnew\nnewer\n");
	free(data);
}

Test(rotfile, open_failures_set_errno)
{
	char path[128];
	struct rotfile_opts o = { .dir = path };

	snprintf(path, sizeof(path), "%s/missing", dir);
	errno = 0;
	cr_assert_null(rotfile__open(&o));
	cr_assert_eq(errno, ENOENT);
	o.dir = NULL;
	o.file = "/nonexistent-dir/x.jsonl";
	errno = 0;
	cr_assert_null(rotfile__open(&o));
	cr_assert_eq(errno, ENOENT);
}

Test(rotfile, a_full_device_is_reported)
{
	struct rotfile_opts o = { .file = "/dev/full" };
	struct rotfile *rf = rotfile__open(&o);

	cr_assert_not_null(rf, "/dev/full: %s", strerror(errno));
	cr_assert_eq(rotfile__write(rf, "line\n", 5), -ENOSPC);
	cr_assert_eq(rotfile__write(rf, "line\n", 5), -ENOSPC);
	rotfile__close(rf);
}

static void set_fsize_limit(rlim_t soft)
{
	struct rlimit rl;

	cr_assert_eq(getrlimit(RLIMIT_FSIZE, &rl), 0);
	rl.rlim_cur = soft;
	cr_assert_eq(setrlimit(RLIMIT_FSIZE, &rl), 0, "setrlimit: %s", strerror(errno));
}

/* Asserts the active file holds exactly `want` (no partial line, no hole). */
static void assert_active(struct rotfile *rf, const char *want, size_t len)
{
	size_t size;
	char *data = slurp(rotfile__name(rf), &size);

	cr_assert_eq(size, len, "the active file has %zu bytes, %zu are whole lines", size, len);
	cr_assert_eq(memcmp(data, want, len), 0, "the active file holds other bytes");
	free(data);
}

/* RLIMIT_FSIZE makes write(2) stop half way through a line, then fail. */
Test(rotfile, a_write_cut_short_is_cut_back_to_whole_lines)
{
	struct rotfile_opts o = { .dir = dir };
	char line[300], want[4096];
	size_t ok = 0;
	struct rotfile *rf;
	int err = 0;

	signal(SIGXFSZ, SIG_IGN);
	memset(line, 'l', sizeof(line));
	line[sizeof(line) - 1] = '\n';
	rf = rotfile__open(&o);
	cr_assert_not_null(rf);
	set_fsize_limit(1000);
	for (int i = 0; i < 5 && !err; i++) {
		err = rotfile__write(rf, line, sizeof(line));
		if (!err) {
			memcpy(want + ok, line, sizeof(line));
			ok += sizeof(line);
		}
	}
	cr_assert_eq(err, -EFBIG);
	cr_assert_eq(ok, 900);
	assert_active(rf, want, ok);

	/* Space again: the next line follows the last whole one, with no gap. */
	set_fsize_limit(RLIM_INFINITY);
	cr_assert_eq(rotfile__write(rf, "after\n", 6), 0);
	memcpy(want + ok, "after\n", 6);
	ok += 6;
	assert_active(rf, want, ok);
	rotfile__close(rf);
}

/* The same in file mode (O_APPEND): cut back, then resume. */
Test(rotfile, a_write_cut_short_in_file_mode_is_cut_back)
{
	char path[128], line[300], want[4096];
	struct rotfile_opts o = { .file = path };
	size_t ok = 0;
	struct rotfile *rf;
	int err = 0;

	signal(SIGXFSZ, SIG_IGN);
	snprintf(path, sizeof(path), "%s/out.jsonl", dir);
	memset(line, 'm', sizeof(line));
	line[sizeof(line) - 1] = '\n';
	rf = rotfile__open(&o);
	cr_assert_not_null(rf);
	set_fsize_limit(1000);
	for (int i = 0; i < 5 && !err; i++) {
		err = rotfile__write(rf, line, sizeof(line));
		if (!err) {
			memcpy(want + ok, line, sizeof(line));
			ok += sizeof(line);
		}
	}
	cr_assert_eq(err, -EFBIG);
	assert_active(rf, want, ok);
	set_fsize_limit(RLIM_INFINITY);
	cr_assert_eq(rotfile__write(rf, "after\n", 6), 0);
	memcpy(want + ok, "after\n", 6);
	assert_active(rf, want, ok + 6);
	rotfile__close(rf);
}

/* A real full file system: an 8 KiB tmpfs (needs root; skipped otherwise). */
Test(rotfile, a_full_tmpfs_leaves_only_whole_lines)
{
	char mnt[128], line[700], *want;
	struct rotfile_opts o = { .dir = mnt };
	size_t ok = 0;
	struct rotfile *rf;
	int err = 0, i;

	snprintf(mnt, sizeof(mnt), "%s/mnt", dir);
	cr_assert_eq(mkdir(mnt, 0755), 0);
	if (mount("tmpfs", mnt, "tmpfs", 0, "size=8k") != 0) {
		rmdir(mnt);
		cr_skip_test("cannot mount a tmpfs: %s", strerror(errno));
	}
	want = malloc(1 << 16);
	memset(line, 't', sizeof(line));
	line[sizeof(line) - 1] = '\n';
	rf = rotfile__open(&o);
	cr_assert_not_null(rf);
	for (i = 0; i < 64 && !err; i++) {
		line[0] = 'A' + i % 26;
		err = rotfile__write(rf, line, sizeof(line));
		if (!err) {
			memcpy(want + ok, line, sizeof(line));
			ok += sizeof(line);
		}
	}
	cr_assert_eq(err, -ENOSPC, "after %d lines: %d", i, err);
	cr_assert_gt(ok, 0);
	cr_assert_neq(ok % 4096, 0, "the test needs a line that straddles the last page");
	assert_active(rf, want, ok);
	/* Retrying the same line fails the same way and leaves the file alone. */
	cr_assert_eq(rotfile__write(rf, line, sizeof(line)), -ENOSPC);
	assert_active(rf, want, ok);
	/* A short line that fits in the space left goes right after the last one. */
	cr_assert_eq(rotfile__write(rf, "z\n", 2), 0);
	memcpy(want + ok, "z\n", 2);
	ok += 2;
	assert_active(rf, want, ok);
	rotfile__close(rf);
	free(want);
	umount2(mnt, MNT_DETACH);
	rmdir(mnt);
}

/* ---- a hostile directory and failing renames (issue 10) ---- */

#define VICTIM_TEXT "root's data\n"

static void make_victim(char *path, size_t len)
{
	FILE *f;

	snprintf(path, len, "%s.victim", dir);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(VICTIM_TEXT, f);
	fclose(f);
}

/* Every "%06d " line of 0..n-1 is in exactly one finished file. */
static void assert_all_lines(struct file *files, int n, int lines)
{
	int seen[256] = { 0 };

	cr_assert_leq(lines, 256);
	for (int f = 0; f < n; f++)
		for (char *l = files[f].data; *l; l = strchr(l, '\n') + 1) {
			int i = atoi(l);

			cr_assert(i >= 0 && i < lines, "%s: stray line '%.20s'", files[f].name, l);
			seen[i]++;
		}
	for (int i = 0; i < lines; i++)
		cr_assert_eq(seen[i], 1, "line %d found %d times", i, seen[i]);
}

/* The old active name was .profilis-active-PID.jsonl, opened O_TRUNC: the
 * owner of the directory could point it at any file root can write. */
Test(rotfile, a_symlink_at_the_old_active_name_is_never_written_through)
{
	static struct file files[MAX_FILES];
	struct rotfile_opts o = { .dir = dir, .rotate_bytes = 100 };
	char victim[128], link[256], *data;
	unsigned seed = 7;
	struct rotfile *rf;
	int n, hidden;
	size_t size;

	make_victim(victim, sizeof(victim));
	snprintf(link, sizeof(link), "%s/.profilis-active-%d.jsonl", dir, (int)getpid());
	cr_assert_eq(symlink(victim, link), 0);
	rf = rotfile__open(&o);
	cr_assert_not_null(rf, "%s", strerror(errno));
	for (int i = 0; i < 40; i++)
		put_line(rf, i, &seed);
	rotfile__close(rf);
	data = slurp(victim, &size);
	cr_assert_str_eq(data, VICTIM_TEXT, "the victim was written through the symlink");
	free(data);
	unlink(victim);
	n = list_files(files, &hidden);
	cr_assert_eq(hidden, 1, "only the planted symlink is hidden");
	assert_all_lines(files, n, 40);
	free_files(files, n);
}

/* Two writers in one process (or a PID reused) never share an active file. */
Test(rotfile, two_writers_in_one_directory_have_their_own_active_files)
{
	static struct file files[MAX_FILES];
	struct rotfile_opts o = { .dir = dir, .template = "{seq}-{timestamp}.jsonl" };
	struct rotfile *a = rotfile__open(&o), *b;
	unsigned seed = 3;
	int n, hidden;

	cr_assert_not_null(a);
	put_line(a, 0, &seed);
	b = rotfile__open(&o);
	cr_assert_not_null(b);
	cr_assert_str_neq(rotfile__name(a), rotfile__name(b));
	for (int i = 1; i < 20; i++)
		put_line(i % 2 ? b : a, i, &seed);
	rotfile__close(a);
	usleep(10000);
	rotfile__close(b);
	n = list_files(files, &hidden);
	cr_assert_eq(hidden, 0);
	cr_assert_eq(n, 2);
	assert_all_lines(files, n, 20);
	free_files(files, n);
}

/* A 300-character template gives ENAMETOOLONG at every rotation: the old
 * code then reopened the active file with O_TRUNC (one line survived). */
Test(rotfile, a_failed_rename_keeps_the_records_under_a_fallback_name_and_counts_it)
{
	static struct file files[MAX_FILES];
	char template[400];
	struct rotfile_opts o = { .dir = dir, .rotate_bytes = 100, .template = template };
	unsigned seed = 11;
	struct rotfile *rf;
	uint64_t failures, rotations;
	int n, hidden, err = 0;

	snprintf(template, sizeof(template), "{seq}-%0300d.jsonl", 0);
	rf = rotfile__open(&o);
	cr_assert_not_null(rf);
	for (int i = 0; i < 50; i++)
		put_line(rf, i, &seed);
	cr_assert_gt(rotfile__rotations(rf), 3, "the test needs several rotations");
	rotfile__finish(rf);
	failures = rotfile__rename_failures(rf, &err);
	rotations = rotfile__rotations(rf);
	cr_assert_eq(rotfile__close(rf), rotations);
	cr_assert_eq(failures, rotations, "every rename failed and was counted");
	cr_assert_eq(err, -ENAMETOOLONG);
	n = list_files(files, &hidden);
	cr_assert_eq(hidden, 0);
	cr_assert_eq((uint64_t)n, rotations);
	for (int f = 0; f < n; f++) {
		char want[64];

		snprintf(want, sizeof(want), "profilis-unrenamed-%d-", (int)getpid());
		cr_assert_eq(strncmp(files[f].name, want, strlen(want)), 0, "%s", files[f].name);
		cr_assert_eq(strlen(files[f].name), strlen(want) + 16 + 6, "%s", files[f].name);
	}
	assert_all_lines(files, n, 50);
	free_files(files, n);
}

Test(rotfile, files_are_0600_whatever_the_umask_or_as_file_mode_says)
{
	struct rotfile_opts o = { .dir = dir };
	char path[512];
	struct rotfile *rf;
	struct stat st;
	static struct file files[MAX_FILES];
	int n, hidden;

	umask(0);
	rf = rotfile__open(&o);
	cr_assert_not_null(rf);
	cr_assert_eq(stat(rotfile__name(rf), &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0600, "active file %o", st.st_mode & 07777);
	cr_assert_eq(rotfile__write(rf, "x\n", 2), 0);
	rotfile__close(rf);
	n = list_files(files, &hidden);
	cr_assert_eq(n, 1);
	snprintf(path, sizeof(path), "%s/%s", dir, files[0].name);
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0600, "finished file %o", st.st_mode & 07777);
	free_files(files, n);

	/* -o FILE, new: 0600 too; then --file-mode 0640. */
	snprintf(path, sizeof(path), "%s/one.jsonl", dir);
	o = (struct rotfile_opts){ .file = path };
	rotfile__close(rotfile__open(&o));
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0600, "-o FILE %o", st.st_mode & 07777);
	safefile_set_mode(0640);
	snprintf(path, sizeof(path), "%s/two.jsonl", dir);
	rotfile__close(rotfile__open(&o));
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 07777, 0640, "--file-mode 0640: %o", st.st_mode & 07777);
	umask(022);
}

Test(rotfile, templates_too_long_for_a_file_name_are_rejected)
{
	char t[400], msg[256], longdir[4100];

	/* {seq} is up to 20 digits and a collision adds "-9999": 230 literal
	 * characters make 255 at most, 231 make 256. */
	snprintf(t, sizeof(t), "{seq}%0230d", 0);
	cr_assert_eq(rotfile_template_max_len(t), 255);
	cr_assert_eq(rotfile_check_template(t, msg, sizeof(msg)), 0, "%s", msg);
	snprintf(t, sizeof(t), "{seq}%0231d", 0);
	cr_assert_eq(rotfile_check_template(t, msg, sizeof(msg)), -ENAMETOOLONG);
	cr_assert_eq(strncmp(msg, "--filename-template: names from '{seq}0000", 42), 0, "%s", msg);
	cr_assert_not_null(strstr(msg, "can be 256 characters long; a file name has at most 255"),
			   "%s", msg);
	cr_assert_eq(rotfile_template_max_len(NULL), 31 + 5);
	cr_assert_eq(rotfile_template_max_len("{pid}-{timestamp}"), 7 + 1 + 16 + 5);

	memset(longdir, 'd', sizeof(longdir) - 1);
	longdir[0] = '/';
	longdir[4070] = 0;
	cr_assert_eq(rotfile_check_path(longdir, NULL, msg, sizeof(msg)), -ENAMETOOLONG);
	cr_assert_eq(strncmp(msg, "-o /ddd", 7), 0, "%s", msg);
	cr_assert_not_null(strstr(msg, "ddd...: paths of files there can be 4107 characters long; "
				       "a path has at most 4095"),
			   "%s", msg);
	cr_assert_eq(rotfile_check_path(dir, NULL, msg, sizeof(msg)), 0);
}
