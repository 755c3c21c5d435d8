// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Series live in one array (grown by doubling up to the cap) found through
 * an open-addressing table of indexes, rebuilt after an expiry compacts the
 * array.  The renderer copies the array under the lock and formats outside
 * it, so a scrape holds up the pipeline only for one memcpy.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "prom.h"
#include "utf8.h"

const uint64_t prom_bucket_ns[PROM_NBUCKETS] = {
	5000000,   10000000,   25000000,   50000000,   100000000,   250000000,
	500000000, 1000000000, 2000000000, 5000000000, 10000000000,
};
const char *const prom_bucket_le[PROM_NBUCKETS] = {
	"0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.0", "5.0", "10.0",
};

static const char *const methods[] = { "GET",	  "HEAD",    "POST",  "PUT",  "DELETE",
				       "CONNECT", "OPTIONS", "TRACE", "PATCH" };

struct series {
	uint64_t hash;
	uint64_t gone_ns; /* when its process was first seen gone; 0: alive */
	uint32_t pid;
	int status;
	const char *method; /* one of methods[] or PROM_METHOD_OTHER */
	char service[K8SMETA_SERVICE_MAX + 1];
	char route[256];
	char namespace[K8SMETA_DNS_LABEL_MAX + 1];
	char pod[K8SMETA_DNS_SUBDOMAIN_MAX + 1];
	double count, sum_s;
	double buckets[PROM_NBUCKETS]; /* not cumulative; the rest is +Inf */
};

struct prom {
	struct prom_opts o;
	char instance[K8SMETA_DNS_SUBDOMAIN_MAX + 1];
	pthread_mutex_t lock;
	struct series *s;
	size_t n, cap;
	uint32_t *index; /* slot -> series + 1; 0: empty */
	size_t nslots;	 /* a power of two, at least twice max_series */
	uint64_t next_check_ns;
	struct prom_stats st;
};

int prom_bucket(uint64_t dur_ns)
{
	int i = 0;

	while (i < PROM_NBUCKETS && dur_ns > prom_bucket_ns[i])
		i++;
	return i;
}

const char *prom_method(const char *method)
{
	for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (strcmp(method, methods[i]) == 0)
			return methods[i];
	return PROM_METHOD_OTHER;
}

static uint64_t fnv(uint64_t h, const void *data, size_t n)
{
	const unsigned char *p = data;

	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ULL;
	return h;
}

static uint64_t key_hash(const struct series *k)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	h = fnv(h, &k->pid, sizeof(k->pid));
	h = fnv(h, &k->status, sizeof(k->status));
	h = fnv(h, k->method, strlen(k->method) + 1);
	h = fnv(h, k->service, strlen(k->service) + 1);
	h = fnv(h, k->route, strlen(k->route) + 1);
	h = fnv(h, k->namespace, strlen(k->namespace) + 1);
	return fnv(h, k->pod, strlen(k->pod) + 1);
}

static bool same_key(const struct series *a, const struct series *b)
{
	return a->hash == b->hash && a->pid == b->pid && a->status == b->status &&
	       a->method == b->method && !strcmp(a->service, b->service) &&
	       !strcmp(a->route, b->route) && !strcmp(a->namespace, b->namespace) &&
	       !strcmp(a->pod, b->pod);
}

static bool pid_alive(uint32_t pid, void *ctx)
{
	return kill((pid_t)pid, 0) == 0 || errno != ESRCH;
}

struct prom *prom__new(const struct prom_opts *o)
{
	struct prom *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->o = *o;
	if (!p->o.max_series)
		p->o.max_series = PROM_SERIES_MAX;
	if (!p->o.expire_ns)
		p->o.expire_ns = PROM_EXPIRE_NS;
	if (!p->o.alive)
		p->o.alive = pid_alive;
	utf8_copy_cut(p->instance, sizeof(p->instance), o->instance ? o->instance : "");
	for (p->nslots = 64; p->nslots < 2 * p->o.max_series; p->nslots *= 2)
		;
	p->index = calloc(p->nslots, sizeof(*p->index));
	if (!p->index) {
		free(p);
		errno = ENOMEM;
		return NULL;
	}
	pthread_mutex_init(&p->lock, NULL);
	return p;
}

/* The slot of key k: where it is, or the empty slot where it would go. */
static size_t find_slot(const struct prom *p, const struct series *k)
{
	size_t mask = p->nslots - 1, i = k->hash & mask;

	while (p->index[i] && !same_key(&p->s[p->index[i] - 1], k))
		i = (i + 1) & mask;
	return i;
}

