// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * libmicrohttpd with its internal polling thread on a socket we bind
 * ourselves (so a failed bind says exactly why).  The order of checks for
 * every request: the token first (so that without it every path, unknown
 * ones too, answers 401 and tells nothing), then the method, then the
 * route.  Bodies are built per request from snapshots and handed to
 * libmicrohttpd to free; the page is the embedded src/ui/web/index.html.
 */
#include <errno.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cjson/cJSON.h>
#include <microhttpd.h>
#include "aggregator.h"
#include "clock.h"
#include "http.h"
#include "http_auth.h"
#include "http_route.h"
#include "log.h"
#include "profile.h"
#include "prom.h"
#include "stats_json.h"

/* The page, generated from src/ui/web/index.html by the Makefile. */
#include "web_index.inc"

#define HTTP_CONN_MAX 64
#define HTTP_TIMEOUT_S 15
#define HTTP_HOT_MAX 12 /* as many as the terminal dashboard shows */

struct http {
	struct http_opts o;
	char prefix[HTTP_PREFIX_MAX + 1];
	char *token; /* NULL: no check */
	int fd;
	int port;
	struct MHD_Daemon *d;
	pthread_mutex_t lock; /* health */
	struct prom_health health;
	bool have_health;
};

/* libmicrohttpd's messages, at debug level, with the token cut out should
 * one ever quote a request line (a ?token= in a URL). */
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct http *h = cls;
	char line[512], *at;

	vsnprintf(line, sizeof(line), fmt, ap);
	while (h->token && (at = strstr(line, h->token)))
		memset(at, '*', strlen(h->token));
	line[strcspn(line, "\n")] = 0;
	p_dbg("http: %s", line);
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned int status, const char *type,
			     void *body, size_t len, enum MHD_ResponseMemoryMode mode)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, body, mode);
	enum MHD_Result ret;

	if (!r) {
		if (mode == MHD_RESPMEM_MUST_FREE)
			free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	if (status == MHD_HTTP_UNAUTHORIZED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
					"Bearer realm=\"profilis-bpf\"");
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
	if (strncmp(type, "text/html", 9) == 0) {
		/* Nothing but the page itself and its own JSON: no CDN, no frames,
		 * and no Referer carrying a ?token= anywhere. */
		MHD_add_response_header(r, "Content-Security-Policy",
					"default-src 'none'; script-src 'unsafe-inline'; "
					"style-src 'unsafe-inline'; img-src data:; "
					"connect-src 'self'; base-uri 'none'; form-action 'none'; "
					"frame-ancestors 'none'");
		MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
	}
	ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result reply_text(struct MHD_Connection *c, unsigned int status, const char *text)
{
	return reply(c, status, "text/plain; charset=utf-8", (void *)text, strlen(text),
		     MHD_RESPMEM_PERSISTENT);
}

/* A body built by one of the functions below, or 500 when it failed. */
static enum MHD_Result reply_built(struct MHD_Connection *c, const char *type, char *body,
				   size_t len)
{
	if (!body)
		return reply_text(c, MHD_HTTP_INTERNAL_SERVER_ERROR,
				  "500: out of memory building the answer\n");
	return reply(c, MHD_HTTP_OK, type, body, len, MHD_RESPMEM_MUST_FREE);
}

static char *stats_doc(struct http *h, struct MHD_Connection *c, bool errors_only)
{
	const char *w = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "window");
	enum agg_window win = w && strcmp(w, "10s") == 0 ? AGG_WINDOW_NOW : AGG_WINDOW_LONG;
	struct agg_snapshot s;
	char *text;

	if (aggregator__snapshot(h->o.agg, win, mono_ns(), &s))
		return NULL;
	text = errors_only ? stats_json_render_errors(&s)
			   : stats_json_render(&s, h->o.window_minutes);
	aggregator__snapshot_free(&s);
	return text;
}

static char *print_free(cJSON *doc)
{
	char *text = doc ? cJSON_PrintUnformatted(doc) : NULL;

	cJSON_Delete(doc);
	return text;
}

