// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * libFuzzer target: the rotation file-name template (src/export/rotfile.c):
 * rotfile_check_template, then rotfile_render of what it accepts.  The
 * message must be a NUL-terminated string within its buffer; a rendered
 * name must contain no '/', fit its exact-size buffer (ASan sees one byte
 * past it), and equal the harness's own expansion of the template;
 * -ENAMETOOLONG exactly when that expansion does not fit.
 *
 * Input: 8 bytes time, 4 bytes pid, 8 bytes seq, 2 bytes name buffer size,
 * 2 bytes message buffer size, then the template (up to a NUL).
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "rotfile.h"

#define HEADER 24

/* The expansion the template documents, into a buffer big enough for it. */
static char *expand(const char *t, time_t when, int pid, uint64_t seq)
{
	size_t cap = strlen(t) * 32 + 64, o = 0;
	char *out = malloc(cap);
	struct tm tm;

	gmtime_r(&when, &tm);
	while (*t) {
		if (strncmp(t, "{timestamp}", 11) == 0) {
			o += strftime(out + o, cap - o, "%Y%m%dT%H%M%SZ", &tm);
			t += 11;
		} else if (strncmp(t, "{pid}", 5) == 0) {
			o += snprintf(out + o, cap - o, "%d", pid);
			t += 5;
		} else if (strncmp(t, "{seq}", 5) == 0) {
			o += snprintf(out + o, cap - o, "%06llu", (unsigned long long)seq);
			t += 5;
		} else {
			out[o++] = *t++;
		}
	}
	out[o] = 0;
	return out;
}

static void render(const char *t, time_t when, int pid, uint64_t seq, size_t outlen)
{
	char *out = malloc(outlen),
	     *want = expand(t ? t : "profilis-{timestamp}.jsonl", when, pid, seq);
	int rc = rotfile_render(t, when, pid, seq, out, outlen);

	if (rc == 0 && (strlen(out) >= outlen || strchr(out, '/') || strcmp(out, want)))
		abort();
	if (rc != 0 && (rc != -ENAMETOOLONG || strlen(want) < outlen))
		abort();
	free(want);
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint16_t outlen, msglen;
	char *t, *msg;
	int64_t when;
	uint64_t seq;
	struct tm tm;
	int32_t pid;
	int rc;

	if (size < HEADER)
		return 0;
	memcpy(&when, data, 8);
	memcpy(&pid, data + 8, 4);
	memcpy(&seq, data + 12, 8);
	memcpy(&outlen, data + 20, 2);
	memcpy(&msglen, data + 22, 2);
	t = strndup((const char *)data + HEADER, size - HEADER);
	msg = malloc(msglen ? msglen : 1);
	rc = rotfile_check_template(t, msg, msglen);
	if (rc && rc != -EINVAL && rc != -ENAMETOOLONG)
		abort();
	if (rc && msglen && strnlen(msg, msglen) == msglen)
		abort(); /* no NUL inside the message buffer */
	/* time(NULL) is all the program passes: keep to times gmtime can show,
	 * and to the buffers it uses (1..1100 bytes). */
	when %= 253402300800LL; /* year 10000 */
	outlen = outlen % 1100 + 1;
	if (rc == 0 && gmtime_r(&(time_t){ when }, &tm)) {
		render(t, when, pid, seq, outlen);
		render(NULL, when, pid, seq, outlen);
		if (strchr(t, '/'))
			abort(); /* accepted a directory part */
		/* The program's domain: time(NULL) (years 1970..9999, a 16-byte
		 * timestamp) and a pid within pid_max. */
		if (when >= 0 && pid >= 0 && pid <= 4194304) {
			char *name = expand(t, when, pid, seq);

			if (strlen(name) > NAME_MAX)
				abort(); /* accepted, yet a name does not fit a directory entry */
			free(name);
		}
	}
	free(msg);
	free(t);
	return 0;
}
