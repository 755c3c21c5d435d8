// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Request events to request records.  Everything that came from the target's
 * memory is treated as untrusted: lengths are clamped to what BPF copied,
 * kinds other than 1/2/4 are rejected, and invalid text becomes U+FFFD.
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include "pystr.h"
#include "request.h"
#include "traceparent.h"

_Static_assert(offsetof(struct request_record, exception_type) <
		       offsetof(struct request_record, method_len),
	       "clear_record: the texts lie between the scalars and their lengths");
_Static_assert(sizeof(((struct request_record *)0)->route) ==
		       sizeof(((struct request_record *)0)->path),
	       "route falls back to path");

/* Where a str field's text starts (past the str header BPF read with it),
 * and how many bytes of text it may hold: what the field keeps, never the
 * slack, whatever `copied` says. */
static const char *str_data(const struct pbpf_str_hdr *hdr, const char *field)
{
	return field + (hdr->skip <= PBPF_STR_SLACK ? hdr->skip : 0);
}

static size_t str_data_size(const struct pbpf_str_hdr *hdr, size_t field_size)
{
	return hdr->skip <= PBPF_STR_SLACK ? field_size - PBPF_STR_SLACK : 0;
}

#define COPY_TEXT(d, s, f) copy_text(&(d)->f##_hdr, (d)->f, &(s)->f##_hdr, (s)->f, sizeof((s)->f))

static void copy_text(struct pbpf_str_hdr *dh, char *dst, const struct pbpf_str_hdr *sh,
		      const char *src, size_t size)
{
	size_t used = (size_t)sh->skip + sh->copied;

	*dh = *sh;
	memcpy(dst, src, used < size ? used : size);
}

void request_event_copy(void *dst, const void *src)
{
	const struct pbpf_req_event *s = src;
	struct pbpf_req_event *d = dst;
	size_t exc = (size_t)s->exc_type_len + 1;

	memcpy(d, s, offsetof(struct pbpf_req_event, method_hdr));
	COPY_TEXT(d, s, method);
	COPY_TEXT(d, s, path);
	COPY_TEXT(d, s, route);
	COPY_TEXT(d, s, endpoint);
	COPY_TEXT(d, s, traceparent);
	d->exc_type_len = s->exc_type_len;
	memcpy(d->exc_type, s->exc_type, exc < sizeof(s->exc_type) ? exc : sizeof(s->exc_type));
}

static void decode_ids(const struct pbpf_req_event *e, struct request_record *r)
{
	char header[PBPF_TRACEPARENT_MAX * 4 + 1];
	size_t n;

	r->parent_span_id[0] = 0;
	if (e->flags & PBPF_F_HAVE_TRACEPARENT) {
		n = pystr_to_utf8(&e->traceparent_hdr,
				  str_data(&e->traceparent_hdr, e->traceparent),
				  str_data_size(&e->traceparent_hdr, sizeof(e->traceparent)), true,
				  header, sizeof(header));
		if (traceparent_parse(header, n, r->trace_id, r->parent_span_id) == 0)
			goto span;
	}
	traceparent_new_trace_id(r->trace_id);
span:
	traceparent_new_span_id(r->span_id);
}

/* How many of the n bytes at b form whole UTF-8 sequences: a WSGI path cut
 * inside a character loses that character, not gains a U+FFFD. */
static size_t utf8_whole(const unsigned char *b, size_t n)
{
	for (size_t back = 1; back <= 3 && back <= n; back++) {
		unsigned char c = b[n - back];
		size_t need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;

		if ((c & 0xc0) == 0x80)
			continue; /* a continuation byte: look further back */
		return need > back ? n - back : n;
	}
	return n;
}

/*
 * One text field: UTF-8 into `out`, its byte length into `*len`, and whether
 * the target's string was longer than what BPF copied (from the str header's
 * length, never from a full buffer).
 */
