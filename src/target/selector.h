/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Which processes a node agent (--all) traces: --k8s-namespace NS,
 * --k8s-pod GLOB, --container ID-PREFIX and --service NAME, each repeatable.
 * A process is traced when, for every kind given, one of its values matches
 * (AND between kinds, OR within one).  A process without the field (a host
 * process has no namespace) does not match a selector of that kind.
 */
#ifndef PROFILIS_SELECTOR_H
#define PROFILIS_SELECTOR_H

#include <stdbool.h>
#include "k8smeta.h"

#define SELECTOR_MAX 16 /* values per kind */

enum selector_kind { SEL_NAMESPACE, SEL_POD, SEL_CONTAINER, SEL_SERVICE, SEL__COUNT };

struct selector {
	const char *values[SEL__COUNT][SELECTOR_MAX];
	int n[SEL__COUNT];
};

/* Adds a value of `kind`; 0, or -EINVAL with a message naming the rule
 * (a namespace is a DNS label, a container id prefix is lowercase hex, a
 * pattern or name is printable and non-empty), -E2BIG past SELECTOR_MAX. */
int selector_add(struct selector *s, enum selector_kind kind, const char *value, char *msg,
		 size_t msglen);
/* Whether any value was given. */
bool selector_active(const struct selector *s);
/* Whether a process with this metadata is selected. */
bool selector_matches(const struct selector *s, const struct k8smeta *m);

#endif
