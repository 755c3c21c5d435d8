// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * A reported exec is retried with a growing pause (10 ms doubling to 200 ms)
 * until its interpreter resolves or the deadline passes: 3 s for a process
 * whose executable is named like python (the dynamic loader maps libpython
 * and the interpreter initializes in that time), 1 s for any other (uWSGI's
 * python plugin is loaded early by dlopen).  Most execs on a node are not
 * Python, so a failed try costs one read of /proc/PID/maps.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include "log.h"
#include "procmaps.h"
#include "procs.h"

#define PENDING_MAX 4096
#define RETRY_FIRST_NS 10000000LL
#define RETRY_MAX_NS 200000000LL
#define DEADLINE_PYTHON_NS 3000000000LL
#define DEADLINE_OTHER_NS 1000000000LL

struct pending {
	uint32_t pid;
	bool discovered;     /* not in the traced set when reported (--all) */
	int64_t next_try_ns; /* 0: at the next tick */
	int64_t pause_ns;
	int64_t deadline_ns; /* 0: set at the first try */
};

struct procs {
	struct procs_opts o;
	struct pending *pending;
	size_t npending, cap;
	uint64_t execs_seen;
	struct procs_stats st;
};

struct procs *procs__new(const struct procs_opts *o)
{
	struct procs *p = calloc(1, sizeof(*p));

	if (p)
		p->o = *o;
	return p;
}

void procs__free(struct procs *p)
{
	if (!p)
		return;
	free(p->pending);
	free(p);
}

/* The traced-set entry for a resolved process: its descriptor, registered. */
static int describe(struct procs *p, const struct interp *ip, struct pbpf_proc_desc *out)
{
	struct interp_desc d;
	long id;

	memset(&d, 0, sizeof(d));
	memcpy(&d.off, &ip->off, sizeof(d.off));
	d.code_type = ip->t.code_type_addr;
	id = interps__add(p->o.interps, &d);
	if (id < 0)
		return id;
	memset(out, 0, sizeof(*out));
	out->desc_id = id;
	memcpy(&out->py, &ip->off, sizeof(out->py));
	/* Without the hashes its dicts are scanned: slower, as right. */
	out->hashes_known = interp_name_hashes(ip, (int64_t *)out->name_hash) == 0;
	return 0;
}

static int lookup(struct procs *p, uint32_t pid, struct pbpf_proc_desc *out)
{
	return bpf_map_lookup_elem(p->o.map_fd, &pid, out) ? -errno : 0;
}

/* Resolves `pid` and puts the uprobes on its interpreter. */
static int resolve(struct procs *p, pid_t pid, struct interp *ip, char *msg, size_t msglen)
{
	int err = interp_resolve(pid, ip, msg, msglen);

	return err ? err : p->o.probe(p->o.probe_ctx, &ip->t, msg, msglen);
}

/* Writes `pid`'s entry: resolved on its own, or, when it is not a CPython we
 * read (a shell between a master and its workers), one that only makes its
 * children traced.  BPF_NOEXIST: an entry the fork hook wrote is a copy of
 * the parent's and already right. */
static int add_member(struct procs *p, pid_t pid, const struct interp *root)
{
	struct pbpf_proc_desc desc;
	struct interp *ip = NULL;
	char msg[512];
	int err;

	if (!lookup(p, pid, &desc))
		return 0;
	if (pid == root->t.pid) {
		err = describe(p, root, &desc);
	} else if (!(ip = malloc(sizeof(*ip)))) {
		return -ENOMEM;
	} else if (resolve(p, pid, ip, msg, sizeof(msg)) == 0) {
		err = describe(p, ip, &desc);
	} else {
		p_dbg("PID %d in the tree of PID %d is not traced itself (%s); its children are",
		      pid, root->t.pid, msg);
		err = describe(p, root, &desc);
		desc.flags = PBPF_PROC_NOT_PYTHON;
	}
	free(ip);
	if (!err && bpf_map_update_elem(p->o.map_fd, &pid, &desc, BPF_NOEXIST) && errno != EEXIST)
		err = -errno;
	return err;
}

