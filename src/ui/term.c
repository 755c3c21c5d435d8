// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Frames are composed in memory (home, each line then "erase to end of
 * line", then "erase below") and written at once, so the screen never shows
 * half a frame and never flickers.  term_close runs from atexit too, so an
 * error path cannot leave the terminal raw.
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>
#include "term.h"

static int out_fd = -1, in_fd = -1;
static struct termios saved;
static bool have_saved, color;
static volatile sig_atomic_t resized;

static void on_winch(int sig)
{
	(void)sig;
	resized = 1;
}

static void put_all(const char *s, size_t n)
{
	while (n > 0) {
		ssize_t w = write(out_fd, s, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		s += w;
		n -= w;
	}
}

void term_close(void)
{
	static const char leave[] = "\033[?25h\033[?1049l";

	if (out_fd < 0)
		return;
	put_all(leave, sizeof(leave) - 1);
	if (have_saved)
		tcsetattr(in_fd, TCSAFLUSH, &saved);
	out_fd = -1;
}

int term_open(int fd)
{
	static const char enter[] = "\033[?1049h\033[?25l\033[H\033[2J";
	struct sigaction sa = { .sa_handler = on_winch };
	struct termios raw;
	const char *nc = getenv("NO_COLOR");

	out_fd = fd;
	in_fd = isatty(STDIN_FILENO) ? STDIN_FILENO : fd;
	color = !(nc && *nc);
	if (tcgetattr(in_fd, &saved) == 0) {
		have_saved = true;
		raw = saved;
		/* Keys one at a time, no echo; ISIG kept so Ctrl-C still signals. */
		raw.c_lflag &= ~(ICANON | ECHO);
		raw.c_cc[VMIN] = 0;
		raw.c_cc[VTIME] = 0;
		tcsetattr(in_fd, TCSAFLUSH, &raw);
	}
	sigaction(SIGWINCH, &sa, NULL);
	atexit(term_close);
	put_all(enter, sizeof(enter) - 1);
	return 0;
}

bool term_size_of(int fd, int *w, int *h)
{
	struct winsize ws;

	if (ioctl(fd, TIOCGWINSZ, &ws) != 0 || ws.ws_col == 0 || ws.ws_row == 0)
		return false;
	*w = ws.ws_col;
	*h = ws.ws_row;
	return true;
}

bool term_size(int *w, int *h)
{
	return term_size_of(out_fd, w, h);
}

bool term_resized(void)
{
	bool r = resized;

	resized = 0;
	return r;
}

static const char *style_on(enum dash_style s)
{
	if (!color)
		return s == DS_HEADING || s == DS_TITLE ? "\033[1m" : "";
	switch (s) {
	case DS_TITLE: return "\033[1;36m";
	case DS_TOTALS: return "\033[1m";
	case DS_HEADING: return "\033[7m";
	case DS_ERROR: return "\033[31m";
	case DS_FOOTER: return "\033[2m";
	default: return "";
	}
}

int term_draw(const struct dash_frame *f)
{
	size_t cap = (size_t)f->nlines * (DASH_LINE_BYTES + 32) + 64, n = 0;
	char *buf = malloc(cap);

	if (!buf)
		return -ENOMEM;
	n += snprintf(buf + n, cap - n, "\033[H");
	for (int i = 0; i < f->nlines; i++) {
		const char *on = style_on(f->style[i]);

		n += snprintf(buf + n, cap - n, "%s%s%s\033[K%s", on, f->text[i],
			      *on ? "\033[0m" : "", i + 1 < f->nlines ? "\r\n" : "");
	}
	n += snprintf(buf + n, cap - n, "\033[J");
	put_all(buf, n < cap ? n : cap - 1);
	free(buf);
	return 0;
}

int term_key(void)
{
	struct pollfd p = { .fd = in_fd, .events = POLLIN };
	unsigned char c;

	if (in_fd < 0 || poll(&p, 1, 0) <= 0 || read(in_fd, &c, 1) != 1)
		return -1;
	return c;
}
