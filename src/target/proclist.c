// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * One pass over /proc: Python processes are those that map a python
 * executable or libpython.  Ports come from /proc/net/tcp{,6} LISTEN sockets
 * matched to the process's socket fds.  "Flask" is read from sys.modules
 * where the interpreter's layout is known (the supported versions), and
 * shown as "?" elsewhere: a guess would mislead.  SERVICE, NAMESPACE, POD
 * and CONTAINER (k8smeta.h) follow INTERPRETER when any process has them,
 * so the first eight columns keep their places for scripts.
 */
#include <ctype.h>
#include <errno.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "k8smeta.h"
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

/* One row: the table is printed once all are known, so that the metadata
 * columns appear only when some process has them. */
struct row {
	pid_t pid;
	int workers;
	char comm[64], server[32], version[32], ports[64], interp[MAPS_PATH_MAX];
	const char *flask;
	struct k8smeta meta;
};

static int row_of(pid_t pid, const struct listen_sock *ls, int nls, struct row *r)
{
	char msg[512];
	struct target t;

	if (pid == getpid() || target_resolve(pid, &t, msg, sizeof(msg)) == -ENOEXEC)
		return -1;
	if (!t.interp[0] || t.pid != pid)
		return -1; /* gone, not Python, or a thread id */
	r->pid = pid;
	snprintf(r->comm, sizeof(r->comm), "%s", t.comm);
	snprintf(r->version, sizeof(r->version), "%s", t.py_version[0] ? t.py_version : "?");
	snprintf(r->interp, sizeof(r->interp), "%s", t.interp);
	target_server_kind(pid, r->server, sizeof(r->server));
	ports_of(pid, ls, nls, r->ports, sizeof(r->ports));
	r->workers = python_children(pid);
	r->flask = flask_state(&t);
	k8smeta_read(pid, &r->meta);
	return 0;
}

/* The columns after INTERPRETER: shown when any row has a value. */
enum { COL_SERVICE, COL_NAMESPACE, COL_POD, COL_CONTAINER, NCOLS };
static const char *const col_names[NCOLS] = { "SERVICE", "NAMESPACE", "POD", "CONTAINER" };

/* A container id is shown by its first 12 digits, as docker and crictl do. */
static const char *col_value(const struct row *r, int col, char *buf, size_t len)
{
	const struct k8smeta *m = &r->meta;
	const char *v = col == COL_SERVICE     ? m->service_name
			: col == COL_NAMESPACE ? m->namespace
			: col == COL_POD       ? m->pod_name
					       : m->container_id;

	snprintf(buf, len, "%.*s", col == COL_CONTAINER ? 12 : (int)len, v[0] ? v : "-");
	return buf;
}

static void print_rows(FILE *out, const struct row *rows, int n)
{
	int width[NCOLS] = { 0 }, iw = (int)strlen("INTERPRETER"), extra = 0, last = 0;
	char buf[K8SMETA_DNS_SUBDOMAIN_MAX + 1];

	for (int c = 0; c < NCOLS; c++) {
		for (int i = 0; i < n; i++)
			if (strcmp(col_value(&rows[i], c, buf, sizeof(buf)), "-") &&
			    (int)strlen(buf) > width[c])
				width[c] = strlen(buf);
		if (width[c] && width[c] < (int)strlen(col_names[c]))
			width[c] = strlen(col_names[c]);
		extra |= width[c];
		last = width[c] ? c : last;
	}
	for (int i = 0; i < n; i++)
		if ((int)strlen(rows[i].interp) > iw)
			iw = strlen(rows[i].interp);
	fprintf(out, "%-8s %-16s %-10s %-8s %-7s %-14s %-5s %-*s", "PID", "COMM", "SERVER",
		"PYTHON", "WORKERS", "PORTS", "FLASK", extra ? iw : 0, "INTERPRETER");
	for (int c = 0; c < NCOLS; c++)
		if (width[c])
			fprintf(out, " %-*s", c < last ? width[c] : 0, col_names[c]);
	fputc('\n', out);
	for (int i = 0; i < n; i++) {
		const struct row *r = &rows[i];

		fprintf(out, "%-8d %-16.16s %-10.10s %-8s %-7d %-14.14s %-5s %-*s", r->pid, r->comm,
			r->server, r->version, r->workers, r->ports, r->flask, extra ? iw : 0,
			r->interp);
		for (int c = 0; c < NCOLS; c++)
			if (width[c])
				fprintf(out, " %-*s", c < last ? width[c] : 0,
					col_value(r, c, buf, sizeof(buf)));
		fputc('\n', out);
	}
}

int proclist_run(FILE *out)
{
	static struct listen_sock ls[MAX_LISTEN];
	int nls = read_listening(ls, MAX_LISTEN), n = 0, cap = 0;
	struct row *rows = NULL, *nr;
	struct dirent *de;
	DIR *d = opendir("/proc");

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		if (!isdigit((unsigned char)de->d_name[0]))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			if (!(nr = realloc(rows, cap * sizeof(*rows))))
				break;
			rows = nr;
		}
		n += row_of(atoi(de->d_name), ls, nls, &rows[n]) == 0;
	}
	closedir(d);
	print_rows(out, rows, n);
	if (!n)
		fprintf(out, "(no Python processes)\n");
	free(rows);
	return n;
}
