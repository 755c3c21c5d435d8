// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * One pass over /proc: Python processes are those that map a python
 * executable or libpython.  Ports come from /proc/net/tcp{,6} LISTEN sockets
 * matched to the process's socket fds.  "Flask" is read from sys.modules
 * where the interpreter's layout is known (the supported versions), and
 * shown as "?" elsewhere: a guess would mislead.
 */
#include <ctype.h>
#include <errno.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "proclist.h"
#include "pyinspect.h"
#include "pyruntime.h"
#include "target.h"

#define MAX_LISTEN 1024

struct listen_sock {
	unsigned long inode;
	unsigned int port;
};

static int read_listening(struct listen_sock *out, int max)
{
	static const char *const files[] = { "/proc/net/tcp", "/proc/net/tcp6" };
	char line[512];
	int n = 0;

	for (int f = 0; f < 2; f++) {
		FILE *fp = fopen(files[f], "re");

		if (!fp)
			continue;
		while (fgets(line, sizeof(line), fp) && n < max) {
			char local[128];
			unsigned int st, port;
			unsigned long inode;
			char *colon;

			if (sscanf(line, " %*d: %127s %*s %x %*s %*s %*s %*d %*d %lu", local, &st,
				   &inode) != 3 ||
			    st != 0x0A /* TCP_LISTEN */)
				continue;
			colon = strrchr(local, ':');
			if (!colon || sscanf(colon + 1, "%x", &port) != 1)
				continue;
			out[n++] = (struct listen_sock){ inode, port };
		}
		fclose(fp);
	}
	return n;
}

/* The listening ports among pid's fds, as "8000,8001" (or "-"). */
static void ports_of(pid_t pid, const struct listen_sock *ls, int nls, char *out, size_t len)
{
	char path[64], link[64];
	struct dirent *de;
	size_t o = 0;
	DIR *d;

	snprintf(out, len, "-");
	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	if (!(d = opendir(path)))
		return;
	while ((de = readdir(d))) {
		char fd[600];
		unsigned long inode;
		ssize_t n;

		snprintf(fd, sizeof(fd), "%s/%s", path, de->d_name);
		n = readlink(fd, link, sizeof(link) - 1);
		if (n <= 0)
			continue;
		link[n] = 0;
		if (sscanf(link, "socket:[%lu]", &inode) != 1)
			continue;
		for (int i = 0; i < nls; i++) {
			char port[16];

			if (ls[i].inode != inode)
				continue;
			snprintf(port, sizeof(port), "%u", ls[i].port);
			if (!strstr(out, port) && o + strlen(port) + 2 < len)
				o += snprintf(out + o, len - o, "%s%s", o ? "," : "", port);
		}
	}
	closedir(d);
}

static int python_children(pid_t pid)
{
	pid_t kids[256];
	int n = target_process_tree(pid, kids, 256), count = 0;

	for (int i = 1; i < n; i++) {
		char path[64];
		FILE *f;
		struct py_mapping m;

		snprintf(path, sizeof(path), "/proc/%d/maps", kids[i]);
		if (!(f = fopen(path, "re")))
			continue;
		count += procmaps_find_python(f, &m) == 0;
		fclose(f);
	}
	return count;
}

static const char *flask_state(const struct target *t)
{
	struct pbpf_py_offsets off;
	char msg[256];
	int r;

	if (pyruntime_offsets(t, &off, msg, sizeof(msg)))
		return "?";
	r = pyinspect_module_loaded(t->pid, &off, t->runtime_addr, "flask");
	return r < 0 ? "?" : r ? "yes" : "no";
}

int proclist_run(FILE *out)
{
	static struct listen_sock ls[MAX_LISTEN];
	int nls = read_listening(ls, MAX_LISTEN), found = 0;
	struct dirent *de;
	DIR *d = opendir("/proc");

	if (!d)
		return 0;
	fprintf(out, "%-8s %-16s %-10s %-8s %-7s %-14s %-5s %s\n", "PID", "COMM", "SERVER",
		"PYTHON", "WORKERS", "PORTS", "FLASK", "INTERPRETER");
	while ((de = readdir(d))) {
		char msg[512], version[32], server[32], ports[64];
		struct target t;
		pid_t pid;

		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		pid = atoi(de->d_name);
		if (pid == getpid() || target_resolve(pid, &t, msg, sizeof(msg)) == -ENOEXEC)
			continue;
		if (!t.interp[0])
			continue; /* gone, or not Python */
		if (t.pid != pid)
			continue; /* a thread id */
		snprintf(version, sizeof(version), "%s", t.py_version[0] ? t.py_version : "?");
		target_server_kind(pid, server, sizeof(server));
		ports_of(pid, ls, nls, ports, sizeof(ports));
		fprintf(out, "%-8d %-16.16s %-10.10s %-8s %-7d %-14.14s %-5s %s\n", pid, t.comm,
			server, version, python_children(pid), ports, flask_state(&t), t.interp);
		found++;
	}
	closedir(d);
	if (!found)
		fprintf(out, "(no Python processes)\n");
	return found;
}
