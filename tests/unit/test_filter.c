// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Exclusion patterns split between BPF and userspace: the sampling threshold
 * in units of 2^-32, the first eight prefixes of at most 64 bytes copied
 * into the BPF table in order with zero padding, and everything else (longer
 * or later prefixes, "re:" expressions) checked and counted by
 * filter__excluded.  A seeded random check confirms the two halves together
 * exclude exactly the paths some pattern matches, with nothing counted twice.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "filter.h"

static struct filter *new_filter(const char *const *p, int n)
{
	struct filter *f = filter__new(p, n);

	cr_assert_not_null(f, "filter__new: %s", strerror(errno));
	return f;
}

/* What the BPF program does with the table. */
static bool bpf_excludes(const struct pbpf_filter_cfg *cfg, const char *path)
{
	size_t len = strlen(path);

	for (uint32_t i = 0; i < cfg->n_prefixes; i++)
		if (cfg->prefix_len[i] <= len &&
		    memcmp(cfg->prefix[i], path, cfg->prefix_len[i]) == 0)
			return true;
	return false;
}

static void assert_slot(const struct pbpf_filter_cfg *cfg, int k, const char *prefix)
{
	const unsigned char *b = (const unsigned char *)cfg->prefix[k];
	size_t len = strlen(prefix);

	cr_assert_eq(cfg->prefix_len[k], len, "slot %d length", k);
	cr_assert_eq(memcmp(b, prefix, len), 0, "slot %d bytes", k);
	for (size_t i = len; i < PBPF_PREFIX_BYTES; i++)
		cr_assert_eq(b[i], 0, "slot %d byte %zu not zero", k, i);
}

Test(filter, sampling_threshold_is_rate_times_2_to_the_32)
{
	struct filter *f = new_filter(NULL, 0);
	struct pbpf_filter_cfg cfg;

	filter__bpf_config(f, 1.0, true, &cfg);
	cr_assert_eq(cfg.sample_threshold, 1ULL << 32);
	cr_assert_eq(cfg.keep_errors, 1);
	cr_assert_eq(cfg.n_prefixes, 0);
	filter__bpf_config(f, 0.1, false, &cfg);
	cr_assert_eq(cfg.sample_threshold, 429496729ULL);
	cr_assert_eq(cfg.keep_errors, 0);
	filter__bpf_config(f, 0.5, true, &cfg);
	cr_assert_eq(cfg.sample_threshold, 2147483648ULL);
	filter__bpf_config(f, 0.0, true, &cfg);
	cr_assert_eq(cfg.sample_threshold, 0);
	/* The smallest non-zero rate the kernel's u32 coin can express. */
	filter__bpf_config(f, 1.0 / 4294967296.0, true, &cfg);
	cr_assert_eq(cfg.sample_threshold, 1);
	filter__free(f);
}

Test(filter, prefixes_that_fit_go_to_bpf_in_order)
{
	char long65[66], exact64[65];
	const char *p[12];
	struct pbpf_filter_cfg cfg;
	struct filter *f;

	memset(long65, 'L', 65);
	long65[0] = '/';
	long65[65] = 0;
	memset(exact64, 'E', 64);
	exact64[0] = '/';
	exact64[64] = 0;
	p[0] = "/health";
	p[1] = long65;		/* too long: userspace, and takes no BPF slot */
	p[2] = "re:^/metrics$"; /* regex: userspace */
	p[3] = "/static/";
	p[4] = exact64; /* exactly 64 bytes: fits */
	p[5] = "/a";
	p[6] = "/b";
	p[7] = "/c";
	p[8] = "/d";
	p[9] = "/e";	  /* the 8th that fits */
	p[10] = "/ninth"; /* one too many: userspace */
	p[11] = "/f";	  /* and so is this */
	f = new_filter(p, 12);
	memset(&cfg, 0xa5, sizeof(cfg));
	filter__bpf_config(f, 1.0, true, &cfg);
	cr_assert_eq(cfg.n_prefixes, PBPF_PREFIX_MAX);
	assert_slot(&cfg, 0, "/health");
	assert_slot(&cfg, 1, "/static/");
	assert_slot(&cfg, 2, exact64);
	assert_slot(&cfg, 3, "/a");
	assert_slot(&cfg, 4, "/b");
	assert_slot(&cfg, 5, "/c");
	assert_slot(&cfg, 6, "/d");
	assert_slot(&cfg, 7, "/e");

	/* What BPF checks is not checked (nor counted) again. */
	cr_assert(!filter__excluded(f, "/health/live"));
	cr_assert(!filter__excluded(f, exact64));
	cr_assert(!filter__excluded(f, "/e"));
	cr_assert_eq(filter__excluded_count(f), 0);
	/* What BPF cannot check is checked here. */
	cr_assert(filter__excluded(f, long65));
	cr_assert(filter__excluded(f, "/ninth/x"));
	cr_assert(filter__excluded(f, "/f"));
	cr_assert(filter__excluded(f, "/metrics"));
	cr_assert(!filter__excluded(f, "/metrics/x"));
	cr_assert(!filter__excluded(f, "/users"));
	cr_assert(!filter__excluded(f, "/nint"));
	cr_assert_eq(filter__excluded_count(f), 4);
	filter__free(f);
}

