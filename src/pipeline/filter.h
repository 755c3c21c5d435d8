/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Request exclusions (--exclude-route).  Plain prefixes that fit go to BPF,
 * where an excluded request costs no ring-buffer traffic; regular
 * expressions ("re:...") and prefixes too long or too many for BPF are
 * checked here, on the decoded path.
 */
#ifndef PROFILIS_FILTER_H
#define PROFILIS_FILTER_H

#include <stdbool.h>
#include <stdint.h>
#include "profilis/abi.h"

struct filter;

/* NULL with errno set (EINVAL: a bad regex, already rejected by cli). */
struct filter *filter__new(const char *const *patterns, int n);
/* Fills the BPF side: sampling threshold, keep_errors, prefixes that fit. */
void filter__bpf_config(const struct filter *f, double sample, bool keep_errors,
			struct pbpf_filter_cfg *out);
/* Whether a path is excluded by a pattern that BPF does not check. */
bool filter__excluded(struct filter *f, const char *path);
uint64_t filter__excluded_count(const struct filter *f);
void filter__free(struct filter *f);

#endif
