// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * /proc/PID/maps parsing: real-looking lines (file, anonymous, [heap], paths
 * with spaces, "(deleted)"), malformed and overlong lines, the file-name test
 * that tells an interpreter from everything else, and the interpreter search
 * over synthetic maps text fed through fmemopen, plus this test process's own
 * maps (not Python).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "procmaps.h"

static struct maps_entry parse_ok(const char *line)
{
	struct maps_entry e;

	cr_assert_eq(procmaps_parse_line(line, &e), 0, "rejected: %s", line);
	return e;
}

Test(procmaps, line_with_path)
{
	struct maps_entry e = parse_ok("00400000-0041f000 r--p 00000000 fe:01 1835092"
				       "                    /usr/bin/python3.11\n");

	cr_assert_eq(e.start, 0x400000);
	cr_assert_eq(e.end, 0x41f000);
	cr_assert_eq(e.offset, 0);
	cr_assert_str_eq(e.perms, "r--p");
	cr_assert_str_eq(e.path, "/usr/bin/python3.11");
	/* The file's identity: a path is used only when it names this inode. */
	cr_assert_eq(e.dev_major, 0xfe);
	cr_assert_eq(e.dev_minor, 1);
	cr_assert_eq(e.inode, 1835092);
}

Test(procmaps, shared_lib_high_address_and_offset)
{
	struct maps_entry e = parse_ok("7f3c2a0f5000-7f3c2a331000 r-xp 000f5000 103:02 6291651"
				       "  /root/.pyenv/versions/3.11.7/lib/libpython3.11.so.1.0");

	cr_assert_eq(e.start, 0x7f3c2a0f5000ULL);
	cr_assert_eq(e.end, 0x7f3c2a331000ULL);
	cr_assert_eq(e.offset, 0xf5000);
	cr_assert_str_eq(e.perms, "r-xp");
	cr_assert_str_eq(e.path, "/root/.pyenv/versions/3.11.7/lib/libpython3.11.so.1.0");
}

Test(procmaps, anonymous_and_special)
{
	struct maps_entry e = parse_ok("7ffd5c3e1000-7ffd5c402000 rw-p 00000000 00:00 0\n");

	cr_assert_eq(e.start, 0x7ffd5c3e1000ULL);
	cr_assert_str_eq(e.path, "");
	e = parse_ok("7ffd5c3e1000-7ffd5c402000 rw-p 00000000 00:00 0 \n");
	cr_assert_str_eq(e.path, "");
	e = parse_ok("01b8e000-01baf000 rw-p 00000000 00:00 0                          [heap]\n");
	cr_assert_str_eq(e.path, "[heap]");
	cr_assert_str_eq(e.perms, "rw-p");
	e = parse_ok("ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0  [vsyscall]");
	cr_assert_eq(e.end, 0xffffffffff601000ULL);
	cr_assert_str_eq(e.path, "[vsyscall]");
}

Test(procmaps, spaces_and_deleted)
{
	struct maps_entry e = parse_ok("7f0000000000-7f0000001000 r--p 00001000 08:01 42"
				       "   /opt/my app/bin/python3.11\n");

	cr_assert_str_eq(e.path, "/opt/my app/bin/python3.11");
	cr_assert_eq(e.offset, 0x1000);
	e = parse_ok(
		"7f0000000000-7f0000001000 r--p 00000000 08:01 42 /usr/bin/python3.11 (deleted)\n");
	cr_assert_str_eq(e.path, "/usr/bin/python3.11 (deleted)");
}

Test(procmaps, malformed_lines)
{
	static const char *const bad[] = {
		"",
		"\n",
		"garbage",
		"00400000 r--p 00000000 fe:01 1 /x",		/* no end */
		"00400000-0041f000 r--p",			/* truncated */
		"00400000-0041f000 r--p 00000000 fe:01",	/* no inode */
		"00400000-0041f000 r--p 00000000 fe:01 abc /x", /* inode not a number */
		"0041f000-00400000 r--p 00000000 fe:01 1 /x",	/* end < start */
		"00400000-0041f000 r--pp 00000000 fe:01 1 /x",	/* perms too long */
		"00400000-0041f000 r-- 00000000 fe:01 1 /x",	/* perms too short */
		"zz400000-0041f000 r--p 00000000 fe:01 1 /x",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct maps_entry e;

		cr_assert_eq(procmaps_parse_line(bad[i], &e), -EINVAL, "accepted: \"%s\"", bad[i]);
	}
}

