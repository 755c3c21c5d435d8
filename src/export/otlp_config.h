/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The OpenTelemetry exporter settings, pure parsing (no I/O): the traces URL
 * from --otlp-endpoint or the OTEL_EXPORTER_OTLP_* variables, and the
 * "key=value,key2=value2" lists of OTEL_EXPORTER_OTLP_HEADERS and
 * OTEL_RESOURCE_ATTRIBUTES (values percent-decoded, as the OpenTelemetry
 * specification's environment variables say).  cli.c checks them before
 * anything is attached; the exporter parses the same text again.
 */
#ifndef PROFILIS_OTLP_CONFIG_H
#define PROFILIS_OTLP_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#define OTLP_URL_MAX 2048
#define OTLP_TRACES_PATH "/v1/traces"

struct otlp_kv {
	char *key;
	char *value;
};

struct otlp_kvlist {
	struct otlp_kv *kv;
	size_t n;
};

/*
 * Parses `text` ("k=v,k2=v2"; blanks around keys and values are trimmed,
 * empty members are skipped, a '%XX' in a value is decoded, a '%' not
 * followed by two hex digits stays as it is) into *out, appending to what
 * it holds; a key given again replaces its value.  `what` names the source
 * in messages.  `header` applies HTTP's rules: keys are tokens, values have
 * no control characters.  Other lists take any key and UTF-8 value without
 * control characters.  0, -EINVAL with msg set, or -ENOMEM.
 */
int otlp_kv_parse(const char *what, const char *text, bool header, struct otlp_kvlist *out,
		  char *msg, size_t msglen);
/* The value of key, or NULL. */
const char *otlp_kv_get(const struct otlp_kvlist *l, const char *key);
void otlp_kv_free(struct otlp_kvlist *l);

/*
 * The URL spans are POSTed to.  `url` is an http:// or https:// URL; with
 * `append` (--otlp-endpoint, OTEL_EXPORTER_OTLP_ENDPOINT: a base URL)
 * "/v1/traces" is added to its path unless the path already ends so;
 * without it (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) the URL is used as is.
 * 0, or -EINVAL with msg naming `what`.
 */
int otlp_traces_url(const char *what, const char *url, bool append, char out[OTLP_URL_MAX],
		    char *msg, size_t msglen);

/* `url` without user:password@ (for messages), into out. */
void otlp_url_redacted(const char *url, char *out, size_t outlen);

#endif
