// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The OTLP exporter as a whole (queue, sender thread, libcurl) against a
 * scripted HTTP/1.1 server on a loopback socket: every span accounted for
 * once (sent, or dropped by reason), batches within --batch-max, headers
 * sent (the traces-specific variable winning), retries on 503 and on a
 * refused connection, Retry-After honoured, 4xx not retried, partialSuccess
 * counted, a full queue dropping its oldest span, giving up after the retry
 * time, and otlp__finish returning by its deadline although the server
 * accepted the connection and never answers.
 */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "clock.h"
#include "otlp.h"

#define MAX_REQ 256

struct srv {
	int fd, port;
	pthread_t th;
	int status[MAX_REQ]; /* answer of request i; past nstatus, the last */
	int nstatus;
	const char *retry_after; /* sent with every non-2xx answer */
	const char *body;	 /* of 2xx answers */
	bool hang;		 /* read requests, never answer */
	atomic_bool stop;
	atomic_int requests;
	atomic_int spans; /* in requests answered 2xx */
	int64_t t_ns[MAX_REQ];
	int batch[MAX_REQ]; /* spans in request i */
	char header_seen[128];
};

static int count(const char *s, const char *needle)
{
	int n = 0;

	while ((s = strstr(s, needle))) {
		n++;
		s += strlen(needle);
	}
	return n;
}

/* Reads one request; its body (malloc'ed) or NULL at EOF / stop. */
static char *read_request(struct srv *s, int c, char *head, size_t headsz)
{
	size_t len = 0, clen;
	char *end, *body, *cl;

	for (;;) {
		struct pollfd p = { .fd = c, .events = POLLIN };
		ssize_t n;

		if (atomic_load(&s->stop))
			return NULL;
		if (poll(&p, 1, 50) <= 0)
			continue;
		n = read(c, head + len, headsz - 1 - len);
		if (n <= 0)
			return NULL;
		len += n;
		head[len] = 0;
		if ((end = strstr(head, "\r\n\r\n")))
			break;
	}
	cl = strcasestr(head, "Content-Length:");
	clen = cl ? strtoul(cl + 15, NULL, 10) : 0;
	body = calloc(1, clen + 1);
	len -= end + 4 - head;
	memcpy(body, end + 4, len);
	while (len < clen) {
		ssize_t n = read(c, body + len, clen - len);

		if (n <= 0)
			return free(body), NULL;
		len += n;
	}
	return body;
}

static void answer(struct srv *s, int c, int status)
{
	char out[512];
	const char *body = status / 100 == 2 && s->body ? s->body : "{}";
	int n = snprintf(out, sizeof(out), "HTTP/1.1 %d X\r\nContent-Length: %zu\r\n%s%s%s\r\n%s",
			 status, strlen(body),
			 status / 100 != 2 && s->retry_after ? "Retry-After: " : "",
			 status / 100 != 2 && s->retry_after ? s->retry_after : "",
			 status / 100 != 2 && s->retry_after ? "\r\n" : "", body);

	cr_assert_eq(write(c, out, n), n);
}

static void serve(struct srv *s, int c)
{
	static char head[65536];
	char *body;

	while ((body = read_request(s, c, head, sizeof(head)))) {
		int i = atomic_load(&s->requests);
		int st = s->status[i < s->nstatus ? i : s->nstatus - 1];
		char *h = strcasestr(head, "X-Tenant:");

		if (i < MAX_REQ) {
			s->t_ns[i] = clock_ns(CLOCK_MONOTONIC);
			s->batch[i] = count(body, "\"spanId\"");
		}
		if (h)
			sscanf(h, "%127[^\r]", s->header_seen);
		if (!s->hang && st / 100 == 2)
			atomic_fetch_add(&s->spans, count(body, "\"spanId\""));
		atomic_fetch_add(&s->requests, 1);
		free(body);
		if (!s->hang)
			answer(s, c, st);
	}
}

static void *srv_main(void *arg)
{
	struct srv *s = arg;

	while (!atomic_load(&s->stop)) {
		struct pollfd p = { .fd = s->fd, .events = POLLIN };
		int c;

		if (poll(&p, 1, 50) <= 0)
			continue;
		c = accept(s->fd, NULL, NULL);
		if (c < 0)
			continue;
		serve(s, c);
		close(c);
	}
	return NULL;
}