int procs__trace_tree(struct procs *p, const struct interp *root, char *msg, size_t msglen)
{
	pid_t *pids = calloc(p->o.max_procs, sizeof(*pids));
	int n = 0, err;

	if (!pids)
		return -ENOMEM;
	err = p->o.probe(p->o.probe_ctx, &root->t, msg, msglen);
	if (err) {
		free(pids);
		return err;
	}
	/* Twice: a child forked between the fork hook's attach and the first
	 * scan is in the second. */
	for (int pass = 0; pass < 2 && !err; pass++) {
		n = target_process_tree(root->t.pid, pids, p->o.max_procs);
		for (int i = 0; i < n && !err; i++)
			err = add_member(p, pids[i], root);
	}
	free(pids);
	if (err == -E2BIG) {
		p_warn("the traced processes are more than --max-procs %u: the tree of PID %d is "
		       "not traced whole",
		       p->o.max_procs, root->t.pid);
		err = 0;
	}
	if (err)
		snprintf(msg, msglen, "cannot seed the traced process set with PID %d: %s",
			 root->t.pid, strerror(-err));
	p_dbg("tracing %d process(es) in the tree of PID %d", n, root->t.pid);
	return err;
}

/* --all: a resolved process the selectors want goes into the set. */
static void admit(struct procs *p, const struct interp *ip)
{
	struct pbpf_proc_desc desc;
	uint32_t pid = ip->t.pid;

	if (p->o.select && !p->o.select(p->o.select_ctx, ip)) {
		p->st.not_selected++;
		return;
	}
	if (describe(p, ip, &desc))
		return;
	if (bpf_map_update_elem(p->o.map_fd, &pid, &desc, BPF_NOEXIST) == 0) {
		p->st.discovered++;
		p_dbg("tracing PID %d (%s, CPython %s)", pid, ip->t.comm, ip->t.py_version);
	} else if (errno == E2BIG) {
		if (!p->st.set_full++)
			p_warn("the traced set is full (--max-procs %u): PID %d and later CPython "
			       "processes are not traced",
			       p->o.max_procs, pid);
	}
}

static void report_unsupported(struct procs *p, const char *msg)
{
	p->st.unsupported++;
	p_info("%s; not traced", msg);
}

int procs__discover(struct procs *p)
{
	struct interp *ip = malloc(sizeof(*ip));
	uint64_t before = p->st.discovered;
	struct pbpf_proc_desc desc;
	struct dirent *de;
	char msg[512];
	DIR *d;

	if (!ip)
		return -ENOMEM;
	d = opendir("/proc");
	if (!d) {
		free(ip);
		return -errno;
	}
	while ((de = readdir(d))) {
		long pid = isdigit((unsigned char)de->d_name[0]) ? strtol(de->d_name, NULL, 10) : 0;
		int err;

		if (pid <= 0 || pid == getpid() || !lookup(p, pid, &desc))
			continue;
		err = resolve(p, pid, ip, msg, sizeof(msg));
		if (err == -ENOTSUP)
			report_unsupported(p, msg);
		else if (!err && ip->t.pid == pid)
			admit(p, ip);
	}
	closedir(d);
	free(ip);
	return p->st.discovered - before;
}

void procs__exec_seen(struct procs *p, uint32_t pid)
{
	struct pbpf_proc_desc desc;
	bool traced = !lookup(p, pid, &desc);

	if (!traced && !p->o.discover)
		return;
	for (size_t i = 0; i < p->npending; i++)
		if (p->pending[i].pid == pid)
			return;
	if (p->npending == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 64;
		struct pending *n = cap <= PENDING_MAX ? realloc(p->pending, cap * sizeof(*n))
						       : NULL;

		if (!n) {
			/* A traced one is found again by its mark; a new one is lost. */
			p->st.pending_overflow++;
			return;
		}
		p->pending = n;
		p->cap = cap;
	}
	p->pending[p->npending++] = (struct pending){ .pid = pid, .discovered = !traced };
}

/* Exec reports can be lost (ring buffer full): when the kernel's count moved
 * past what was handled, the traced set is scanned for marked entries. */
