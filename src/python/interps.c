// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Descriptors are few (one per distinct build and address layout: forked
 * workers share their master's) and are looked up once per stack event, so
 * the registry is an array behind a mutex, searched linearly on add.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "interps.h"
#include "pyhash.h"
#include "pyinspect.h"
#include "pyoffsets.h"
#include "pyruntime.h"

int interp_resolve(pid_t pid, struct interp *out, char *msg, size_t msglen)
{
	char why[1024];
	int err;

	memset(out, 0, sizeof(*out));
	err = target_resolve(pid, &out->t, msg, msglen);
	/* A supported version without the hooked functions is a shared-libpython
	 * build's executable seen before the dynamic loader mapped libpython
	 * (just after exec): -ENOENT, worth another look.  A CPython too old to
	 * have them gets the version message that names the supported ones. */
	if (err == -ENOTSUP && pyoffsets_find(out->t.py_major, out->t.py_minor))
		err = -ENOENT;
	else if (err == -ENOTSUP &&
		 pyruntime_offsets(&out->t, &out->off, why, sizeof(why)) == -ENOTSUP)
		snprintf(msg, msglen, "%s", why);
	if (err)
		return err;
	return pyruntime_offsets(&out->t, &out->off, msg, msglen);
}

int interp_name_hashes(const struct interp *ip, int64_t out[PBPF_NAME__COUNT])
{
	enum pyhash_alg alg = pyhash_alg_for(ip->t.py_minor);
	uint8_t secret[16];
	int err;

	if (!ip->t.hash_secret_addr)
		return -ENOENT;
	err = pyinspect_read(ip->t.pid, ip->t.hash_secret_addr, secret, sizeof(secret));
	if (err)
		return err;
	for (unsigned int i = 0; i < PBPF_NAME__COUNT; i++)
		out[i] = pyhash_ascii(alg, secret, pyoffsets_name(i), strlen(pyoffsets_name(i)));
	return 0;
}

struct interps {
	pthread_mutex_t lock;
	struct interp_desc *v;
	size_t n, cap;
};

struct interps *interps__new(void)
{
	struct interps *r = calloc(1, sizeof(*r));

	if (r)
		pthread_mutex_init(&r->lock, NULL);
	return r;
}

long interps__add(struct interps *r, const struct interp_desc *d)
{
	long id = -ENOMEM;

	pthread_mutex_lock(&r->lock);
	for (size_t i = 0; i < r->n; i++) {
		if (memcmp(&r->v[i], d, sizeof(*d)) == 0) {
			id = i;
			goto out;
		}
	}
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 8;
		struct interp_desc *v = realloc(r->v, cap * sizeof(*v));

		if (!v)
			goto out;
		r->v = v;
		r->cap = cap;
	}
	r->v[r->n] = *d;
	id = r->n++;
out:
	pthread_mutex_unlock(&r->lock);
	return id;
}

int interps__get(struct interps *r, uint32_t id, struct interp_desc *out)
{
	int err = -ENOENT;

	pthread_mutex_lock(&r->lock);
	if (id < r->n) {
		*out = r->v[id];
		err = 0;
	}
	pthread_mutex_unlock(&r->lock);
	return err;
}

size_t interps__count(struct interps *r)
{
	size_t n;

	pthread_mutex_lock(&r->lock);
	n = r->n;
	pthread_mutex_unlock(&r->lock);
	return n;
}

void interps__free(struct interps *r)
{
	if (!r)
		return;
	free(r->v);
	pthread_mutex_destroy(&r->lock);
	free(r);
}
