// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Finds the interpreter of a running process.  The file is opened through
 * /proc/PID/root so containers and chroots resolve to the right inode, and
 * symbols are turned into the two things the BPF side needs: file offsets for
 * uprobes and runtime addresses (link-time address + load bias) for reads.
 */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include "elfsym.h"
#include "procstat.h"
#include "target.h"

uint64_t target_load_bias(uint64_t start, uint64_t offset, uint64_t seg_vaddr, uint64_t seg_offset)
{
	/* The byte at file `offset` lives at link-time seg_vaddr + (offset - seg_offset). */
	return start - (seg_vaddr + (offset - seg_offset));
}

void target_decode_version(uint32_t hex, unsigned int *major, unsigned int *minor,
			   unsigned int *micro)
{
	*major = (hex >> 24) & 0xff;
	*minor = (hex >> 16) & 0xff;
	*micro = (hex >> 8) & 0xff;
}

static void read_comm(pid_t pid, char *buf, size_t len)
{
	char path[64];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	buf[0] = 0;
	f = fopen(path, "re");
	if (!f)
		return;
	if (fgets(buf, len, f))
		buf[strcspn(buf, "\n")] = 0;
	fclose(f);
}

static int find_mapping(struct target *t, struct py_mapping *m, char *msg, size_t msglen)
{
	char path[64];
	FILE *maps;
	int err;

	snprintf(path, sizeof(path), "/proc/%d/maps", t->pid);
	maps = fopen(path, "re");
	if (!maps) {
		err = -errno;
		snprintf(msg, msglen, "cannot read %s: %s", path, strerror(errno));
		return err == -ENOENT ? -ESRCH : err;
	}
	err = procmaps_find_python(maps, m);
	fclose(maps);
	if (err)
		snprintf(msg, msglen,
			 "PID %d (%s, %s) is not a Python process: it has no python or "
			 "libpython mapping",
			 t->pid, t->comm, t->exe[0] ? t->exe : "unknown executable");
	return err ? -ENOEXEC : 0;
}

/* Whether `path` opens the file of mapping `m` (same inode; same device too
 * unless only the inode is comparable, as through map_files). */
static bool is_mapped_file(const char *path, const struct py_mapping *m, bool check_dev)
{
	struct stat st;

	if (stat(path, &st))
		return false;
	return st.st_ino == m->inode &&
	       (!check_dev || st.st_dev == makedev(m->dev_major, m->dev_minor));
}

/*
 * Where this process opens the interpreter the target maps, whatever the
 * target's root: the mapping itself through /proc/PID/map_files (host,
 * chroot and pivot_root alike; it needs CAP_SYS_ADMIN, as uprobes do), else
 * the path under /proc/PID/root (a container's mount namespace), else the
 * path as mapped (a chroot's maps show it from our root).  A path is taken
 * only when it is the mapped file, so a file planted at the same name in
 * another root is never read.
 */
static int find_interp_file(struct target *t, const struct py_mapping *m, char *msg, size_t msglen)
{
	char *out = t->interp_host;
	size_t len = sizeof(t->interp_host);

	snprintf(out, len, "/proc/%d/map_files/%llx-%llx", t->pid, (unsigned long long)m->start,
		 (unsigned long long)m->end);
	if (is_mapped_file(out, m, false))
		return 0;
	snprintf(out, len, "/proc/%d/root%s", t->pid, m->path);
	if (is_mapped_file(out, m, true))
		return 0;
	snprintf(out, len, "%s", m->path);
	if (is_mapped_file(out, m, true))
		return 0;
	snprintf(msg, msglen,
		 "cannot open the interpreter %s of PID %d: neither /proc/%d/map_files "
		 "(needs CAP_SYS_ADMIN, and CAP_DAC_READ_SEARCH for a process of another user), "
		 "nor /proc/%d/root%s, nor %s is the mapped file (inode %llu)",
		 m->path, t->pid, t->pid, t->pid, m->path, m->path, (unsigned long long)m->inode);
	return -ENOENT;
}

static int resolve_symbols(struct target *t, struct elf_file *ef, char *msg, size_t msglen)
{
	/* The type objects let BPF tell a str or an int from anything a hostile
	 * app puts where one is expected (bytes in PATH_INFO): every CPython
	 * exports them for extension modules. */
	static const char *const needed[] = { "PyContextVar_Set", "PyContextVar_Reset",
					      "_PyRuntime",	  "_Py_NoneStruct",
					      "PyUnicode_Type",	  "PyLong_Type" };
	uint64_t addr[6];

	for (int i = 0; i < 6; i++) {
		if (elfsym__symbol(ef, needed[i], &addr[i]) && t->py_version[0]) {
			/* A known CPython without it: too old (ContextVars came in
			 * 3.7), which the caller can say in version terms. */
			snprintf(msg, msglen, "%s (CPython %s) has no symbol %s", t->interp,
				 t->py_version, needed[i]);
			return -ENOTSUP;
		} else if (elfsym__symbol(ef, needed[i], &addr[i])) {
			snprintf(msg, msglen, "%s has no symbol %s; is it a CPython build?",
				 t->interp, needed[i]);
			return -ENOENT;
		}
	}
	if (elfsym__vaddr_to_offset(ef, addr[0], &t->set_offset) ||
	    elfsym__vaddr_to_offset(ef, addr[1], &t->reset_offset)) {
		snprintf(msg, msglen, "%s: PyContextVar_Set is outside any loadable segment",
			 t->interp);
		return -ENOEXEC;
	}
	t->runtime_addr = addr[2] + t->load_bias;
	t->none_addr = addr[3] + t->load_bias;
	t->unicode_type_addr = addr[4] + t->load_bias;
	t->long_type_addr = addr[5] + t->load_bias;
	if (elfsym__symbol(ef, "PyCode_Type", &addr[0]) == 0)
		t->code_type_addr = addr[0] + t->load_bias;
	if (elfsym__symbol(ef, "_Py_HashSecret", &addr[0]) == 0)
		t->hash_secret_addr = addr[0] + t->load_bias;
	return 0;
}