static void text_field(const struct pbpf_str_hdr *hdr, const char *data, size_t data_size,
		       bool wsgi_bytes, char *out, size_t out_size, uint32_t *len, bool *truncated)
{
	size_t copied = hdr->copied < data_size ? hdr->copied : data_size;

	*truncated = (uint64_t)hdr->len * hdr->kind > copied;
	if (*truncated && wsgi_bytes && hdr->kind == 1)
		data_size = utf8_whole((const unsigned char *)data, copied);
	*len = pystr_to_utf8(hdr, data, data_size, wsgi_bytes, out, out_size);
}

#define TEXT(e, r, f, field, wsgi)                                                   \
	text_field(&(e)->f##_hdr, str_data(&(e)->f##_hdr, (e)->f),                   \
		   str_data_size(&(e)->f##_hdr, sizeof((e)->f)), (wsgi), (r)->field, \
		   sizeof((r)->field), &(r)->field##_len, &(r)->field##_truncated)

/* type(error).__name__: tp_name is a UTF-8 C string; BPF read one byte more
 * than it keeps, so a longer name is known to be cut. */
static void exception_field(const struct pbpf_req_event *e, struct request_record *r)
{
	size_t n = strnlen(e->exc_type, sizeof(e->exc_type));
	struct pbpf_str_hdr h = { .kind = 1 };

	r->exception_type_truncated = n > PBPF_EXC_MAX;
	if (r->exception_type_truncated)
		n = utf8_whole((const unsigned char *)e->exc_type, PBPF_EXC_MAX);
	h.copied = h.len = n;
	r->exception_type_len = pystr_to_utf8(&h, e->exc_type, n, true, r->exception_type,
					      sizeof(r->exception_type));
}

/* The route: the rule's template; the raw path only when no rule matched
 * (a matched rule whose template cannot be read is null, not the path). */
static void route_field(const struct pbpf_req_event *e, struct request_record *r)
{
	if (e->flags & PBPF_F_HAVE_RULE) {
		r->has_route = r->route_matched = true;
		TEXT(e, r, route, route, false);
	} else if (r->has_path && !(e->flags & PBPF_F_RULE_OBJ)) {
		r->has_route = true;
		memcpy(r->route, r->path, r->path_len + 1);
		r->route_len = r->path_len;
		r->route_truncated = r->path_truncated;
	}
}

/* A record as memset would leave it, as seen through lengths and NULs:
 * every text "" and everything else zero.  The ~13 KB of text arrays past
 * their first byte are left alone; clearing them cost more than half of
 * decoding, and readers stop at a text's length or its NUL. */
static void clear_record(struct request_record *r)
{
	memset(r, 0, offsetof(struct request_record, method));
	r->method[0] = r->path[0] = r->route[0] = r->endpoint[0] = r->exception_type[0] = 0;
	memset(&r->method_len, 0, sizeof(*r) - offsetof(struct request_record, method_len));
}

int request_decode(const struct pbpf_req_event *e, int64_t realtime_offset_ns,
		   struct request_record *r)
{
	if (e->kind != PBPF_EV_REQUEST)
		return -EINVAL;
	clear_record(r);
	r->ts_ns = e->end_ns;
	r->sample_rate = 1.0; /* the pipeline sets the configured rate */
	r->dur_ns = e->end_ns >= e->start_ns ? e->end_ns - e->start_ns : 0;
	r->time_unix_ns = e->end_ns + realtime_offset_ns;
	r->pid = e->pid;
	r->tid = e->tid;
	r->status = (e->flags & PBPF_F_HAVE_STATUS) && e->status >= 0 && e->status < 1000
			    ? (int)e->status
			    : -1;
	r->error = e->flags & PBPF_F_ERROR;
	r->has_method = e->flags & PBPF_F_HAVE_METHOD;
	if (r->has_method)
		TEXT(e, r, method, method, true);
	r->has_path = e->flags & PBPF_F_HAVE_PATH;
	if (r->has_path)
		TEXT(e, r, path, path, true);
	route_field(e, r);
	r->has_endpoint = e->flags & PBPF_F_HAVE_ENDPOINT;
	if (r->has_endpoint)
		TEXT(e, r, endpoint, endpoint, false);
	r->has_exception_type = (e->flags & PBPF_F_HAVE_EXC_TYPE) && e->exc_type[0];
	if (r->has_exception_type)
		exception_field(e, r);
	decode_ids(e, r);
	return 0;
}