static void reindex(struct prom *p)
{
	memset(p->index, 0, p->nslots * sizeof(*p->index));
	for (size_t i = 0; i < p->n; i++)
		p->index[find_slot(p, &p->s[i])] = i + 1;
}

/* The series of key k, added when absent; NULL past the cap or on ENOMEM. */
static struct series *lookup(struct prom *p, const struct series *k)
{
	size_t slot = find_slot(p, k);

	if (p->index[slot])
		return &p->s[p->index[slot] - 1];
	if (p->n == p->o.max_series)
		return NULL;
	if (p->n == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 64;
		struct series *s;

		if (cap > p->o.max_series)
			cap = p->o.max_series;
		s = realloc(p->s, cap * sizeof(*s));
		if (!s)
			return NULL;
		p->s = s;
		p->cap = cap;
	}
	p->s[p->n] = *k;
	p->index[slot] = ++p->n;
	return &p->s[p->n - 1];
}

static void make_key(const struct prom *p, const struct request_record *r, struct series *k)
{
	memset(k, 0, sizeof(*k));
	k->pid = r->pid;
	k->status = r->status >= 100 && r->status <= 999 ? r->status : 0;
	k->method = prom_method(r->has_method ? r->method : "");
	utf8_copy_cut(k->service, sizeof(k->service), r->meta.service_name);
	/* Never the raw path: a scanner of random paths must not make series. */
	utf8_copy_cut(k->route, sizeof(k->route), r->route_matched ? r->route : REQ_UNMATCHED);
	if (p->o.k8s_labels) {
		utf8_copy_cut(k->namespace, sizeof(k->namespace), r->meta.namespace);
		utf8_copy_cut(k->pod, sizeof(k->pod), r->meta.pod_name);
	}
	k->hash = key_hash(k);
}

void prom__push(struct prom *p, const struct request_record *r)
{
	double w = r->sample_rate > 0 ? 1.0 / r->sample_rate : 1.0;
	struct series k, *s;
	int b;

	if (!p)
		return;
	make_key(p, r, &k);
	b = prom_bucket(r->dur_ns);
	pthread_mutex_lock(&p->lock);
	s = lookup(p, &k);
	if (s) {
		s->gone_ns = 0;
		s->count += w;
		s->sum_s += w * (r->dur_ns / 1e9);
		if (b < PROM_NBUCKETS)
			s->buckets[b] += w;
	} else {
		p->st.dropped++;
	}
	pthread_mutex_unlock(&p->lock);
}

