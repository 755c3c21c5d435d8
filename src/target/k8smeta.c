// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The reading half of k8smeta.h: bounded reads of /proc/PID/{cgroup,
 * environ,cmdline,comm,stat}, the service-account namespace opened inside
 * the target's root, the node's name, and the per-process cache.  Every
 * read is capped (a hostile target can have megabytes of environment) and
 * every value passes the checks of k8sparse.c before it is kept.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>
#include "k8smeta.h"
#include "nspid.h"
#include "procstat.h"

#define NS_FILE_MAX 256

/* Reads up to `max` bytes of an open fd into a malloc'd buffer (NUL added
 * after the data); *cut says whether more was there.  NULL on failure. */
static char *read_fd(int fd, size_t max, size_t *len, int *cut)
{
	size_t cap = max < 4096 ? max : 4096, n = 0;
	char *buf = malloc(cap + 1), *nb;
	ssize_t r = 1;

	*cut = 0;
	while (buf && r > 0 && n < max) {
		if (n == cap) {
			cap = cap * 4 < max ? cap * 4 : max;
			if (!(nb = realloc(buf, cap + 1)))
				break;
			buf = nb;
		}
		r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			r = 1;
		else if (r > 0)
			n += r;
	}
	if (!buf || r < 0) {
		free(buf);
		return NULL;
	}
	if (n == max) {
		char extra;

		*cut = read(fd, &extra, 1) > 0;
	}
	buf[n] = 0;
	*len = n;
	return buf;
}

