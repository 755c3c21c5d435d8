// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Pod names match shell globs (fnmatch, as `kubectl get pods` users write
 * them: `checkout-*`); container ids match by prefix, as `crictl` and
 * `docker` accept a short id.
 */
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <string.h>
#include "selector.h"

static const char *const option[SEL__COUNT] = { "--k8s-namespace", "--k8s-pod", "--container",
						"--service" };

static int valid(enum selector_kind kind, const char *v, char *msg, size_t msglen)
{
	size_t len = strlen(v);

	switch (kind) {
	case SEL_NAMESPACE:
		if (k8smeta_dns_label(v, len))
			return 0;
		snprintf(msg, msglen,
			 "%s '%s': not a namespace name (a DNS label: a-z, 0-9 and "
			 "'-', at most 63)",
			 option[kind], v);
		return -EINVAL;
	case SEL_CONTAINER:
		if (len && len <= K8SMETA_CONTAINER_ID_LEN && strspn(v, "0123456789abcdef") == len)
			return 0;
		snprintf(msg, msglen,
			 "%s '%s': not a container id prefix (1 to 64 lowercase hex "
			 "digits)",
			 option[kind], v);
		return -EINVAL;
	default:
		if (k8smeta_printable(v, len, K8SMETA_DNS_SUBDOMAIN_MAX))
			return 0;
		snprintf(msg, msglen, "%s '%s': empty, too long or not printable", option[kind], v);
		return -EINVAL;
	}
}

int selector_add(struct selector *s, enum selector_kind kind, const char *value, char *msg,
		 size_t msglen)
{
	int err = valid(kind, value, msg, msglen);

	if (err)
		return err;
	if (s->n[kind] == SELECTOR_MAX) {
		snprintf(msg, msglen, "%s is given more than %d times", option[kind], SELECTOR_MAX);
		return -E2BIG;
	}
	s->values[kind][s->n[kind]++] = value;
	return 0;
}

bool selector_active(const struct selector *s)
{
	for (int k = 0; k < SEL__COUNT; k++)
		if (s->n[k])
			return true;
	return false;
}

static bool one_matches(enum selector_kind kind, const char *want, const struct k8smeta *m)
{
	switch (kind) {
	case SEL_NAMESPACE: return m->namespace[0] && strcmp(m->namespace, want) == 0;
	case SEL_POD: return m->pod_name[0] && fnmatch(want, m->pod_name, 0) == 0;
	case SEL_CONTAINER:
		return m->container_id[0] && strncmp(m->container_id, want, strlen(want)) == 0;
	case SEL_SERVICE: return m->service_name[0] && strcmp(m->service_name, want) == 0;
	default: return false;
	}
}

bool selector_matches(const struct selector *s, const struct k8smeta *m)
{
	for (int k = 0; k < SEL__COUNT; k++) {
		bool any = s->n[k] == 0;

		for (int i = 0; i < s->n[k] && !any; i++)
			any = one_matches(k, s->values[k][i], m);
		if (!any)
			return false;
	}
	return true;
}
