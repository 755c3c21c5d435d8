/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The agent's HTTP endpoint (--http), off by default: /metrics for
 * Prometheus and, under --ui-prefix, the web page and its JSON documents
 * (http_route.h lists the paths).  libmicrohttpd serves it on its own
 * internal thread; every answer is built from thread-safe snapshots (the
 * aggregator, the Prometheus exporter, the profile) or from the health
 * counters the main thread publishes, so a client never blocks the ring
 * buffer or the pipeline.  With --ui-token every path needs the bearer
 * token (http_auth.h); the token is never logged.
 */
#ifndef PROFILIS_HTTP_H
#define PROFILIS_HTTP_H

#include <stddef.h>
#include "prom_text.h"

struct aggregator;
struct profile;
struct prom;

struct http_opts {
	const char *addr;   /* --http HOST:PORT */
	const char *prefix; /* --ui-prefix as given; NULL: /_profilis */
	const char *token;  /* --ui-token / PROFILIS_UI_TOKEN; NULL or "": none */
	struct aggregator *agg;
	struct prom *prom;	 /* /metrics' request families */
	struct profile *profile; /* hot functions; NULL: not profiling */
	int window_minutes;
};

struct http;

/* Listens and starts serving; NULL with msg set (what failed, why, the
 * remedy). */
struct http *http__new(const struct http_opts *o, char *msg, size_t msglen);
/* The port listened on (the one chosen when --http gave port 0). */
int http__port(struct http *h);
/* Publishes the health counters (copied; the main thread calls it). */
void http__set_health(struct http *h, const struct prom_health *health);
/* Stops serving (waits for the server thread) and frees. */
void http__free(struct http *h);

#endif