static char *agent_doc(struct http *h)
{
	struct prom_health hl = { 0 };
	struct prom_stats st = { 0 };
	cJSON *doc = cJSON_CreateObject(), *lost, *queue;

	pthread_mutex_lock(&h->lock);
	hl = h->health;
	pthread_mutex_unlock(&h->lock);
	if (h->o.prom)
		prom__stats(h->o.prom, &st);
	cJSON_AddStringToObject(doc, "version", hl.version ? hl.version : "");
	cJSON_AddNumberToObject(doc, "start_time_s", hl.start_time_s);
	cJSON_AddNumberToObject(doc, "events", hl.events);
	cJSON_AddNumberToObject(doc, "traced_processes", hl.traced_processes);
	lost = cJSON_AddObjectToObject(doc, "lost");
	cJSON_AddNumberToObject(lost, "ringbuf_full", hl.lost_ringbuf);
	cJSON_AddNumberToObject(lost, "inflight_full", hl.lost_inflight);
	cJSON_AddNumberToObject(lost, "queue_full", hl.lost_queue);
	cJSON_AddNumberToObject(lost, "write_error", hl.lost_write);
	cJSON_AddNumberToObject(lost, "malformed", hl.malformed);
	cJSON_AddNumberToObject(doc, "stack_samples_lost", hl.stack_samples_lost);
	queue = cJSON_AddObjectToObject(doc, "queue");
	cJSON_AddNumberToObject(queue, "depth", hl.queue_depth);
	cJSON_AddNumberToObject(queue, "size", hl.queue_size);
	cJSON_AddNumberToObject(doc, "metrics_series", st.series);
	cJSON_AddBoolToObject(doc, "profiling", h->o.profile != NULL);
	return print_free(doc);
}

static char *hot_doc(struct http *h, struct MHD_Connection *c)
{
	const char *route = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "route");
	struct profile_hot *hot = calloc(HTTP_HOT_MAX, sizeof(*hot));
	cJSON *doc = cJSON_CreateObject(), *fns;
	size_t n = 0;

	if (!hot || !doc) {
		free(hot);
		cJSON_Delete(doc);
		return NULL;
	}
	if (route && !*route)
		route = NULL;
	if (h->o.profile)
		n = profile__hot(h->o.profile, route, hot, HTTP_HOT_MAX);
	if (route)
		cJSON_AddStringToObject(doc, "route", route);
	else
		cJSON_AddNullToObject(doc, "route");
	fns = cJSON_AddArrayToObject(doc, "functions");
	for (size_t i = 0; i < n; i++) {
		cJSON *o = cJSON_CreateObject();

		cJSON_AddStringToObject(o, "function", hot[i].function);
		cJSON_AddNumberToObject(o, "own_pct", hot[i].own_pct);
		cJSON_AddNumberToObject(o, "total_pct", hot[i].total_pct);
		cJSON_AddNumberToObject(o, "own_wall_pct", hot[i].own_wall_pct);
		cJSON_AddNumberToObject(o, "total_wall_pct", hot[i].total_wall_pct);
		cJSON_AddNumberToObject(o, "wait_ms", hot[i].offcpu_ns / 1e6);
		cJSON_AddItemToArray(fns, o);
	}
	free(hot);
	return print_free(doc);
}

static enum MHD_Result serve_metrics(struct http *h, struct MHD_Connection *c)
{
	struct prom_health hl;
	bool have;
	size_t len = 0;
	char *text;

	pthread_mutex_lock(&h->lock);
	hl = h->health;
	have = h->have_health;
	pthread_mutex_unlock(&h->lock);
	text = prom__render(h->o.prom, have ? &hl : NULL, &len);
	return reply_built(c, PROM_CONTENT_TYPE, text, len);
}

static enum MHD_Result serve(struct http *h, struct MHD_Connection *c, enum http_route route)
{
	const char *json = "application/json";
	char *text;