static void srv_start(struct srv *s)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);

	if (!s->nstatus)
		s->status[s->nstatus++] = 200;
	s->fd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_geq(s->fd, 0);
	cr_assert_eq(bind(s->fd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(listen(s->fd, 8), 0);
	getsockname(s->fd, (struct sockaddr *)&a, &al);
	s->port = ntohs(a.sin_port);
	cr_assert_eq(pthread_create(&s->th, NULL, srv_main, s), 0);
}

static void srv_stop(struct srv *s)
{
	atomic_store(&s->stop, true);
	pthread_join(s->th, NULL);
	close(s->fd);
}

static struct otlp_exporter *exporter(int port, struct otlp_opts o)
{
	static char url[64];
	struct otlp_exporter *x;

	snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1/traces", port);
	o.url = url;
	if (!o.queue_size)
		o.queue_size = 2048;
	if (!o.batch_max)
		o.batch_max = 128;
	if (!o.flush_interval_ns)
		o.flush_interval_ns = 10000000;
	x = otlp__new(&o);
	cr_assert_not_null(x, "otlp__new: %s", strerror(errno));
	return x;
}

static void push(struct otlp_exporter *x, int n)
{
	struct request_record r = { .status = 200, .pid = 4242, .tid = 4243 };

	setenv("PROFILIS_HOST_NAME", "node-1", 1);
	r.has_method = r.has_path = r.has_route = r.route_matched = true;
	strcpy(r.method, "GET");
	strcpy(r.path, "/users/1");
	strcpy(r.route, "/users/<int:uid>");
	strcpy(r.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
	request_text_lengths(&r);
	for (int i = 0; i < n; i++) {
		snprintf(r.span_id, sizeof(r.span_id), "%016x", i + 1);
		r.time_unix_ns = 1795534628965004257ULL + i;
		otlp__push(x, &r);
	}
}

/* Waits up to `secs` until sent + every loss reaches n; the stats. */
static struct otlp_stats settle(struct otlp_exporter *x, uint64_t n, double secs)
{
	int64_t until = clock_ns(CLOCK_MONOTONIC) + (int64_t)(secs * 1e9);
	struct otlp_stats st;

	do {
		otlp__stats(x, &st);
		if (st.sent + st.queue_full + st.rejected + st.gave_up + st.at_exit >= n)
			break;
		usleep(5000);
	} while (clock_ns(CLOCK_MONOTONIC) < until);
	return st;
}

static void assert_accounted(struct otlp_exporter *x)
{
	struct otlp_stats st;

	otlp__stats(x, &st);
	cr_assert_eq(st.spans,
		     st.sent + st.queue_full + st.rejected + st.gave_up + st.at_exit +
			     st.unencodable + st.depth + st.in_flight,
		     "spans %llu not all accounted for", (unsigned long long)st.spans);
}

Test(otlp_sender, all_sent_in_batches_with_headers)
{
	struct srv s = { 0 };
	struct otlp_exporter *x;
	struct otlp_stats st;

	srv_start(&s);
	x = exporter(s.port, (struct otlp_opts){ .batch_max = 64,
						 .headers = "X-Tenant=blue,Other=1",
						 .traces_headers = "X-Tenant=red" });
	push(x, 300);
	st = settle(x, 300, 10);
	cr_assert_eq(st.sent, 300);
	cr_assert_eq(atomic_load(&s.spans), 300);
	cr_assert_geq(st.requests, 5);
	cr_assert_eq(st.retries, 0);
	for (int i = 0; i < atomic_load(&s.requests); i++)
		cr_assert(s.batch[i] >= 1 && s.batch[i] <= 64, "request %d: %d spans", i,
			  s.batch[i]);
	cr_assert_str_eq(s.header_seen, "X-Tenant: red");
	otlp__finish(x, 1000000000);
	assert_accounted(x);
	otlp__free(x);
	srv_stop(&s);
}

Test(otlp_sender, retries_503_then_sent)
{
	struct srv s = { .status = { 503, 503, 200 }, .nstatus = 3 };
	struct otlp_exporter *x;
	struct otlp_stats st;

	srv_start(&s);
	x = exporter(s.port, (struct otlp_opts){ 0 });
	push(x, 10);
	st = settle(x, 10, 10);
	cr_assert_eq(st.sent, 10);
	cr_assert_eq(st.retries, 2);
	cr_assert_eq(st.requests, 3);
	cr_assert_eq(atomic_load(&s.spans), 10);
	/* Backoff: the first wait is 0.25..0.5 s, the second 0.5..1 s. */
	cr_assert_geq(s.t_ns[1] - s.t_ns[0], 240000000);
	cr_assert_geq(s.t_ns[2] - s.t_ns[1], 490000000);
	otlp__free(x);
	srv_stop(&s);
}

Test(otlp_sender, retry_after_honoured)
{
	struct srv s = { .status = { 429, 200 }, .nstatus = 2, .retry_after = "2" };
	struct otlp_exporter *x;
	struct otlp_stats st;

	srv_start(&s);
	x = exporter(s.port, (struct otlp_opts){ 0 });
	push(x, 3);
	st = settle(x, 3, 10);
	cr_assert_eq(st.sent, 3);
	cr_assert_eq(st.retries, 1);
	/* Backoff alone would have retried within 0.5 s. */
	cr_assert_geq(s.t_ns[1] - s.t_ns[0], 1950000000);
	cr_assert_lt(s.t_ns[1] - s.t_ns[0], 2500000000);
	otlp__free(x);
	srv_stop(&s);
}

Test(otlp_sender, client_errors_not_retried)
{
	struct srv s = { .status = { 400 }, .nstatus = 1 };
	struct otlp_exporter *x;
	struct otlp_stats st;

	srv_start(&s);
	x = exporter(s.port, (struct otlp_opts){ .batch_max = 5, .flush_interval_ns = 1000000000 });
	push(x, 10);
	st = settle(x, 10, 5);
	cr_assert_eq(st.rejected, 10);
	cr_assert_eq(st.requests, 2);
	cr_assert_eq(st.retries, 0);
	cr_assert_eq(st.sent, 0);
	cr_assert_not_null(strstr(st.last_error, "HTTP 400"), "%s", st.last_error);
	otlp__free(x);
	srv_stop(&s);
}

Test(otlp_sender, partial_success_counted)
{
	struct srv s = { .body = "{\"partialSuccess\":{\"rejectedSpans\":\"2\","
				 "\"errorMessage\":\"too old\"}}" };
	struct otlp_exporter *x;
	struct otlp_stats st;

	srv_start(&s);
	x = exporter(s.port, (struct otlp_opts){ .batch_max = 5 });
	push(x, 5);
	st = settle(x, 5, 5);
	cr_assert_eq(st.sent, 3);
	cr_assert_eq(st.rejected, 2);
	cr_assert_not_null(strstr(st.last_error, "too old"), "%s", st.last_error);
	otlp__free(x);
	srv_stop(&s);
}

/* The server takes the first batch and never answers; the queue (8) fills
 * and drops; otlp__finish gives up at its deadline, counting the rest. */
Test(otlp_sender, full_queue_and_silent_server)
{
	struct srv s = { .hang = true };
	struct otlp_exporter *x;
	struct otlp_stats st;
	int64_t t0;

	srv_start(&s);
	x = exporter(s.port, (struct otlp_opts){ .queue_size = 8,
						 .batch_max = 8,
						 .flush_interval_ns = 60000000000ULL,
						 .drop_oldest = true });
	push(x, 8);
	for (int i = 0; i < 400 && atomic_load(&s.requests) == 0; i++)
		usleep(5000);
	cr_assert_eq(atomic_load(&s.requests), 1, "the first batch was POSTed");
	push(x, 20);
	otlp__stats(x, &st);
	cr_assert_eq(st.queue_full, 12);
	cr_assert_eq(st.depth, 8);
	cr_assert_eq(st.in_flight, 8);
	t0 = clock_ns(CLOCK_MONOTONIC);
	otlp__finish(x, 300000000);
	cr_assert_lt(clock_ns(CLOCK_MONOTONIC) - t0, 600000000, "finish kept its deadline");
	otlp__stats(x, &st);
	cr_assert_eq(st.at_exit, 16);
	cr_assert_eq(st.sent, 0);
	assert_accounted(x);
	otlp__free(x);
	srv_stop(&s);
}

/* Nothing listens: connection errors are retried until the retry time is
 * over, then the batch is given up, counted. */
Test(otlp_sender, gives_up_after_retry_time)
{
	struct srv s = { 0 };
	struct otlp_exporter *x;
	struct otlp_stats st;

	srv_start(&s);
	srv_stop(&s); /* a port that was just free: refused */
	x = exporter(s.port, (struct otlp_opts){ .retry_max_elapsed_ns = 1500000000 });
	push(x, 4);
	st = settle(x, 4, 10);
	cr_assert_eq(st.gave_up, 4);
	cr_assert_geq(st.retries, 1);
	cr_assert_eq(st.sent, 0);
	cr_assert_neq(st.last_error[0], 0);
	otlp__free(x);
}

/* Stopping while a batch waits to retry: it is tried again at once, and
 * what a refused connection leaves at the deadline is counted at_exit. */
Test(otlp_sender, finish_cuts_backoff)
{
	struct srv s = { 0 };
	struct otlp_exporter *x;
	struct otlp_stats st;
	int64_t t0;

	srv_start(&s);
	srv_stop(&s);
	x = exporter(s.port, (struct otlp_opts){ 0 });
	push(x, 6);
	usleep(200000);
	t0 = clock_ns(CLOCK_MONOTONIC);
	otlp__finish(x, 400000000);
	cr_assert_lt(clock_ns(CLOCK_MONOTONIC) - t0, 700000000);
	otlp__stats(x, &st);
	cr_assert_eq(st.at_exit, 6);
	cr_assert_geq(st.retries, 1);
	assert_accounted(x);
	otlp__free(x);
}
