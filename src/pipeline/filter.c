// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Splits exclusion patterns between the kernel and userspace.  A prefix is
 * matched against the raw WSGI path bytes in BPF; since a valid UTF-8 path
 * decodes to the same bytes, the userspace check on the decoded path agrees.
 */
#include <errno.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>
#include "filter.h"

struct pattern {
	bool is_regex;
	bool in_bpf;
	const char *prefix;
	size_t len;
	regex_t re;
};

struct filter {
	struct pattern *p;
	int n;
	uint64_t excluded;
};

struct filter *filter__new(const char *const *patterns, int n)
{
	struct filter *f = calloc(1, sizeof(*f));
	int in_bpf = 0;

	if (!f || (n && !(f->p = calloc(n, sizeof(*f->p))))) {
		free(f);
		errno = ENOMEM;
		return NULL;
	}
	for (int i = 0; i < n; i++, f->n++) {
		struct pattern *p = &f->p[i];

		if (strncmp(patterns[i], "re:", 3) == 0) {
			p->is_regex = true;
			if (regcomp(&p->re, patterns[i] + 3, REG_EXTENDED | REG_NOSUB)) {
				filter__free(f);
				errno = EINVAL;
				return NULL;
			}
			continue;
		}
		p->prefix = patterns[i];
		p->len = strlen(patterns[i]);
		p->in_bpf = p->len <= PBPF_PREFIX_BYTES && in_bpf < PBPF_PREFIX_MAX;
		in_bpf += p->in_bpf;
	}
	return f;
}

void filter__bpf_config(const struct filter *f, double sample, bool keep_errors,
			struct pbpf_filter_cfg *out)
{
	memset(out, 0, sizeof(*out));
	/* Keep a request when prandom_u32 < rate * 2^32; 2^32 keeps all. */
	out->sample_threshold = sample >= 1.0 ? 1ULL << 32 : (uint64_t)(sample * 4294967296.0);
	out->keep_errors = keep_errors;
	for (int i = 0; i < f->n; i++) {
		const struct pattern *p = &f->p[i];
		uint32_t k = out->n_prefixes;

		if (!p->in_bpf)
			continue;
		out->prefix_len[k] = p->len;
		memcpy(out->prefix[k], p->prefix, p->len);
		out->n_prefixes++;
	}
}

bool filter__excluded(struct filter *f, const char *path)
{
	for (int i = 0; i < f->n; i++) {
		const struct pattern *p = &f->p[i];
		bool hit;

		if (p->in_bpf)
			continue;
		hit = p->is_regex ? regexec(&p->re, path, 0, NULL, 0) == 0
				  : strncmp(path, p->prefix, p->len) == 0;
		if (hit) {
			f->excluded++;
			return true;
		}
	}
	return false;
}

uint64_t filter__excluded_count(const struct filter *f)
{
	return f->excluded;
}

void filter__free(struct filter *f)
{
	if (!f)
		return;
	for (int i = 0; i < f->n; i++)
		if (f->p[i].is_regex)
			regfree(&f->p[i].re);
	free(f->p);
	free(f);
}
