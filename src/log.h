/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The one logging module.  Messages go to stderr, never stdout (stdout carries
 * data only), prefixed with the program name and a level.
 */
#ifndef PROFILIS_LOG_H
#define PROFILIS_LOG_H

#include <stdbool.h>

enum log_level { LOG_ERR, LOG_WARN, LOG_INFO, LOG_DEBUG };

void log_set_level(enum log_level level);
enum log_level log_get_level(void);
void p_log(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Holds messages (bounded) while the dashboard owns stderr's terminal;
 * log_hold(false) writes what was held, and how much did not fit. */
void log_hold(bool hold);
/* How many messages are held now. */
unsigned long log_held(void);

#define p_err(...) p_log(LOG_ERR, __VA_ARGS__)
#define p_warn(...) p_log(LOG_WARN, __VA_ARGS__)
#define p_info(...) p_log(LOG_INFO, __VA_ARGS__)
#define p_dbg(...) p_log(LOG_DEBUG, __VA_ARGS__)

#endif
