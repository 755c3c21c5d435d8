// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Bearer tokens (RFC 6750) compared without an early exit: the loop runs
 * over every byte the client sent and folds differences into one
 * accumulator the compiler may not short-circuit, so the time tells an
 * attacker neither how many leading bytes matched nor the token's length.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "http_auth.h"

bool http_token_equal(const char *given, size_t glen, const char *want, size_t wlen)
{
	volatile unsigned char diff = glen != wlen || wlen == 0;

	for (size_t i = 0; i < glen; i++)
		diff |= (unsigned char)given[i] ^ (unsigned char)want[wlen ? i % wlen : 0];
	return diff == 0;
}

const char *http_bearer(const char *header, size_t *len)
{
	size_t n;

	if (!header)
		return NULL;
	while (*header == ' ' || *header == '\t')
		header++;
	if (strncasecmp(header, "Bearer", 6) != 0 || (header[6] != ' ' && header[6] != '\t'))
		return NULL;
	header += 6;
	while (*header == ' ' || *header == '\t')
		header++;
	n = strlen(header);
	while (n && (header[n - 1] == ' ' || header[n - 1] == '\t'))
		n--;
	*len = n;
	return n ? header : NULL;
}

bool http_authorized(const char *want, const char *auth_header, const char *query_token)
{
	size_t wlen = want ? strlen(want) : 0, glen = 0;
	const char *given;
	bool ok = false;

	if (!wlen)
		return true;
	given = http_bearer(auth_header, &glen);
	if (given)
		ok = http_token_equal(given, glen, want, wlen);
	if (query_token)
		ok |= http_token_equal(query_token, strlen(query_token), want, wlen);
	return ok;
}

int http_check_token(const char *token, char *msg, size_t msglen)
{
	size_t n = strlen(token);

	if (n == 0 || n > HTTP_TOKEN_MAX) {
		snprintf(msg, msglen,
			 "--ui-token: the token must be 1..%d characters long (got %zu)",
			 HTTP_TOKEN_MAX, n);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++)
		if (token[i] <= ' ' || token[i] > '~') {
			snprintf(msg, msglen,
				 "--ui-token: character %zu of the token is not visible ASCII "
				 "(a header carries 0x21..0x7e); choose another token",
				 i + 1);
			return -EINVAL;
		}
	return 0;
}
