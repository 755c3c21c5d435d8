// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The HTTP endpoint's pure parts: the bearer-token check (scheme, spacing,
 * wrong, longer, shorter and empty tokens, ?token= only where the server
 * passes it), token validation whose message never holds the token, the
 * route of every path under default, custom and root prefixes (no prefix
 * look-alikes, no trailing variants), --ui-prefix normalization, --http
 * address parsing, the loopback test, and errors.json's entries being the
 * very entries of metrics.json.
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <cjson/cJSON.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "http_auth.h"
#include "http_route.h"
#include "stats_json.h"

static bool eq(const char *a, const char *b)
{
	return http_token_equal(a, strlen(a), b, strlen(b));
}

Test(http_auth, token_compare)
{
	cr_assert(eq("s3cret", "s3cret"));
	cr_assert_not(eq("s3creT", "s3cret"));
	cr_assert_not(eq("s3cre", "s3cret"));
	cr_assert_not(eq("s3crets3cret", "s3cret"), "a repeat of the token is not the token");
	cr_assert_not(eq("s3cretx", "s3cret"));
	cr_assert_not(eq("", "s3cret"));
	cr_assert_not(eq("", ""), "an empty token never matches");
	cr_assert_not(eq("x", ""));
	/* Bytes past a NUL count: the length decides, not strcmp. */
	cr_assert_not(http_token_equal("ab\0c", 4, "ab\0d", 4));
	cr_assert(http_token_equal("ab\0c", 4, "ab\0c", 4));
}

static const char *bearer(const char *header)
{
	static char out[64];
	size_t n = 0;
	const char *t = http_bearer(header, &n);

	if (!t)
		return NULL;
	snprintf(out, sizeof(out), "%.*s", (int)n, t);
	return out;
}

Test(http_auth, bearer_header)
{
	cr_assert_str_eq(bearer("Bearer abc"), "abc");
	cr_assert_str_eq(bearer("bearer abc"), "abc");
	cr_assert_str_eq(bearer("BEARER\tabc  "), "abc");
	cr_assert_str_eq(bearer("  Bearer   a.b-c~d+e/f=  "), "a.b-c~d+e/f=");
	cr_assert_null(bearer("Basic YWxhZGRpbjpvcGVuc2VzYW1l"));
	cr_assert_null(bearer("Bearerabc"));
	cr_assert_null(bearer("Bearer "));
	cr_assert_null(bearer("Bearer"));
	cr_assert_null(bearer(""));
	cr_assert_null(bearer(NULL));
}

Test(http_auth, authorized)
{
	cr_assert(http_authorized(NULL, NULL, NULL), "no token: open");
	cr_assert(http_authorized("", NULL, NULL));
	cr_assert(http_authorized("t0k", "Bearer t0k", NULL));
	cr_assert_not(http_authorized("t0k", NULL, NULL));
	cr_assert_not(http_authorized("t0k", "Bearer t0K", NULL));
	cr_assert_not(http_authorized("t0k", "t0k", NULL), "the scheme is required");
	cr_assert_not(http_authorized("t0k", "Basic t0k", NULL));
	/* The page: ?token= instead of the header. */
	cr_assert(http_authorized("t0k", NULL, "t0k"));
	cr_assert(http_authorized("t0k", "Bearer wrong", "t0k"));
	cr_assert_not(http_authorized("t0k", NULL, "wrong"));
	cr_assert_not(http_authorized("t0k", NULL, ""));
}