/* /proc/PID/NAME, bounded; NULL with errno set when it cannot be read. */
static char *read_proc(pid_t pid, const char *name, size_t max, size_t *len, int *cut)
{
	char path[64], *buf;
	int fd, err;

	snprintf(path, sizeof(path), "/proc/%d/%s", pid, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	buf = read_fd(fd, max, len, cut);
	err = errno;
	close(fd);
	errno = err;
	return buf;
}

static int open_in_root(int rootfd, const char *path)
{
	struct open_how how = {
		.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
	};

	return (int)syscall(SYS_openat2, rootfd, path, &how, sizeof(how));
}

/* The trimmed content of a small regular file; 0 or -errno. */
static int read_small(int fd, char *out, size_t max)
{
	struct stat st;
	ssize_t n;
	char *s;

	/* A FIFO or a device (O_NONBLOCK kept the open from hanging) is no file. */
	if (fstat(fd, &st) || !S_ISREG(st.st_mode))
		return -EINVAL;
	n = read(fd, out, max + 1);
	if (n < 0)
		return -errno;
	if ((size_t)n > max)
		return -EFBIG;
	out[n] = 0;
	for (s = out; *s == ' ' || *s == '\t' || *s == '\n' || *s == '\r'; s++)
		;
	memmove(out, s, strlen(s) + 1);
	for (n = strlen(out); n && strchr(" \t\r\n", out[n - 1]); n--)
		out[n - 1] = 0;
	return 0;
}

int k8smeta_read_namespace(pid_t pid, char out[K8SMETA_DNS_LABEL_MAX + 1])
{
	static const char *const paths[] = {
		"var/run/secrets/kubernetes.io/serviceaccount/namespace",
		"run/secrets/kubernetes.io/serviceaccount/namespace"
	};
	char root[64], buf[NS_FILE_MAX + 1];
	int rootfd, fd = -1, err = -ENOENT;

	out[0] = 0;
	snprintf(root, sizeof(root), "/proc/%d/root", pid);
	rootfd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (rootfd < 0)
		return -errno;
	for (size_t i = 0; i < 2 && fd < 0; i++) {
		fd = open_in_root(rootfd, paths[i]);
		err = fd < 0 ? -errno : 0;
	}
	if (fd >= 0) {
		err = read_small(fd, buf, NS_FILE_MAX);
		close(fd);
	}
	close(rootfd);
	if (err)
		return err;
	if (!k8smeta_dns_label(buf, strlen(buf)))
		return -EINVAL;
	strcpy(out, buf);
	return 0;
}

/* The process's start time: with the pid, the identity of one process. */
static int start_time(pid_t pid, uint64_t *ticks)
{
	struct procstat ps;
	int err = procstat_read(pid, &ps);

	if (!err)
		*ticks = ps.start_ticks;
	return err;
}

/* cmdline as written, without an argument the cap cut in two. */
static void service_of(pid_t pid, const char *env, size_t envlen, struct k8smeta *m)
{
	size_t clen = 0, comml = 0;
	int cut = 0, ccut;
	char *cmd = read_proc(pid, "cmdline", K8SMETA_CMDLINE_MAX, &clen, &cut);
	char *comm = read_proc(pid, "comm", 64, &comml, &ccut);

	while (cmd && cut && clen && cmd[clen - 1] != 0)
		clen--;
	if (comm && comml && comm[comml - 1] == '\n')
		comm[comml - 1] = 0;
	m->service_source = k8smeta_service_name(env, envlen, cmd ? cmd : "", cmd ? clen : 0, comm,
						 m->service_name);
	free(cmd);
	free(comm);
}

int k8smeta_read(pid_t pid, struct k8smeta *m)
{
	size_t len = 0, envlen = 0, vl;
	int cut;
	char *cg, *env;
	const char *host;

	memset(m, 0, sizeof(*m));
	cg = read_proc(pid, "cgroup", K8SMETA_CGROUP_MAX, &len, &cut);
	if (!cg && (errno == ENOENT || errno == ESRCH))
		return -ESRCH;
	/* A cut text could end inside a path: better none than a wrong one. */
	if (cg && !cut)
		k8smeta_parse_cgroup(cg, m->container_id, m->pod_uid);
	free(cg);
	/* Unreadable (another user's process without CAP_SYS_PTRACE): empty. */
	env = read_proc(pid, "environ", K8SMETA_ENVIRON_MAX, &envlen, &cut);
	if (m->pod_uid[0]) {
		host = k8smeta_env_find(env ? env : "", env ? envlen : 0, "HOSTNAME", &vl);
		if (host && k8smeta_dns_subdomain(host, vl)) {
			memcpy(m->pod_name, host, vl);
			m->pod_name[vl] = 0;
		}
		k8smeta_read_namespace(pid, m->namespace);
	}
	service_of(pid, env ? env : "", env ? envlen : 0, m);
	free(env);
	m->ns_pid = nspid_read(pid);
	return 0;
}

static char host_name[K8SMETA_DNS_SUBDOMAIN_MAX + 1];
static pthread_once_t host_once = PTHREAD_ONCE_INIT;

static int host_ok(const char *s)
{
	return s && k8smeta_printable(s, strlen(s), K8SMETA_DNS_SUBDOMAIN_MAX) && !strchr(s, ' ');
}

static void read_host_name(void)
{
	const char *env = getenv("PROFILIS_HOST_NAME");
	struct utsname u;

	if (env && k8smeta_dns_subdomain(env, strlen(env)))
		snprintf(host_name, sizeof(host_name), "%s", env);
	else if (!uname(&u) && host_ok(u.nodename))
		snprintf(host_name, sizeof(host_name), "%s", u.nodename);
}

const char *k8smeta_host_name(void)
{
	pthread_once(&host_once, read_host_name);
	return k8smeta_str(host_name);
}

/* --- the cache: direct-mapped by pid, one mutex --- */

struct slot {
	pid_t pid; /* 0: empty */
	uint64_t start, checked_ns;
	struct k8smeta m;
};

struct k8smeta_cache {
	pthread_mutex_t lock;
	unsigned int nslots;
	uint64_t lookups, reads;
	struct slot slot[];
};

struct k8smeta_cache *k8smeta_cache__new(unsigned int slots)
{
	struct k8smeta_cache *c;

	if (!slots || slots > (1u << 20)) {
		errno = EINVAL;
		return NULL;
	}
	c = calloc(1, sizeof(*c) + (size_t)slots * sizeof(struct slot));
	if (!c)
		return NULL;
	pthread_mutex_init(&c->lock, NULL);
	c->nslots = slots;
	return c;
}

/* A fresh read, with the start time before and after it: a pid recycled in
 * between would mix two processes, so that read is done again. */
static int fresh(pid_t pid, uint64_t *start, struct k8smeta *m)
{
	memset(m, 0, sizeof(*m));
	for (int tries = 0; tries < 3; tries++) {
		uint64_t before, after;
		int err;

		if (start_time(pid, &before))
			return -ESRCH;
		if ((err = k8smeta_read(pid, m)))
			return err;
		if (!start_time(pid, &after) && after == before) {
			*start = before;
			return 0;
		}
	}
	memset(m, 0, sizeof(*m));
	return -ESRCH;
}

int k8smeta_cache__get(struct k8smeta_cache *c, pid_t pid, uint64_t now_ns, struct k8smeta *out)
{
	struct slot *s = &c->slot[(unsigned int)pid % c->nslots];
	uint64_t start = 0;
	int have, err;

	if (pid <= 0) {
		memset(out, 0, sizeof(*out));
		return -ESRCH;
	}
	pthread_mutex_lock(&c->lock);
	c->lookups++;
	have = s->pid == pid;
	if (have && now_ns - s->checked_ns < K8SMETA_RECHECK_NS) {
		*out = s->m;
		pthread_mutex_unlock(&c->lock);
		return 0;
	}
	start = s->start;
	pthread_mutex_unlock(&c->lock);
	if (have) {
		uint64_t now_start = 0;
		int gone = start_time(pid, &now_start) != 0;

		/* Gone: the records it left still belong to it; keep the entry. */
		pthread_mutex_lock(&c->lock);
		if (s->pid == pid && s->start == start && (gone || now_start == start)) {
			s->checked_ns = now_ns;
			*out = s->m;
			pthread_mutex_unlock(&c->lock);
			return 0;
		}
		pthread_mutex_unlock(&c->lock);
	}
	err = fresh(pid, &start, out);
	pthread_mutex_lock(&c->lock);
	c->reads++;
	if (!err)
		*s = (struct slot){ .pid = pid, .start = start, .checked_ns = now_ns, .m = *out };
	pthread_mutex_unlock(&c->lock);
	return err;
}

void k8smeta_cache__forget(struct k8smeta_cache *c, pid_t pid)
{
	struct slot *s = &c->slot[(unsigned int)pid % c->nslots];

	pthread_mutex_lock(&c->lock);
	if (s->pid == pid)
		s->pid = 0;
	pthread_mutex_unlock(&c->lock);
}

void k8smeta_cache__stats(struct k8smeta_cache *c, uint64_t *lookups, uint64_t *reads)
{
	pthread_mutex_lock(&c->lock);
	*lookups = c->lookups;
	*reads = c->reads;
	pthread_mutex_unlock(&c->lock);
}

void k8smeta_cache__free(struct k8smeta_cache *c)
{
	if (!c)
		return;
	pthread_mutex_destroy(&c->lock);
	free(c);
}
