// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The node agent's selectors: AND between kinds, OR within one, a missing
 * field never matches, and values are checked when given.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>
#include "selector.h"

static struct k8smeta pod(const char *ns, const char *name, const char *id, const char *svc)
{
	struct k8smeta m;

	memset(&m, 0, sizeof(m));
	strcpy(m.namespace, ns);
	strcpy(m.pod_name, name);
	strcpy(m.container_id, id);
	strcpy(m.service_name, svc);
	return m;
}

#define ID_A "4f0c410134e3a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6071829aa"
#define ID_B "8b728703fb66a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6071829bb"

static void add(struct selector *s, enum selector_kind k, const char *v)
{
	char msg[256];

	cr_assert_eq(selector_add(s, k, v, msg, sizeof(msg)), 0, "%s", msg);
}

Test(selector, none_selects_everything)
{
	struct selector s = { 0 };
	struct k8smeta host = pod("", "", "", "");

	cr_assert_not(selector_active(&s));
	cr_assert(selector_matches(&s, &host));
}

Test(selector, and_between_kinds_or_within)
{
	struct selector s = { 0 };
	struct k8smeta a = pod("team-a", "shop-a-5d8f7c-x2x9q", ID_A, "shop");
	struct k8smeta b = pod("team-b", "shop-b-6c9d4b-k7m2p", ID_B, "shop");
	struct k8smeta c = pod("team-c", "checkout-1", ID_B, "checkout");
	struct k8smeta host = pod("", "", "", "shop");

	add(&s, SEL_NAMESPACE, "team-a");
	add(&s, SEL_NAMESPACE, "team-b");
	cr_assert(selector_active(&s));
	cr_assert(selector_matches(&s, &a) && selector_matches(&s, &b));
	cr_assert_not(selector_matches(&s, &c));
	cr_assert_not(selector_matches(&s, &host), "a host process has no namespace");
	add(&s, SEL_POD, "shop-b-*");
	cr_assert_not(selector_matches(&s, &a), "namespace matches, pod glob does not");
	cr_assert(selector_matches(&s, &b));
}

Test(selector, container_prefix_and_service)
{
	struct selector s = { 0 };
	struct k8smeta a = pod("team-a", "a", ID_A, "shop");
	struct k8smeta b = pod("team-b", "b", ID_B, "shop");
	struct k8smeta host = pod("", "", "", "shop");

	add(&s, SEL_CONTAINER, "4f0c41");
	cr_assert(selector_matches(&s, &a));
	cr_assert_not(selector_matches(&s, &b));
	memset(&s, 0, sizeof(s));
	add(&s, SEL_SERVICE, "shop");
	cr_assert(selector_matches(&s, &host), "a host process has a service name");
	add(&s, SEL_SERVICE, "billing");
	cr_assert(selector_matches(&s, &a));
	memset(&s, 0, sizeof(s));
	add(&s, SEL_SERVICE, "billing");
	cr_assert_not(selector_matches(&s, &a));
}

Test(selector, bad_values_are_refused)
{
	struct selector s = { 0 };
	char msg[256];

	cr_assert_eq(selector_add(&s, SEL_NAMESPACE, "Team_A", msg, sizeof(msg)), -EINVAL);
	cr_assert(strstr(msg, "--k8s-namespace 'Team_A'"), "%s", msg);
	cr_assert_eq(selector_add(&s, SEL_CONTAINER, "4F0C", msg, sizeof(msg)), -EINVAL);
	cr_assert_eq(selector_add(&s, SEL_CONTAINER, "", msg, sizeof(msg)), -EINVAL);
	cr_assert_eq(selector_add(&s, SEL_POD, "", msg, sizeof(msg)), -EINVAL);
	cr_assert_eq(selector_add(&s, SEL_SERVICE, "a\nb", msg, sizeof(msg)), -EINVAL);
	for (int i = 0; i < SELECTOR_MAX; i++)
		add(&s, SEL_SERVICE, "x");
	cr_assert_eq(selector_add(&s, SEL_SERVICE, "y", msg, sizeof(msg)), -E2BIG);
	cr_assert_not(s.n[SEL_NAMESPACE] || s.n[SEL_CONTAINER] || s.n[SEL_POD]);
}