	switch (route) {
	case HTTP_METRICS: return serve_metrics(h, c);
	case HTTP_PAGE:
		return reply(c, MHD_HTTP_OK, "text/html; charset=utf-8", (void *)web_index_html,
			     sizeof(web_index_html), MHD_RESPMEM_PERSISTENT);
	case HTTP_METRICS_JSON:
	case HTTP_ERRORS_JSON:
		text = stats_doc(h, c, route == HTTP_ERRORS_JSON);
		return reply_built(c, json, text, text ? strlen(text) : 0);
	case HTTP_AGENT_JSON:
		text = agent_doc(h);
		return reply_built(c, json, text, text ? strlen(text) : 0);
	case HTTP_HOT_JSON:
		text = hot_doc(h, c);
		return reply_built(c, json, text, text ? strlen(text) : 0);
	default: return reply_text(c, MHD_HTTP_NOT_FOUND, "404: no such path\n");
	}
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload,
				  size_t *upload_size, void **req_cls)
{
	struct http *h = cls;
	enum http_route route = http_route(h->prefix, url);
	const char *auth, *qtoken = NULL;

	auth = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	if (route == HTTP_PAGE)
		qtoken = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "token");
	if (!http_authorized(h->token, auth, qtoken))
		return reply_text(c, MHD_HTTP_UNAUTHORIZED,
				  "401: this endpoint needs \"Authorization: Bearer TOKEN\" "
				  "(the page: ?token=TOKEN once)\n");
	if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
		return reply_text(c, MHD_HTTP_METHOD_NOT_ALLOWED, "405: only GET and HEAD\n");
	return serve(h, c, route);
}

/* A listening socket on addr; -errno. */
static int listen_on(const struct sockaddr_storage *ss, socklen_t len, int *port)
{
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1, err;
	struct sockaddr_storage got;
	socklen_t glen = sizeof(got);

	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)ss, len) || listen(fd, 64) ||
	    getsockname(fd, (struct sockaddr *)&got, &glen)) {
		err = -errno;
		close(fd);
		return err;
	}
	*port = ntohs(got.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&got)->sin6_port
						: ((struct sockaddr_in *)&got)->sin_port);
	return fd;
}

static int start(struct http *h, char *msg, size_t msglen)
{
	struct sockaddr_storage ss;
	socklen_t len;
	int fd;

	if (http_parse_addr(h->o.addr, &ss, &len, msg, msglen) ||
	    http_normalize_prefix(h->o.prefix ? h->o.prefix : HTTP_PREFIX_DEFAULT, h->prefix, msg,
				  msglen))
		return -EINVAL;
	fd = listen_on(&ss, len, &h->port);
	if (fd < 0) {
		snprintf(msg, msglen,
			 "--http %s: cannot listen: %s; choose another address or port", h->o.addr,
			 strerror(-fd));
		return fd;
	}
	h->fd = fd;
	h->d = MHD_start_daemon(MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG |
					(ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0),
				0, NULL, NULL, on_request, h, MHD_OPTION_LISTEN_SOCKET, fd,
				MHD_OPTION_CONNECTION_LIMIT, (unsigned int)HTTP_CONN_MAX,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)HTTP_TIMEOUT_S,
				MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h, MHD_OPTION_END);
	if (!h->d) {
		snprintf(msg, msglen, "--http %s: libmicrohttpd could not start its server thread",
			 h->o.addr);
		return -EIO;
	}
	return 0;
}

struct http *http__new(const struct http_opts *o, char *msg, size_t msglen)
{
	struct http *h = calloc(1, sizeof(*h));

	if (!h) {
		snprintf(msg, msglen, "--http: cannot allocate: %s", strerror(ENOMEM));
		return NULL;
	}
	h->o = *o;
	h->fd = -1;
	pthread_mutex_init(&h->lock, NULL);
	if (o->token && *o->token && !(h->token = strdup(o->token))) {
		snprintf(msg, msglen, "--http: cannot allocate: %s", strerror(ENOMEM));
		http__free(h);
		return NULL;
	}
	if (start(h, msg, msglen)) {
		http__free(h);
		return NULL;
	}
	return h;
}

int http__port(struct http *h)
{
	return h->port;
}

void http__set_health(struct http *h, const struct prom_health *health)
{
	if (!h)
		return;
	pthread_mutex_lock(&h->lock);
	h->health = *health;
	h->have_health = true;
	pthread_mutex_unlock(&h->lock);
}

void http__free(struct http *h)
{
	if (!h)
		return;
	if (h->d)
		MHD_stop_daemon(h->d); /* closes the listening socket too */
	else if (h->fd >= 0)
		close(h->fd);
	if (h->token) {
		explicit_bzero(h->token, strlen(h->token));
		free(h->token);
	}
	pthread_mutex_destroy(&h->lock);
	free(h);
}
