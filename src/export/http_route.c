// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Paths are matched exactly (no decoding, no "..", no trailing-slash
 * variants beyond the page's), so what is served is what this table says.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "http_route.h"

enum http_route http_route(const char *prefix, const char *path)
{
	static const struct {
		const char *name;
		enum http_route route;
	} files[] = {
		{ "/", HTTP_PAGE },
		{ "/metrics.json", HTTP_METRICS_JSON },
		{ "/errors.json", HTTP_ERRORS_JSON },
		{ "/agent.json", HTTP_AGENT_JSON },
		{ "/hot.json", HTTP_HOT_JSON },
	};
	size_t n = strlen(prefix);

	if (strcmp(path, "/metrics") == 0)
		return HTTP_METRICS;
	if (strncmp(path, prefix, n) != 0)
		return HTTP_NOT_FOUND;
	path += n;
	if (!*path && n)
		return HTTP_PAGE;
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
		if (strcmp(path, files[i].name) == 0)
			return files[i].route;
	return HTTP_NOT_FOUND;
}

int http_normalize_prefix(const char *in, char out[HTTP_PREFIX_MAX + 1], char *msg, size_t msglen)
{
	size_t n = strlen(in);

	if (in[0] != '/' || n > HTTP_PREFIX_MAX) {
		snprintf(msg, msglen,
			 "--ui-prefix: '%.200s' must start with '/' and be at most %d "
			 "characters (e.g. /_profilis)",
			 in, HTTP_PREFIX_MAX);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++) {
		char c = in[i];
		int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			 (c >= '0' && c <= '9') || strchr("._~/-", c);

		if (!ok || (c == '/' && in[i + 1] == '/')) {
			snprintf(msg, msglen,
				 "--ui-prefix: '%.200s' may only hold letters, digits, '.', '_', "
				 "'~', '-' and single '/'",
				 in);
			return -EINVAL;
		}
	}
	while (n && in[n - 1] == '/')
		n--;
	memcpy(out, in, n);
	out[n] = 0;
	if (strcmp(out, "/metrics") == 0) {
		snprintf(msg, msglen, "--ui-prefix: /metrics is Prometheus's path; choose another");
		return -EINVAL;
	}
	return 0;
}

static int parse_port(const char *s, unsigned short *port)
{
	char *end;
	long v;

	if (*s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < 0 || v > 65535)
		return -1;
	*port = v;
	return 0;
}

int http_parse_addr(const char *addr, struct sockaddr_storage *ss, socklen_t *len, char *msg,
		    size_t msglen)
{
	const char *colon = strrchr(addr, ':');
	char host[64];
	size_t hlen = colon ? (size_t)(colon - addr) : 0;
	unsigned short port;

	memset(ss, 0, sizeof(*ss));
	if (!colon || hlen == 0 || hlen >= sizeof(host) || parse_port(colon + 1, &port))
		goto bad;
	memcpy(host, addr, hlen);
	host[hlen] = 0;
	if (host[0] == '[' && host[hlen - 1] == ']') {
		struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;

		host[hlen - 1] = 0;
		if (inet_pton(AF_INET6, host + 1, &a6->sin6_addr) != 1)
			goto bad;
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons(port);
		*len = sizeof(*a6);
		return 0;
	}
	struct sockaddr_in *a4 = (struct sockaddr_in *)ss;

	if (strcmp(host, "localhost") == 0)
		snprintf(host, sizeof(host), "127.0.0.1");
	if (inet_pton(AF_INET, host, &a4->sin_addr) != 1)
		goto bad;
	a4->sin_family = AF_INET;
	a4->sin_port = htons(port);
	*len = sizeof(*a4);
	return 0;
bad:
	snprintf(msg, msglen,
		 "--http: '%.200s' is not HOST:PORT with a numeric IPv4 address, localhost or "
		 "[IPv6] and a port 0..65535 (e.g. 127.0.0.1:9464)",
		 addr);
	return -EINVAL;
}

bool http_addr_loopback(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
	if (sa->sa_family == AF_INET6) {
		const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;

		if (IN6_IS_ADDR_LOOPBACK(a))
			return true;
		return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
	}
	return false;
}