static void scan_execed(struct procs *p, uint64_t execs)
{
	struct pbpf_proc_desc desc;
	uint32_t key, next, *prev = NULL;

	if (execs == p->execs_seen)
		return;
	p->execs_seen = execs;
	while (bpf_map_get_next_key(p->o.map_fd, prev, &next) == 0) {
		key = next;
		prev = &key;
		if (!lookup(p, key, &desc) && (desc.flags & PBPF_PROC_EXECED))
			procs__exec_seen(p, key);
	}
}

static bool python_named(pid_t pid)
{
	char path[64], exe[PATH_MAX];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/exe", pid);
	n = readlink(path, exe, sizeof(exe) - 1);
	if (n <= 0)
		return false;
	exe[n] = 0;
	return procmaps_python_kind(exe) != 0;
}

/* A traced process that exec'd: its new descriptor, or "not Python" once
 * its time is up (its children are still traced). */
static void rewrite(struct procs *p, const struct pending *pe, const struct interp *ip, int err,
		    const char *msg)
{
	struct pbpf_proc_desc desc;
	uint32_t pid = pe->pid;

	if (lookup(p, pid, &desc) || !(desc.flags & PBPF_PROC_EXECED))
		return; /* gone, or resolved already */
	if (!err && !describe(p, ip, &desc)) {
		p->st.exec_resolved++;
		p_dbg("PID %d exec'd CPython %s (%s): traced again", pid, ip->t.py_version,
		      ip->t.interp);
	} else {
		p->st.exec_not_python++;
		p_dbg("PID %d exec'd something not traced (%s); its children still are", pid, msg);
		desc.flags = PBPF_PROC_NOT_PYTHON;
	}
	/* BPF_EXIST: a process that exited meanwhile is not brought back. */
	bpf_map_update_elem(p->o.map_fd, &pid, &desc, BPF_EXIST);
}

/* One try; true when the report is done with. */
static bool try_one(struct procs *p, struct pending *pe, struct interp *ip, int64_t now)
{
	struct pbpf_proc_desc desc;
	char msg[512] = "";
	int err;

	if (!pe->discovered && (lookup(p, pe->pid, &desc) || !(desc.flags & PBPF_PROC_EXECED)))
		return true;
	if (pe->discovered && !lookup(p, pe->pid, &desc))
		return true; /* traced meanwhile (a -p tree's fork) */
	if (!pe->deadline_ns)
		pe->deadline_ns =
			now + (python_named(pe->pid) ? DEADLINE_PYTHON_NS : DEADLINE_OTHER_NS);
	err = resolve(p, pe->pid, ip, msg, sizeof(msg));
	if (err == -ESRCH) {
		p->st.exec_gone += !pe->discovered;
		return true;
	}
	if (err && err != -ENOTSUP && now < pe->deadline_ns) {
		pe->pause_ns = pe->pause_ns ? pe->pause_ns * 2 : RETRY_FIRST_NS;
		if (pe->pause_ns > RETRY_MAX_NS)
			pe->pause_ns = RETRY_MAX_NS;
		pe->next_try_ns = now + pe->pause_ns;
		return false; /* its interpreter may not be mapped or initialized yet */
	}
	if (err == -ENOTSUP)
		report_unsupported(p, msg);
	if (!pe->discovered)
		rewrite(p, pe, ip, err, msg);
	else if (!err)
		admit(p, ip);
	return true;
}

void procs__retrack(struct procs *p, int64_t now, uint64_t execs)
{
	struct interp *ip;
	size_t w = 0;

	scan_execed(p, execs);
	if (!p->npending || !(ip = malloc(sizeof(*ip))))
		return;
	for (size_t i = 0; i < p->npending; i++) {
		struct pending *pe = &p->pending[i];

		if (now >= pe->next_try_ns && try_one(p, pe, ip, now))
			continue;
		p->pending[w++] = *pe;
	}
	p->npending = w;
	free(ip);
}

bool procs__busy(const struct procs *p)
{
	return p->npending > 0;
}

void procs__stats(const struct procs *p, struct procs_stats *out)
{
	*out = p->st;
}
