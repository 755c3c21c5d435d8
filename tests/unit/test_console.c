// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The console exporter through a pipe: compact mode writes exactly the JSONL
 * lines, pretty mode writes indented objects that parse back to the same
 * values with every number spelled as in the JSONL line (nanosecond times
 * included), a buffer that fills is written out in whole records, and a
 * reader that goes away (EPIPE, with SIGPIPE ignored as main does) closes the
 * exporter and counts every record that was not written, none as written.
 */
#include <criterion/criterion.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "console.h"
#include "jsonl.h"

/* A realistic record: CLOCK_REALTIME nanoseconds need all 19 digits. */
static void make_record(struct request_record *r, int i)
{
	memset(r, 0, sizeof(*r));
	r->ts_ns = 123456789012345ULL + i;
	r->dur_ns = 1234567 + i;
	r->time_unix_ns = 1700000000123456789ULL + i;
	r->pid = 4123;
	r->tid = 4124 + i;
	r->status = i == 1 ? 500 : 200;
	r->sample_rate = 1.0;
	r->error = i == 1;
	r->has_method = r->has_path = r->has_route = r->has_endpoint = true;
	strcpy(r->method, "GET");
	snprintf(r->path, sizeof(r->path), "/users/%d", 40 + i);
	strcpy(r->route, "/users/<int:id>");
	strcpy(r->endpoint, "users.get");
	if (i == 1) {
		r->has_exception_type = true;
		strcpy(r->exception_type, "ZeroDivisionError");
	}
	snprintf(r->trace_id, sizeof(r->trace_id), "4bf92f3577b34da6a3ce929d0e0e47%02x",
		 (unsigned char)i);
	snprintf(r->span_id, sizeof(r->span_id), "00f067aa0ba902%02x", (unsigned char)i);
	if (i == 2)
		strcpy(r->parent_span_id, "b7ad6b7169203331");
	request_text_lengths(r);
}

static char *read_all(int fd, size_t *len)
{
	size_t cap = 1 << 16, n = 0;
	char *buf = malloc(cap);
	ssize_t got;

	cr_assert_not_null(buf);
	while ((got = read(fd, buf + n, cap - n - 1)) > 0) {
		n += got;
		if (cap - n < 4096)
			buf = realloc(buf, cap *= 2);
		cr_assert_not_null(buf);
	}
	buf[n] = 0;
	*len = n;
	return buf;
}

static struct console_exporter *new_console(bool pretty, int fd)
{
	struct console_opts o = { .pretty = pretty, .fd = fd };
	struct console_exporter *x = console__new(&o);

	cr_assert_not_null(x, "console__new: %s", strerror(errno));
	return x;
}

static void encode(int i, char *line, size_t size)
{
	struct request_record r;

	make_record(&r, i);
	cr_assert_gt(jsonl_encode_request(&r, line, size), 0);
}

Test(console, pretty_reindents_and_keeps_values)
{
	char line[JSONL_LINE_MAX];
	cJSON *a, *b;
	char *p;

	encode(1, line, sizeof(line));
	p = console_pretty(line);
	cr_assert_not_null(p);
	cr_assert_eq(p[0], '{');
	cr_assert_eq(p[1], '\n', "not indented: %s", p);
	cr_assert_not_null(strstr(p, "\n  \"kind\": \"REQ\",\n"), "%s", p);
	cr_assert_not_null(strstr(p, "\n  \"exception_type\": \"ZeroDivisionError\",\n"));
	cr_assert_not_null(strstr(p, "\n  \"parent_span_id\": null,\n"));
	a = cJSON_Parse(line);
	b = cJSON_Parse(p);
	cr_assert_not_null(a);
	cr_assert_not_null(b);
	cr_assert(cJSON_Compare(a, b, true), "pretty:\n%s\ncompact:\n%s", p, line);
	cJSON_Delete(a);
	cJSON_Delete(b);
	free(p);
	cr_assert_null(console_pretty("{\"kind\":"));
	cr_assert_null(console_pretty(""));
}

/* Numbers are the line's own text: a double has only 15-17 digits. */
Test(console, pretty_keeps_every_digit_of_nanosecond_times)
{
	char line[JSONL_LINE_MAX];
	char *p;

	encode(0, line, sizeof(line));
	cr_assert_not_null(strstr(line, "\"time_unix_ns\":1700000000123456789,"));
	p = console_pretty(line);
	cr_assert_not_null(p);
	cr_assert_not_null(strstr(p, "\"time_unix_ns\": 1700000000123456789,"),
			   "time_unix_ns lost digits in pretty output:\n%s", p);
	cr_assert_not_null(strstr(p, "\"ts_ns\": 123456789012345,"), "%s", p);
	free(p);
}

