// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Leveled messages on stderr.  Each message is formatted into one buffer and
 * written with one write(2) so lines from a signal-time flush never interleave.
 * While the dashboard owns the terminal that stderr also writes to, messages
 * are held (a bounded buffer; what does not fit is counted) and written when
 * it gives the terminal back: a warning written into the alternate screen
 * would be garbled by the next frame and lost when the screen is left.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "log.h"

#define HELD_BYTES 65536

static enum log_level current_level = LOG_WARN;
static pthread_mutex_t held_lock = PTHREAD_MUTEX_INITIALIZER;
static bool holding;
static char held[HELD_BYTES];
static size_t held_len;
static unsigned long held_dropped, held_count;

void log_set_level(enum log_level level)
{
	current_level = level;
}

enum log_level log_get_level(void)
{
	return current_level;
}

void p_log(enum log_level level, const char *fmt, ...)
{
	static const char *const prefix[] = { "error: ", "warning: ", "", "debug: " };
	char buf[1024];
	va_list ap;
	int n;

	if (level > current_level)
		return;
	n = snprintf(buf, sizeof(buf), "profilis-bpf: %s", prefix[level]);
	va_start(ap, fmt);
	n += vsnprintf(buf + n, sizeof(buf) - n, fmt, ap);
	va_end(ap);
	if (n >= (int)sizeof(buf) - 1)
		n = sizeof(buf) - 2;
	buf[n++] = '\n';
	pthread_mutex_lock(&held_lock);
	if (holding) {
		if (held_len + n <= sizeof(held)) {
			memcpy(held + held_len, buf, n);
			held_len += n;
			held_count++;
		} else {
			held_dropped++;
		}
		pthread_mutex_unlock(&held_lock);
		return;
	}
	pthread_mutex_unlock(&held_lock);
	if (write(STDERR_FILENO, buf, n) < 0)
		return;
}

void log_hold(bool hold)
{
	char tail[128];
	int n = 0;

	pthread_mutex_lock(&held_lock);
	holding = hold;
	if (!hold) {
		if (held_len && write(STDERR_FILENO, held, held_len) < 0)
			held_len = 0;
		if (held_dropped)
			n = snprintf(tail, sizeof(tail),
				     "profilis-bpf: warning: %lu more messages "
				     "were not kept while the dashboard was shown\n",
				     held_dropped);
		if (n > 0 && write(STDERR_FILENO, tail, n) < 0)
			n = 0;
		held_len = 0;
		held_count = held_dropped = 0;
	}
	pthread_mutex_unlock(&held_lock);
}

unsigned long log_held(void)
{
	unsigned long n;

	pthread_mutex_lock(&held_lock);
	n = held_count + held_dropped;
	pthread_mutex_unlock(&held_lock);
	return n;
}