Test(http_auth, token_check_never_quotes_the_token)
{
	char msg[256], long_token[HTTP_TOKEN_MAX + 2];

	cr_assert_eq(http_check_token("a.b-c~d+e/f=", msg, sizeof(msg)), 0);
	cr_assert_lt(http_check_token("secret-part with-space", msg, sizeof(msg)), 0);
	cr_assert_null(strstr(msg, "secret"), "%s", msg);
	cr_assert_not_null(strstr(msg, "character 12"), "%s", msg);
	cr_assert_lt(http_check_token("tab\there", msg, sizeof(msg)), 0);
	cr_assert_lt(http_check_token("caf\xc3\xa9", msg, sizeof(msg)), 0);
	cr_assert_lt(http_check_token("", msg, sizeof(msg)), 0);
	memset(long_token, 'a', sizeof(long_token) - 1);
	long_token[sizeof(long_token) - 1] = 0;
	cr_assert_lt(http_check_token(long_token, msg, sizeof(msg)), 0);
	long_token[HTTP_TOKEN_MAX] = 0;
	cr_assert_eq(http_check_token(long_token, msg, sizeof(msg)), 0);
}

Test(http_route, default_prefix)
{
	const char *p = HTTP_PREFIX_DEFAULT;

	cr_assert_eq(http_route(p, "/metrics"), HTTP_METRICS);
	cr_assert_eq(http_route(p, "/_profilis"), HTTP_PAGE);
	cr_assert_eq(http_route(p, "/_profilis/"), HTTP_PAGE);
	cr_assert_eq(http_route(p, "/_profilis/metrics.json"), HTTP_METRICS_JSON);
	cr_assert_eq(http_route(p, "/_profilis/errors.json"), HTTP_ERRORS_JSON);
	cr_assert_eq(http_route(p, "/_profilis/agent.json"), HTTP_AGENT_JSON);
	cr_assert_eq(http_route(p, "/_profilis/hot.json"), HTTP_HOT_JSON);
	cr_assert_eq(http_route(p, "/"), HTTP_NOT_FOUND);
	cr_assert_eq(http_route(p, "/metrics/"), HTTP_NOT_FOUND);
	cr_assert_eq(http_route(p, "/metrics.json"), HTTP_NOT_FOUND);
	cr_assert_eq(http_route(p, "/_profilisX"), HTTP_NOT_FOUND);
	cr_assert_eq(http_route(p, "/_profilisX/metrics.json"), HTTP_NOT_FOUND);
	cr_assert_eq(http_route(p, "/_profilis//"), HTTP_NOT_FOUND);
	cr_assert_eq(http_route(p, "/_profilis/metrics.json/"), HTTP_NOT_FOUND);
	cr_assert_eq(http_route(p, "/_profilis/../metrics.json"), HTTP_NOT_FOUND);
	cr_assert_eq(http_route(p, "/_profilis/index.html"), HTTP_NOT_FOUND);
	cr_assert_eq(http_route(p, ""), HTTP_NOT_FOUND);
}

Test(http_route, root_and_nested_prefixes)
{
	cr_assert_eq(http_route("", "/"), HTTP_PAGE);
	cr_assert_eq(http_route("", ""), HTTP_NOT_FOUND);
	cr_assert_eq(http_route("", "/metrics"), HTTP_METRICS);
	cr_assert_eq(http_route("", "/metrics.json"), HTTP_METRICS_JSON);
	cr_assert_eq(http_route("", "/errors.json"), HTTP_ERRORS_JSON);
	cr_assert_eq(http_route("/ops/profilis", "/ops/profilis/errors.json"), HTTP_ERRORS_JSON);
	cr_assert_eq(http_route("/ops/profilis", "/ops/errors.json"), HTTP_NOT_FOUND);
	cr_assert_eq(http_route("/ops/profilis", "/_profilis/"), HTTP_NOT_FOUND);
}

static const char *norm(const char *in)
{
	static char out[HTTP_PREFIX_MAX + 1];
	char msg[256];

	return http_normalize_prefix(in, out, msg, sizeof(msg)) ? NULL : out;
}

Test(http_route, prefix_normalization)
{
	cr_assert_str_eq(norm("/_profilis"), "/_profilis");
	cr_assert_str_eq(norm("/_profilis/"), "/_profilis");
	cr_assert_str_eq(norm("/"), "");
	cr_assert_str_eq(norm("/a/b.c_d~e-f"), "/a/b.c_d~e-f");
	cr_assert_null(norm("_profilis"));
	cr_assert_null(norm(""));
	cr_assert_null(norm("/a//b"));
	cr_assert_null(norm("//"));
	cr_assert_null(norm("/a b"));
	cr_assert_null(norm("/a?b"));
	cr_assert_null(norm("/a%2e"));
	cr_assert_null(norm("/metrics"));
	cr_assert_null(norm("/metrics/"));
}

