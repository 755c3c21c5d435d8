/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * What the HTTP endpoint serves, by path, and how it is addressed: --http
 * HOST:PORT parsed into a socket address (numeric IPv4, [IPv6], or
 * localhost), whether that address is loopback-only, and --ui-prefix checked
 * and normalized.  Pure, for the unit tests.
 *
 *   /metrics                  Prometheus text exposition
 *   PREFIX, PREFIX/           the web page
 *   PREFIX/metrics.json       the --stats-json document
 *   PREFIX/errors.json        {"errors": [...]} as Profilis's
 *   PREFIX/agent.json         agent health (version, losses, queue, processes)
 *   PREFIX/hot.json[?route=]  hot functions, of all routes or "METHOD route"
 */
#ifndef PROFILIS_HTTP_ROUTE_H
#define PROFILIS_HTTP_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#define HTTP_PREFIX_DEFAULT "/_profilis"
#define HTTP_PREFIX_MAX 128

enum http_route {
	HTTP_NOT_FOUND,
	HTTP_METRICS,
	HTTP_PAGE,
	HTTP_METRICS_JSON,
	HTTP_ERRORS_JSON,
	HTTP_AGENT_JSON,
	HTTP_HOT_JSON,
};

/* The route of a request path (no query string) under a normalized prefix. */
enum http_route http_route(const char *prefix, const char *path);

/* Checks --ui-prefix and writes its normalized form to out ("/" and a
 * trailing '/' dropped: "" serves the page at "/").  It must start with
 * '/', hold only [A-Za-z0-9._~/-] without "//", and not take /metrics.
 * 0, or -EINVAL with msg set. */
int http_normalize_prefix(const char *in, char out[HTTP_PREFIX_MAX + 1], char *msg, size_t msglen);

/* Parses --http: "HOST:PORT" (IPv4 or localhost), "[IPV6]:PORT"; PORT
 * 0..65535, 0 for any free port.  0, or -EINVAL with msg set. */
int http_parse_addr(const char *addr, struct sockaddr_storage *ss, socklen_t *len, char *msg,
		    size_t msglen);
/* Whether only this machine can reach the address (127.0.0.0/8, ::1, and
 * IPv4-mapped loopback). */
bool http_addr_loopback(const struct sockaddr *sa);

#endif