Test(console, compact_writes_the_jsonl_lines)
{
	struct console_exporter *x;
	struct console_stats st;
	char want[3 * JSONL_LINE_MAX] = "", line[JSONL_LINE_MAX];
	int fds[2];
	size_t len;
	char *got;

	cr_assert_eq(pipe(fds), 0);
	x = new_console(false, fds[1]);
	for (int i = 0; i < 3; i++) {
		struct request_record r;

		make_record(&r, i);
		cr_assert_eq(console__push(x, &r), 0);
		encode(i, line, sizeof(line));
		strcat(want, line);
	}
	console__stats(x, &st);
	cr_assert_eq(st.written, 0, "counted before it was written");
	cr_assert_eq(console__flush(x), 0);
	console__stats(x, &st);
	cr_assert_eq(st.written, 3);
	cr_assert_eq(st.write_errors, 0);
	cr_assert(!console__closed(x));
	console__free(x);
	close(fds[1]);
	got = read_all(fds[0], &len);
	close(fds[0]);
	cr_assert_str_eq(got, want);
	/* Three lines, each a JSON object with this record's ids. */
	for (int i = 0; i < 3; i++) {
		char *nl = strchr(got, '\n'), tid[40];
		cJSON *j, *t;

		cr_assert_not_null(nl);
		*nl = 0;
		j = cJSON_Parse(got);
		cr_assert_not_null(j, "line %d: %s", i, got);
		snprintf(tid, sizeof(tid), "4bf92f3577b34da6a3ce929d0e0e47%02x", (unsigned char)i);
		t = cJSON_GetObjectItemCaseSensitive(j, "trace_id");
		cr_assert(cJSON_IsString(t));
		cr_assert_str_eq(t->valuestring, tid);
		t = cJSON_GetObjectItemCaseSensitive(j, "status");
		cr_assert_eq(t->valueint, i == 1 ? 500 : 200);
		cJSON_Delete(j);
		got = nl + 1;
	}
	cr_assert_str_eq(got, "");
}

Test(console, pretty_writes_indented_objects)
{
	struct console_exporter *x;
	int fds[2];
	size_t len;
	char *got, *pos;

	cr_assert_eq(pipe(fds), 0);
	x = new_console(true, fds[1]);
	for (int i = 0; i < 3; i++) {
		struct request_record r;

		make_record(&r, i);
		cr_assert_eq(console__push(x, &r), 0);
	}
	cr_assert_eq(console__flush(x), 0);
	console__free(x);
	close(fds[1]);
	got = read_all(fds[0], &len);
	close(fds[0]);
	pos = got;
	for (int i = 0; i < 3; i++) {
		char line[JSONL_LINE_MAX];
		const char *end;
		cJSON *a, *b;

		cr_assert_eq(strncmp(pos, "{\n", 2), 0, "object %d: %.40s", i, pos);
		b = cJSON_ParseWithOpts(pos, &end, false);
		cr_assert_not_null(b, "object %d does not parse", i);
		cr_assert_eq(end[0], '\n', "object %d is not followed by a newline", i);
		encode(i, line, sizeof(line));
		a = cJSON_Parse(line);
		cr_assert(cJSON_Compare(a, b, true), "object %d differs from its JSONL line", i);
		cJSON_Delete(a);
		cJSON_Delete(b);
		pos = (char *)end + 1;
	}
	cr_assert_str_eq(pos, "", "more than three objects");
	free(got);
}

struct drain {
	int fd;
	char *buf;
	size_t len;
};

static void *drain(void *arg)
{
	struct drain *d = arg;

	d->buf = read_all(d->fd, &d->len);
	return NULL;
}