Test(filter, config_is_all_zero_but_what_is_set)
{
	const char *p[] = { "/x" };
	struct filter *f = new_filter(p, 1);
	struct pbpf_filter_cfg cfg, want;

	memset(&cfg, 0xff, sizeof(cfg));
	filter__bpf_config(f, 0.25, false, &cfg);
	memset(&want, 0, sizeof(want));
	want.sample_threshold = 1ULL << 30;
	want.n_prefixes = 1;
	want.prefix_len[0] = 2;
	memcpy(want.prefix[0], "/x", 2);
	cr_assert_eq(memcmp(&cfg, &want, sizeof(cfg)), 0);
	filter__free(f);
}

Test(filter, regular_expressions_are_extended_and_anchorable)
{
	const char *p[] = { "re:^/users/[0-9]+$", "re:\\.(png|css)$" };
	struct filter *f = new_filter(p, 2);
	struct pbpf_filter_cfg cfg;

	filter__bpf_config(f, 1.0, true, &cfg);
	cr_assert_eq(cfg.n_prefixes, 0, "regexes never go to BPF");
	cr_assert(filter__excluded(f, "/users/42"));
	cr_assert(!filter__excluded(f, "/users/x"));
	cr_assert(!filter__excluded(f, "/users/42/orders"));
	cr_assert(!filter__excluded(f, "/api/users/42"));
	cr_assert(filter__excluded(f, "/static/site.css"));
	cr_assert(filter__excluded(f, "/a.png"));
	cr_assert(!filter__excluded(f, "/a.pngx"));
	cr_assert_eq(filter__excluded_count(f), 3);
	filter__free(f);
}

Test(filter, a_bad_regex_is_einval)
{
	const char *p[] = { "/ok", "re:(a" };
	const char *q[] = { "re:[z-a]" };

	errno = 0;
	cr_assert_null(filter__new(p, 2));
	cr_assert_eq(errno, EINVAL);
	errno = 0;
	cr_assert_null(filter__new(q, 1));
	cr_assert_eq(errno, EINVAL);
}

Test(filter, no_patterns_exclude_nothing)
{
	struct filter *f = new_filter(NULL, 0);

	cr_assert(!filter__excluded(f, "/"));
	cr_assert(!filter__excluded(f, ""));
	cr_assert_eq(filter__excluded_count(f), 0);
	filter__free(f);
	filter__free(NULL);
}

/* Random path from a small alphabet, so that prefixes often match. */
static void random_path(unsigned *seed, char *out, size_t size)
{
	static const char alpha[] = "/ab1";
	size_t len = 1 + rand_r(seed) % (size - 1);

	for (size_t i = 0; i < len; i++)
		out[i] = alpha[rand_r(seed) % 4];
	out[len] = 0;
}

Test(filter, bpf_and_userspace_together_exclude_exactly_the_matches)
{
	unsigned seed = 77;

	for (int round = 0; round < 50; round++) {
		char store[16][80], path[80];
		const char *pats[16];
		regex_t re[16];
		int n = 1 + rand_r(&seed) % 16;
		uint64_t counted = 0;
		struct pbpf_filter_cfg cfg;
		struct filter *f;

		for (int i = 0; i < n; i++) {
			if (rand_r(&seed) % 4 == 0) {
				/* "re:^/a+b" style: anchored, at most 8 a's. */
				snprintf(store[i], sizeof(store[i]), "re:^/a{1,%d}b",
					 1 + rand_r(&seed) % 8);
				cr_assert_eq(
					regcomp(&re[i], store[i] + 3, REG_EXTENDED | REG_NOSUB), 0);
			} else {
				/* Prefixes of 1..79 bytes: some too long for BPF. */
				random_path(&seed, store[i], rand_r(&seed) % 2 ? 6 : 80);
			}
			pats[i] = store[i];
		}
		f = new_filter(pats, n);
		filter__bpf_config(f, 1.0, true, &cfg);
		cr_assert_leq(cfg.n_prefixes, PBPF_PREFIX_MAX);
		for (int k = 0; k < 200; k++) {
			bool want = false, bpf, user;

			random_path(&seed, path, 12);
			for (int i = 0; i < n; i++)
				want |= strncmp(pats[i], "re:", 3) == 0
						? regexec(&re[i], path, 0, NULL, 0) == 0
						: strncmp(path, pats[i], strlen(pats[i])) == 0;
			bpf = bpf_excludes(&cfg, path);
			/* Userspace only sees what BPF let through. */
			user = !bpf && filter__excluded(f, path);
			counted += user;
			cr_assert_eq(bpf || user, want, "round %d path '%s'", round, path);
		}
		cr_assert_eq(filter__excluded_count(f), counted);
		filter__free(f);
		for (int i = 0; i < n; i++)
			if (strncmp(pats[i], "re:", 3) == 0)
				regfree(&re[i]);
	}
}