Test(procmaps, path_length_limit)
{
	char line[1024], path[MAPS_PATH_MAX + 1];
	struct maps_entry e;

	memset(path, 'a', sizeof(path));
	path[0] = '/';
	path[MAPS_PATH_MAX - 1] = 0; /* 511 chars: fits */
	snprintf(line, sizeof(line), "1000-2000 r--p 00000000 00:00 1 %s\n", path);
	cr_assert_eq(procmaps_parse_line(line, &e), 0);
	cr_assert_str_eq(e.path, path);
	path[MAPS_PATH_MAX - 1] = 'a';
	path[MAPS_PATH_MAX] = 0; /* 512 chars: does not */
	snprintf(line, sizeof(line), "1000-2000 r--p 00000000 00:00 1 %s\n", path);
	cr_assert_eq(procmaps_parse_line(line, &e), -EINVAL);
}

Test(procmaps, python_kind)
{
	static const struct {
		const char *path;
		int kind;
	} cases[] = {
		{ "python3.11", 311 },
		{ "/usr/bin/python3.11", 311 },
		{ "/usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0", 311 },
		{ "/root/.pyenv/versions/3.11.7/lib/libpython3.11.so.1.0", 311 },
		{ "libpython3.12d.so", 312 },
		{ "libpython3.9.so.1.0", 309 },
		{ "/usr/bin/python3.11d", 311 },
		{ "python3.13", 313 },
		{ "python3", 1 },
		{ "python", 1 },
		{ "/usr/local/bin/python", 1 },
		{ "pythonista", 0 },
		{ "libpython3.so", 0 }, /* stable-ABI shim: no version */
		{ "/usr/bin/bash", 0 },
		{ "python3.11-config", 0 },
		{ "python3.11.bak", 0 },
		{ "python3.", 0 },
		{ "python3.100", 0 },
		{ "python2.7", 0 },
		{ "libpython3.11.a", 0 },
		{ "/usr/lib/python3.11/lib-dynload/_ssl.cpython-311-x86_64-linux-gnu.so", 0 },
		{ "/home/python3.11/bin/uwsgi", 0 },
		{ "", 0 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		cr_assert_eq(procmaps_python_kind(cases[i].path), cases[i].kind,
			     "\"%s\": %d, want %d", cases[i].path,
			     procmaps_python_kind(cases[i].path), cases[i].kind);
}

static int find_in(const char *text, struct py_mapping *m)
{
	FILE *f = fmemopen((void *)text, strlen(text), "r");
	int err;

	cr_assert_not_null(f);
	err = procmaps_find_python(f, m);
	fclose(f);
	return err;
}

#define DEB_MAPS                                                                                \
	"00400000-0041f000 r--p 00000000 fe:01 1835092 /usr/bin/python3.11\n"                   \
	"0041f000-006d2000 r-xp 0001f000 fe:01 1835092 /usr/bin/python3.11\n"                   \
	"006d2000-00945000 r--p 002d2000 fe:01 1835092 /usr/bin/python3.11\n"                   \
	"00945000-00a85000 rw-p 00544000 fe:01 1835092 /usr/bin/python3.11\n"                   \
	"01b8e000-01baf000 rw-p 00000000 00:00 0 [heap]\n"                                      \
	"7f1c00000000-7f1c00022000 r--p 00000000 fe:01 1 /usr/lib/x86_64-linux-gnu/libc.so.6\n" \
	"7ffd5c3e1000-7ffd5c402000 rw-p 00000000 00:00 0 [stack]\n"

Test(procmaps, find_executable_only)
{
	struct py_mapping m;

	cr_assert_eq(find_in(DEB_MAPS, &m), 0);
	cr_assert_str_eq(m.path, "/usr/bin/python3.11");
	cr_assert_eq(m.version_hint, 311);
	cr_assert_eq(m.is_lib, 0);
	cr_assert_eq(m.start, 0x400000, "the first mapping is kept");
	cr_assert_eq(m.offset, 0);
}

Test(procmaps, libpython_wins_over_executable)
{
	static const char text[] =
		"55d0c0a00000-55d0c0a01000 r--p 00000000 fe:01 7 /root/.pyenv/versions/3.11.7/bin/python3.11\n"
		"55d0c0a01000-55d0c0a02000 r-xp 00001000 fe:01 7 /root/.pyenv/versions/3.11.7/bin/python3.11\n"
		"7f3c2a000000-7f3c2a0f5000 r--p 00000000 fe:01 9 /root/.pyenv/versions/3.11.7/lib/libpython3.11.so.1.0\n"
		"7f3c2a0f5000-7f3c2a331000 r-xp 000f5000 fe:01 9 /root/.pyenv/versions/3.11.7/lib/libpython3.11.so.1.0\n"
		"7f3c2a415000-7f3c2a577000 rw-p 00414000 fe:01 9 /root/.pyenv/versions/3.11.7/lib/libpython3.11.so.1.0\n"
		"7f3c2b000000-7f3c2b001000 r--p 00000000 fe:01 3 /usr/bin/python3.11\n";
	struct py_mapping m;

	cr_assert_eq(find_in(text, &m), 0);
	cr_assert_str_eq(m.path, "/root/.pyenv/versions/3.11.7/lib/libpython3.11.so.1.0");
	cr_assert_eq(m.is_lib, 1);
	cr_assert_eq(m.version_hint, 311);
	cr_assert_eq(m.start, 0x7f3c2a000000ULL);
	cr_assert_eq(m.offset, 0);
}

Test(procmaps, embedded_libpython_without_python_executable)
{
	static const char text[] =
		"55d0c0a00000-55d0c0a01000 r--p 00000000 fe:01 7 /usr/bin/uwsgi-core\n"
		"7f3c2a000000-7f3c2a0f5000 r--p 00000000 fe:01 9 /usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0\n";
	struct py_mapping m;

	cr_assert_eq(find_in(text, &m), 0);
	cr_assert_eq(m.is_lib, 1);
	cr_assert_eq(m.start, 0x7f3c2a000000ULL);
}

Test(procmaps, skips_malformed_and_relative_lines)
{
	static const char text[] = "this is not a maps line\n"
				   "1000-2000 r--p 00000000 00:00 0 python3.11\n"
				   "2000-1000 r--p 00000000 00:00 0 /usr/bin/python3.11\n"
				   "3000-4000 r--p 00000000 00:00 0 /usr/bin/python3.12\n";
	struct py_mapping m;

	cr_assert_eq(find_in(text, &m), 0);
	cr_assert_eq(m.start, 0x3000);
	cr_assert_eq(m.version_hint, 312);
}

/* Found by fuzz_procmaps: a line longer than the reader's 640-byte buffer
 * (a path of ~570 bytes; paths may be 4095 and hold spaces) had its tail
 * read as a line of its own, so a directory named like a maps line made a
 * forged libpython win over the real interpreter. */
Test(procmaps, long_path_is_not_read_as_two_lines)
{
	char text[4096], pad[600];
	struct py_mapping m;

	memset(pad, 'd', sizeof(pad) - 1);
	pad[sizeof(pad) - 1] = 0;
	/* Header padded to column 73 as the kernel does; the path's tail at
	 * byte 639 of the line is "7f3a4d000000-... /home/x/libpython3.12.so". */
	snprintf(text, sizeof(text),
		 DEB_MAPS
		 "7f3a4c000000-7f3a4c021000 r--p 00000000 fe:00 4242%22s/home/x/%.*s/"
		 "7f3a4d000000-7f3a4d100000 r-xp 00000000 fe:00 4243 /home/x/libpython3.12.so\n",
		 "", 639 - 73 - 9 - 1, pad);
	cr_assert_eq(find_in(text, &m), 0);
	cr_assert_str_eq(m.path, "/usr/bin/python3.11", "chose %s", m.path);
	cr_assert_eq(m.is_lib, 0);
	cr_assert_eq(m.start, 0x400000);
}

Test(procmaps, no_python)
{
	static const char text[] =
		"00400000-00401000 r--p 00000000 fe:01 1 /usr/bin/sleep\n"
		"7f1c00000000-7f1c00022000 r--p 00000000 fe:01 1 /usr/lib/x86_64-linux-gnu/libpython3.so\n"
		"7f1c10000000-7f1c10022000 r--p 00000000 fe:01 2 /usr/lib/python3.11/lib-dynload/_json.cpython-311-x86_64-linux-gnu.so\n";
	struct py_mapping m;

	cr_assert_eq(find_in(text, &m), -ENOENT);
	cr_assert_eq(find_in("", &m), -ENOENT);
}

Test(procmaps, own_process_is_not_python)
{
	FILE *f = fopen("/proc/self/maps", "r");
	struct py_mapping m;

	cr_assert_not_null(f);
	cr_assert_eq(procmaps_find_python(f, &m), -ENOENT);
	fclose(f);
}
