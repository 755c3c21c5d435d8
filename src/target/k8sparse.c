// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The pure half of k8smeta.h: the /proc/PID/cgroup parser (container id and
 * pod uid by the runtimes' and cgroup drivers' naming rules), environment
 * lookups, the DNS-1123 and printable checks.  No I/O, so every rule is
 * unit-tested on real-world texts.  Strings from the target are handled as
 * (pointer, length) and only copied out after they pass their check.
 */
#include <errno.h>
#include <string.h>
#include "k8smeta.h"

#define MAX_COMPONENTS 128
#define ID_LEN K8SMETA_CONTAINER_ID_LEN

struct span {
	const char *s;
	size_t n;
};

static int is_lhex(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

static int span_is(struct span c, const char *lit)
{
	return c.n == strlen(lit) && !memcmp(c.s, lit, c.n);
}

static int has_prefix(struct span c, const char *lit)
{
	return c.n >= strlen(lit) && !memcmp(c.s, lit, strlen(lit));
}

static int has_suffix(struct span c, const char *lit)
{
	size_t l = strlen(lit);

	return c.n >= l && !memcmp(c.s + c.n - l, lit, l);
}

/* A pod uid as a cgroup name writes it: a lowercase UUID with '-' (cgroupfs)
 * or '_' (systemd: '-' separates slice levels) throughout, or the 32 hex
 * digits of a static pod's hash.  Written to out with dashes. */
static int pod_uid(struct span u, char out[K8SMETA_POD_UID_MAX + 1])
{
	char sep;

	if (u.n == 32 && is_lhex(u.s, 32)) {
		memcpy(out, u.s, 32);
		out[32] = 0;
		return 1;
	}
	if (u.n != 36 || (u.s[8] != '-' && u.s[8] != '_'))
		return 0;
	sep = u.s[8];
	for (size_t i = 0; i < 36; i++) {
		int dash = i == 8 || i == 13 || i == 18 || i == 23;

		if (dash ? u.s[i] != sep : !is_lhex(u.s + i, 1))
			return 0;
		out[i] = dash ? '-' : u.s[i];
	}
	out[36] = 0;
	return 1;
}

/* systemd driver: "[PREFIX-]kubepods[-besteffort|-burstable]-pod<UID>.slice". */
static int systemd_pod(struct span c, char uid[K8SMETA_POD_UID_MAX + 1])
{
	static const char *const qos[] = { "kubepods", "kubepods-besteffort",
					   "kubepods-burstable" };
	struct span body;
	const char *pod = NULL;

	if (!has_suffix(c, ".slice"))
		return 0;
	body = (struct span){ c.s, c.n - strlen(".slice") };
	for (size_t i = 0; i + 4 <= body.n; i++)
		if (!memcmp(body.s + i, "-pod", 4))
			pod = body.s + i; /* the last one: the uid has none */
	if (!pod)
		return 0;
	for (size_t q = 0; q < 3; q++) {
		struct span pre = { body.s, (size_t)(pod - body.s) };

		if (has_suffix(pre, qos[q]) &&
		    (pre.n == strlen(qos[q]) || pre.s[pre.n - strlen(qos[q]) - 1] == '-'))
			return pod_uid((struct span){ pod + 4, body.n - (pre.n + 4) }, uid);
	}
	return 0;
}

/* cgroupfs driver: "pod<UID>" right below kubepods or kubepods/<qos>. */
static int cgroupfs_pod(const struct span *c, int i, char uid[K8SMETA_POD_UID_MAX + 1])
{
	int below = i >= 1 && span_is(c[i - 1], "kubepods");

	if (!below && i >= 2 && span_is(c[i - 2], "kubepods"))
		below = span_is(c[i - 1], "besteffort") || span_is(c[i - 1], "burstable");
	return below && has_prefix(c[i], "pod") &&
	       pod_uid((struct span){ c[i].s + 3, c[i].n - 3 }, uid);
}

static int any_pod(const struct span *c, int i, char uid[K8SMETA_POD_UID_MAX + 1])
{
	return i >= 0 && (systemd_pod(c[i], uid) || cgroupfs_pod(c, i, uid));
}

static int copy_id(const char *s, char id[ID_LEN + 1])
{
	if (!is_lhex(s, ID_LEN))
		return 0;
	memcpy(id, s, ID_LEN);
	id[ID_LEN] = 0;
	return 1;
}

/* "PODSLICE:RUNTIME:ID", one component holding both. */
static int colon_form(struct span c, char id[ID_LEN + 1], char uid[K8SMETA_POD_UID_MAX + 1])
{
	static const char *const rt[] = { ":cri-containerd:", ":crio:", ":docker:" };

	if (c.n <= ID_LEN)
		return 0;
	for (size_t r = 0; r < 3; r++) {
		size_t l = strlen(rt[r]);
		struct span slice = { c.s, c.n - ID_LEN - l };

		if (c.n > ID_LEN + l && !memcmp(c.s + slice.n, rt[r], l) &&
		    copy_id(c.s + c.n - ID_LEN, id)) {
			if (!systemd_pod(slice, uid))
				uid[0] = 0;
			return 1;
		}
	}
	return 0;
}

/* Whether component i names a container; fills id and, from the component
 * above it, the pod uid. */
static int container_at(const struct span *c, int i, char id[ID_LEN + 1],
			char uid[K8SMETA_POD_UID_MAX + 1])
{
	static const char *const scopes[] = { "cri-containerd-", "crio-", "docker-", "libpod-" };
	struct span x = c[i];
	int ok = 0;

	if (colon_form(x, id, uid))
		return 1;
	for (size_t k = 0; k < 4 && !ok; k++)
		ok = x.n == strlen(scopes[k]) + ID_LEN + strlen(".scope") &&
		     has_prefix(x, scopes[k]) && has_suffix(x, ".scope") &&
		     copy_id(x.s + strlen(scopes[k]), id);
	if (!ok && i >= 1) {
		char tmp[K8SMETA_POD_UID_MAX + 1];
		int under_pod = cgroupfs_pod(c, i - 1, tmp);

		if (x.n == ID_LEN)
			ok = (under_pod || span_is(c[i - 1], "docker")) && copy_id(x.s, id);
		else if (x.n == strlen("crio-") + ID_LEN && has_prefix(x, "crio-"))
			ok = under_pod && copy_id(x.s + strlen("crio-"), id);
	}
	if (ok && !any_pod(c, i - 1, uid))
		uid[0] = 0;
	return ok;
}

/* Splits a cgroup path into components; leading ".." (a path outside the
 * reader's cgroup namespace) are dropped.  -1 when it is not a plain path. */
static int split_path(struct span path, struct span *c)
{
	int n = 0;

	for (size_t i = 0; i < path.n;) {
		size_t j = i;

		while (j < path.n && path.s[j] != '/')
			j++;
		if (j > i) {
			struct span part = { path.s + i, j - i };

			if (span_is(part, "..") && n > 0)
				return -1;
			if (!span_is(part, "..") && !span_is(part, ".")) {
				if (n == MAX_COMPONENTS)
					return -1;
				c[n++] = part;
			}
		}
		i = j + 1;
	}
	return n;
}

static void parse_path(struct span path, char id[ID_LEN + 1], char uid[K8SMETA_POD_UID_MAX + 1])
{
	struct span c[MAX_COMPONENTS];
	int n = split_path(path, c);

	id[0] = uid[0] = 0;
	if (n <= 0 || path.s[0] != '/')
		return;
	/* The innermost container wins: a kind node's pods run in a container. */
	for (int i = n - 1; i >= 0; i--)
		if (container_at(c, i, id, uid))
			return;
	id[0] = 0;
	if (!any_pod(c, n - 1, uid))
		uid[0] = 0;
}

static int is_digits(const char *s, const char *end)
{
	if (s == end)
		return 0;
	for (; s < end; s++)
		if (*s < '0' || *s > '9')
			return 0;
	return 1;
}

/* Keeps what a line adds; -1 when it contradicts what earlier lines said. */
static int merge(char *have, const char *got)
{
	if (!got[0])
		return 0;
	if (have[0] && strcmp(have, got))
		return -1;
	strcpy(have, got);
	return 0;
}

int k8smeta_parse_cgroup(const char *text, char container_id[K8SMETA_CONTAINER_ID_LEN + 1],
			 char pod_uid[K8SMETA_POD_UID_MAX + 1])
{
	container_id[0] = pod_uid[0] = 0;
	for (const char *line = text; line && *line;) {
		const char *nl = strchr(line, '\n'), *end = nl ? nl : line + strlen(line);
		const char *c1 = memchr(line, ':', end - line), *c2, *line_start = line;
		char id[ID_LEN + 1], uid[K8SMETA_POD_UID_MAX + 1];

		line = nl ? nl + 1 : NULL;
		/* "hierarchy-id:controllers:path"; the path may hold ':' itself. */
		if (!c1 || !is_digits(line_start, c1) || !(c2 = memchr(c1 + 1, ':', end - c1 - 1)))
			continue;
		parse_path((struct span){ c2 + 1, (size_t)(end - c2 - 1) }, id, uid);
		if (merge(container_id, id) || merge(pod_uid, uid)) {
			container_id[0] = pod_uid[0] = 0;
			return -EINVAL;
		}
	}
	return container_id[0] || pod_uid[0] ? 0 : -ENOENT;
}

const char *k8smeta_env_find(const char *env, size_t len, const char *key, size_t *vlen)
{
	size_t kl = strlen(key);

	for (const char *p = env, *end = env + len; p < end;) {
		const char *nul = memchr(p, 0, end - p);

		if (!nul)
			break; /* a cut entry: its value is not known */
		if ((size_t)(nul - p) > kl && !memcmp(p, key, kl) && p[kl] == '=') {
			*vlen = nul - p - kl - 1;
			return p + kl + 1;
		}
		p = nul + 1;
	}
	return NULL;
}

static int dns_char(char ch, int dot)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' ||
	       (dot && ch == '.');
}

static int alnum_lower(char ch)
{
	return dns_char(ch, 0) && ch != '-';
}

int k8smeta_dns_label(const char *s, size_t len)
{
	if (len < 1 || len > K8SMETA_DNS_LABEL_MAX || !alnum_lower(s[0]) ||
	    !alnum_lower(s[len - 1]))
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!dns_char(s[i], 0))
			return 0;
	return 1;
}

int k8smeta_dns_subdomain(const char *s, size_t len)
{
	size_t start = 0;

	if (len < 1 || len > K8SMETA_DNS_SUBDOMAIN_MAX)
		return 0;
	/* Labels between dots, each alphanumeric at both ends. */
	for (size_t i = 0; i <= len; i++) {
		if (i < len && s[i] != '.') {
			if (!dns_char(s[i], 0))
				return 0;
			continue;
		}
		if (i == start || !alnum_lower(s[start]) || !alnum_lower(s[i - 1]))
			return 0;
		start = i + 1;
	}
	return 1;
}

int k8smeta_printable(const char *s, size_t len, size_t max)
{
	if (len < 1 || len > max || s[0] == ' ' || s[len - 1] == ' ')
		return 0;
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return 0;
	return 1;
}
