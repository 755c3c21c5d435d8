/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The terminal: the only code that writes escape sequences.  Raw mode and
 * the alternate screen while the dashboard runs, one write per frame,
 * SIGWINCH-aware size, colors unless NO_COLOR is set, and the terminal put
 * back on every way out (normal exit, Ctrl-C, SIGTERM).
 */
#ifndef PROFILIS_TERM_H
#define PROFILIS_TERM_H

#include <stdbool.h>
#include "dashboard.h"

/* Takes over the terminal on fd (stdout); 0 or -errno. */
int term_open(int fd);
/* Current size; false when unknown. */
bool term_size(int *width, int *height);
/* The size of any terminal fd. */
bool term_size_of(int fd, int *width, int *height);
/* True once after a resize (SIGWINCH). */
bool term_resized(void);
/* Draws a frame with one write(2). */
int term_draw(const struct dash_frame *f);
/* A pending key, or -1 (non-blocking). */
int term_key(void);
/* Puts the terminal back as it was; safe to call more than once. */
void term_close(void);

#endif