static int family(const char *addr, int *port)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char msg[256];

	if (http_parse_addr(addr, &ss, &len, msg, sizeof(msg)))
		return -1;
	*port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
					       : ((struct sockaddr_in *)&ss)->sin_port);
	return ss.ss_family;
}

Test(http_route, addresses)
{
	int port = -1;

	cr_assert_eq(family("127.0.0.1:9464", &port), AF_INET);
	cr_assert_eq(port, 9464);
	cr_assert_eq(family("0.0.0.0:0", &port), AF_INET);
	cr_assert_eq(port, 0);
	cr_assert_eq(family("localhost:65535", &port), AF_INET);
	cr_assert_eq(port, 65535);
	cr_assert_eq(family("[::1]:80", &port), AF_INET6);
	cr_assert_eq(port, 80);
	cr_assert_eq(family("[::]:9464", &port), AF_INET6);
	cr_assert_eq(family("9464", &port), -1);
	cr_assert_eq(family(":9464", &port), -1);
	cr_assert_eq(family("127.0.0.1:", &port), -1);
	cr_assert_eq(family("127.0.0.1:65536", &port), -1);
	cr_assert_eq(family("127.0.0.1:-1", &port), -1);
	cr_assert_eq(family("127.0.0.1:80x", &port), -1);
	cr_assert_eq(family("example.com:80", &port), -1);
	cr_assert_eq(family("::1:80", &port), -1);
	cr_assert_eq(family("[::1:80", &port), -1);
}

static bool loopback(const char *addr)
{
	struct sockaddr_storage ss;
	socklen_t len;
	char msg[256];

	cr_assert_eq(http_parse_addr(addr, &ss, &len, msg, sizeof(msg)), 0, "%s", addr);
	return http_addr_loopback((struct sockaddr *)&ss);
}

Test(http_route, loopback)
{
	cr_assert(loopback("127.0.0.1:1"));
	cr_assert(loopback("127.255.0.9:1"));
	cr_assert(loopback("localhost:1"));
	cr_assert(loopback("[::1]:1"));
	cr_assert(loopback("[::ffff:127.0.0.1]:1"));
	cr_assert_not(loopback("0.0.0.0:1"));
	cr_assert_not(loopback("10.1.2.3:1"));
	cr_assert_not(loopback("128.0.0.1:1"));
	cr_assert_not(loopback("[::]:1"));
	cr_assert_not(loopback("[::ffff:10.0.0.1]:1"));
}

/* errors.json serves the same entries as metrics.json's "errors". */
Test(http_route, errors_json_is_the_full_documents_errors)
{
	struct agg_error errs[2] = {
		{ 1700000000123456789ULL, "GET", "/boom", 500, "PaymentDeclined", "shop" },
		{ 1700000000000000001ULL, "POST", "/a\"b", 404, "", "" },
	};
	struct agg_snapshot s = { .errors = errs, .nerrors = 2, .errors_total = 7 };
	char *full = stats_json_render(&s, 15), *only = stats_json_render_errors(&s);
	cJSON *a = cJSON_Parse(full), *b = cJSON_Parse(only);

	cr_assert_not_null(a);
	cr_assert_not_null(b);
	cr_assert(cJSON_Compare(cJSON_GetObjectItem(a, "errors"), cJSON_GetObjectItem(b, "errors"),
				true));
	cr_assert_eq(cJSON_GetObjectItem(b, "errors_total")->valuedouble, 7);
	cr_assert_not_null(strstr(only, "\"ts_ns\":1700000000123456789"));
	cJSON_Delete(a);
	cJSON_Delete(b);
	free(full);
	free(only);
}