static int cmp_pid(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* Marks series whose process is gone (pids sorted, alive[] alike); true
 * when some have been gone long enough to expire. */
static bool mark_gone(struct prom *p, const uint32_t *pids, const bool *alive, size_t npids,
		      uint64_t now)
{
	bool expire = false;

	for (size_t i = 0; i < p->n; i++) {
		struct series *s = &p->s[i];
		const uint32_t *at = bsearch(&s->pid, pids, npids, sizeof(*pids), cmp_pid);

		if (!at || alive[at - pids]) /* new since the pids were read: alive */
			s->gone_ns = 0;
		else if (!s->gone_ns)
			s->gone_ns = now;
		expire |= s->gone_ns && now - s->gone_ns >= p->o.expire_ns;
	}
	return expire;
}

static void expire(struct prom *p, uint64_t now)
{
	size_t kept = 0;

	for (size_t i = 0; i < p->n; i++) {
		struct series *s = &p->s[i];

		if (s->gone_ns && now - s->gone_ns >= p->o.expire_ns) {
			p->st.expired++;
			continue;
		}
		if (kept != i)
			p->s[kept] = *s;
		kept++;
	}
	p->n = kept;
	reindex(p);
}

/* The distinct pids of the series, sorted, read under the lock; their
 * liveness is checked outside it. */
static size_t distinct_pids(struct prom *p, uint32_t **out)
{
	uint32_t *pids;
	size_t n = 0, total;

	pthread_mutex_lock(&p->lock);
	total = p->n;
	pids = malloc((total ? total : 1) * sizeof(*pids));
	for (size_t i = 0; pids && i < total; i++)
		pids[i] = p->s[i].pid;
	pthread_mutex_unlock(&p->lock);
	*out = pids;
	if (!pids)
		return 0;
	qsort(pids, total, sizeof(*pids), cmp_pid);
	for (size_t i = 0; i < total; i++)
		if (!n || pids[n - 1] != pids[i])
			pids[n++] = pids[i];
	return n;
}

void prom__tick(struct prom *p, uint64_t now)
{
	uint32_t *pids;
	bool *alive;
	size_t n;

	if (!p || now < p->next_check_ns)
		return;
	p->next_check_ns = now + PROM_CHECK_NS;
	n = distinct_pids(p, &pids);
	alive = calloc(n ? n : 1, sizeof(*alive));
	if (!pids || !alive)
		goto cleanup;
	for (size_t i = 0; i < n; i++)
		alive[i] = p->o.alive(pids[i], p->o.alive_ctx);
	pthread_mutex_lock(&p->lock);
	if (mark_gone(p, pids, alive, n, now))
		expire(p, now);
	pthread_mutex_unlock(&p->lock);
cleanup:
	free(alive);
	free(pids);
}

static void labels(struct prom_buf *b, const struct prom *p, const struct series *s)
{
	char pid[16], status[16];

	snprintf(pid, sizeof(pid), "%u", s->pid);
	snprintf(status, sizeof(status), "%d", s->status);
	prom_label(b, "service", s->service, true);
	prom_label(b, "instance", p->instance, false);
	prom_label(b, "worker", pid, false);
	prom_label(b, "route", s->route, false);
	prom_label(b, "status", s->status ? status : "unknown", false);
	prom_label(b, "method", s->method, false);
	if (p->o.k8s_labels) {
		prom_label(b, "namespace", s->namespace, false);
		prom_label(b, "pod", s->pod, false);
	}
}

static void histogram(struct prom_buf *b, const struct prom *p, const struct series *s)
{
	const char *name = "profilis_http_request_duration_seconds";
	char num[32];
	double cum = 0;

	for (int i = 0; i <= PROM_NBUCKETS; i++) {
		cum += i < PROM_NBUCKETS ? s->buckets[i] : 0;
		prom_format_value(i < PROM_NBUCKETS ? cum : s->count, num);
		prom_buf_printf(b, "%s_bucket{", name);
		labels(b, p, s);
		prom_buf_printf(b, ",le=\"%s\"} %s\n",
				i < PROM_NBUCKETS ? prom_bucket_le[i] : "+Inf", num);
	}
	prom_format_value(s->sum_s, num);
	prom_buf_printf(b, "%s_sum{", name);
	labels(b, p, s);
	prom_buf_printf(b, "} %s\n", num);
	prom_format_value(s->count, num);
	prom_buf_printf(b, "%s_count{", name);
	labels(b, p, s);
	prom_buf_printf(b, "} %s\n", num);
}

static void render_requests(struct prom_buf *b, const struct prom *p, const struct series *s,
			    size_t n)
{
	char num[32];

	prom_family(b, "profilis_http_requests_total", "counter",
		    "Total HTTP requests (weighted by 1/--sample), since profilis-bpf started");
	for (size_t i = 0; i < n; i++) {
		prom_format_value(s[i].count, num);
		prom_buf_puts(b, "profilis_http_requests_total{");
		labels(b, p, &s[i]);
		prom_buf_printf(b, "} %s\n", num);
	}
	prom_family(b, "profilis_http_request_duration_seconds", "histogram",
		    "HTTP request duration in seconds, since profilis-bpf started");
	for (size_t i = 0; i < n; i++)
		histogram(b, p, &s[i]);
}

char *prom__render(struct prom *p, const struct prom_health *h, size_t *len)
{
	struct prom_buf b = { 0 };
	struct prom_stats st;
	struct series *copy;
	size_t n;

	pthread_mutex_lock(&p->lock);
	n = p->n;
	copy = malloc((n ? n : 1) * sizeof(*copy));
	if (copy)
		memcpy(copy, p->s, n * sizeof(*copy));
	pthread_mutex_unlock(&p->lock);
	if (!copy) {
		errno = ENOMEM;
		return NULL;
	}
	prom__stats(p, &st);
	render_requests(&b, p, copy, n);
	if (h)
		prom_render_health(&b, h, &st);
	free(copy);
	if (b.oom || !b.s) {
		prom_buf_free(&b);
		errno = ENOMEM;
		return NULL;
	}
	*len = b.len;
	return b.s;
}

void prom__stats(struct prom *p, struct prom_stats *out)
{
	pthread_mutex_lock(&p->lock);
	*out = p->st;
	out->series = p->n;
	out->bytes = sizeof(*p) + p->cap * sizeof(*p->s) + p->nslots * sizeof(*p->index);
	pthread_mutex_unlock(&p->lock);
}

void prom__free(struct prom *p)
{
	if (!p)
		return;
	pthread_mutex_destroy(&p->lock);
	free(p->s);
	free(p->index);
	free(p);
}