/* 1000 records overflow the 128 KiB buffer several times over. */
Test(console, a_full_buffer_is_written_in_whole_records)
{
	struct drain d;
	struct console_exporter *x;
	struct console_stats st;
	pthread_t th;
	int fds[2], lines = 0;
	size_t want_len = 0;

	cr_assert_eq(pipe(fds), 0);
	d.fd = fds[0];
	cr_assert_eq(pthread_create(&th, NULL, drain, &d), 0);
	x = new_console(false, fds[1]);
	for (int i = 0; i < 1000; i++) {
		struct request_record r;
		char line[JSONL_LINE_MAX];

		make_record(&r, i);
		cr_assert_eq(console__push(x, &r), 0);
		encode(i, line, sizeof(line));
		want_len += strlen(line);
	}
	cr_assert_eq(console__flush(x), 0);
	console__stats(x, &st);
	cr_assert_eq(st.written, 1000);
	cr_assert_eq(st.write_errors, 0);
	console__free(x);
	close(fds[1]);
	pthread_join(th, NULL);
	close(fds[0]);
	cr_assert_eq(d.len, want_len);
	for (char *p = d.buf; (p = strchr(p, '\n')); p++)
		lines++;
	cr_assert_eq(lines, 1000);
	free(d.buf);
}

Test(console, free_flushes_what_is_buffered)
{
	struct console_exporter *x;
	struct request_record r;
	char line[JSONL_LINE_MAX];
	int fds[2];
	size_t len;
	char *got;

	cr_assert_eq(pipe(fds), 0);
	x = new_console(false, fds[1]);
	make_record(&r, 7);
	cr_assert_eq(console__push(x, &r), 0);
	console__free(x);
	console__free(NULL);
	close(fds[1]);
	got = read_all(fds[0], &len);
	close(fds[0]);
	encode(7, line, sizeof(line));
	cr_assert_str_eq(got, line);
	free(got);
}

Test(console, a_closed_reader_closes_the_exporter)
{
	struct console_exporter *x;
	struct console_stats st;
	struct request_record r;
	int fds[2];

	signal(SIGPIPE, SIG_IGN);
	cr_assert_eq(pipe(fds), 0);
	close(fds[0]);
	x = new_console(false, fds[1]);
	for (int i = 0; i < 3; i++) {
		make_record(&r, i);
		cr_assert_eq(console__push(x, &r), 0, "buffered, not yet written");
	}
	cr_assert(!console__closed(x));
	cr_assert_eq(console__flush(x), -EPIPE);
	cr_assert(console__closed(x));
	console__stats(x, &st);
	cr_assert_eq(st.written, 0);
	cr_assert_eq(st.write_errors, 3);
	/* Later records are refused and counted. */
	cr_assert_eq(console__push(x, &r), -EPIPE);
	cr_assert_eq(console__flush(x), 0);
	console__stats(x, &st);
	cr_assert_eq(st.written, 0);
	cr_assert_eq(st.write_errors, 4);
	console__free(x);
	close(fds[1]);
}

/* The reader goes away while the buffer overflows: nothing counts as written. */
Test(console, records_lost_to_a_closed_reader_are_never_counted_as_written)
{
	struct console_exporter *x;
	struct console_stats st;
	int fds[2];

	signal(SIGPIPE, SIG_IGN);
	cr_assert_eq(pipe(fds), 0);
	close(fds[0]);
	x = new_console(false, fds[1]);
	for (int i = 0; i < 1000; i++) {
		struct request_record r;

		make_record(&r, i);
		console__push(x, &r);
	}
	cr_assert(console__closed(x), "the buffer overflowed into a closed pipe");
	console__flush(x);
	console__stats(x, &st);
	cr_assert_eq(st.written, 0, "%llu records counted as written to a closed pipe",
		     (unsigned long long)st.written);
	cr_assert_eq(st.write_errors, 1000, "%llu of 1000 records counted as errors",
		     (unsigned long long)st.write_errors);
	console__free(x);
	close(fds[1]);
}

Test(console, a_record_that_cannot_be_encoded_is_counted)
{
	struct console_exporter *x;
	struct console_stats st;
	struct request_record r;
	int fds[2];

	cr_assert_eq(pipe(fds), 0);
	x = new_console(false, fds[1]);
	/* Every byte a control character: 6 bytes of escape each, past JSONL_LINE_MAX. */
	make_record(&r, 0);
	r.has_exception_type = true;
#define FILL(f) (memset(r.f, 1, sizeof(r.f) - 1), r.f[sizeof(r.f) - 1] = 0)
	FILL(method);
	FILL(path);
	FILL(route);
	FILL(endpoint);
	FILL(exception_type);
#undef FILL
	request_text_lengths(&r);
	cr_assert_eq(console__push(x, &r), -ENOSPC);
	cr_assert_eq(console__flush(x), 0);
	console__stats(x, &st);
	cr_assert_eq(st.written, 0);
	cr_assert_eq(st.write_errors, 1);
	console__free(x);
	close(fds[1]);
	close(fds[0]);
}