static void detect_version(struct target *t, struct elf_file *ef, int hint)
{
	uint64_t addr;
	uint32_t hex;

	if (elfsym__symbol(ef, "Py_Version", &addr) == 0 &&
	    elfsym__read(ef, addr, &hex, sizeof(hex)) == 0) {
		target_decode_version(hex, &t->py_major, &t->py_minor, &t->py_micro);
		snprintf(t->py_version, sizeof(t->py_version), "%u.%u.%u", t->py_major, t->py_minor,
			 t->py_micro);
		return;
	}
	/* Before 3.11 there is no Py_Version: trust the file name, which does
	 * not tell the micro version. */
	if (hint >= 300) {
		t->py_major = 3;
		t->py_minor = hint - 300;
		snprintf(t->py_version, sizeof(t->py_version), "%u.%u", t->py_major, t->py_minor);
	}
}

/* The thread-group id of `pid` (a thread id given by mistake maps to its
 * process); the pid itself when /proc cannot tell. */
static pid_t tgid_of(pid_t pid)
{
	char path[64], line[256];
	pid_t tgid = pid;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "re");
	if (!f)
		return pid;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "Tgid: %d", &tgid) == 1)
			break;
	fclose(f);
	return tgid > 0 ? tgid : pid;
}

int target_resolve(pid_t pid, struct target *t, char *msg, size_t msglen)
{
	struct py_mapping m;
	struct elf_load_seg seg;
	struct elf_file *ef = NULL;
	char path[64];
	ssize_t n;
	int err;

	memset(t, 0, sizeof(*t));
	t->pid = pid;
	snprintf(path, sizeof(path), "/proc/%d", pid);
	if (pid <= 0 || access(path, F_OK)) {
		snprintf(msg, msglen, "no process with PID %d", pid);
		return -ESRCH;
	}
	t->pid = pid = tgid_of(pid);
	read_comm(pid, t->comm, sizeof(t->comm));
	snprintf(path, sizeof(path), "/proc/%d/exe", pid);
	n = readlink(path, t->exe, sizeof(t->exe) - 1);
	t->exe[n > 0 ? n : 0] = 0;
	err = find_mapping(t, &m, msg, msglen);
	if (err)
		return err;
	snprintf(t->interp, sizeof(t->interp), "%s", m.path);
	err = find_interp_file(t, &m, msg, msglen);
	if (err)
		return err;
	t->is_lib = m.is_lib;
	ef = elfsym__open(t->interp_host);
	if (!ef) {
		err = -errno;
		snprintf(msg, msglen, "cannot open the interpreter %s of PID %d: %s", t->interp,
			 pid, strerror(errno));
		return err;
	}
	t->is_pie = elfsym__is_pie_or_shared(ef);
	err = elfsym__seg_for_offset(ef, m.offset, &seg);
	if (err) {
		snprintf(msg, msglen, "%s: mapping at offset 0x%llx matches no segment", t->interp,
			 (unsigned long long)m.offset);
		goto cleanup;
	}
	t->load_bias = target_load_bias(m.start, m.offset, seg.vaddr, seg.offset);
	detect_version(t, ef, m.version_hint);
	err = resolve_symbols(t, ef, msg, msglen);
cleanup:
	elfsym__free(ef);
	return err;
}

/* The parent of a live process; -1 for zombies (nothing left to trace). */
static pid_t read_ppid(pid_t pid)
{
	struct procstat st;

	if (procstat_read(pid, &st) || procstat_dead(st.state))
		return -1;
	return st.ppid;
}

int target_process_tree(pid_t root, pid_t *out, int max)
{
	pid_t pids[8192], ppids[8192];
	int n = 0, count = 0;
	struct dirent *de;
	DIR *d;

	if (max <= 0)
		return 0;
	out[count++] = root;
	d = opendir("/proc");
	if (!d)
		return count;
	while ((de = readdir(d)) && n < 8192) {
		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		pids[n] = atoi(de->d_name);
		ppids[n] = read_ppid(pids[n]);
		n++;
	}
	closedir(d);
	/* Breadth-first: out[] grows while we scan it. */
	for (int i = 0; i < count; i++)
		for (int j = 0; j < n && count < max; j++)
			if (ppids[j] == out[i] && pids[j] != root)
				out[count++] = pids[j];
	return count;
}

int target_alive(pid_t pid)
{
	struct procstat st;

	return procstat_read(pid, &st) == 0 && !procstat_dead(st.state);
}

void target_server_kind(pid_t pid, char *out, size_t len)
{
	static const char *const known[] = { "gunicorn", "uwsgi", "waitress", "hypercorn" };
	char path[64], cmd[4096];
	size_t n = 0;
	FILE *f;

	snprintf(out, len, "python");
	snprintf(path, sizeof(path), "/proc/%d/cmdline", pid);
	f = fopen(path, "re");
	if (!f)
		return;
	n = fread(cmd, 1, sizeof(cmd) - 1, f);
	fclose(f);
	for (size_t i = 0; i < n; i++)
		if (cmd[i] == 0)
			cmd[i] = ' '; /* arguments are NUL separated */
	cmd[n] = 0;
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		if (strstr(cmd, known[i])) {
			snprintf(out, len, "%s", known[i]);
			return;
		}
	}
	if (strstr(cmd, "flask run"))
		snprintf(out, len, "flask run");
}
