// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Redraws happen on a fixed interval, on resize and right after a key, and
 * never while paused (the numbers keep being collected underneath).  The
 * stats file and the plain table follow the same interval.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "live.h"
#include "log.h"
#include "profile.h"
#include "safefile.h"
#include "stats_json.h"
#include "term.h"

struct live {
	struct live_opts o;
	struct aggregator *agg;
	struct dash_state st;
	struct dash_frame *frame;
	uint64_t next_ns;
	uint64_t last_events, last_events_ns;
	double events_per_s;
	bool term_on;
	bool holds_log; /* messages held while the dashboard is shown */
	bool stats_warned;
	struct agg_snapshot frozen; /* what a paused dashboard keeps showing */
	bool have_frozen;
	int esc;	     /* bytes of an escape sequence seen */
	bool drill;	     /* hot functions of the selected route */
	char drill_key[300]; /* "METHOD route" of that route */
	struct dash_hot hot[12];
};

struct live *live__new(const struct live_opts *o, struct aggregator *agg)
{
	struct live *l = calloc(1, sizeof(*l));

	if (!l || !(l->frame = malloc(sizeof(*l->frame)))) {
		free(l);
		errno = ENOMEM;
		return NULL;
	}
	l->o = *o;
	l->agg = agg;
	l->st.sort = COL_RPS;
	l->st.window = AGG_WINDOW_LONG;
	l->st.window_minutes = o->window_minutes;
	if (o->mode == LIVE_DASHBOARD) {
		term_open(STDOUT_FILENO);
		l->term_on = true;
		/* Only when stderr shows on the same screen: a redirected stderr
		 * keeps getting messages as they happen. */
		l->holds_log = isatty(STDERR_FILENO);
		if (l->holds_log)
			log_hold(true);
	}
	return l;
}

/* Arrow keys arrive as ESC [ A / ESC [ B: returns the key they stand for. */
static int decode_key(struct live *l, int key)
{
	if (l->esc == 0 && key == 27) {
		l->esc = 1;
		return -1;
	}
	if (l->esc == 1) {
		l->esc = key == '[' ? 2 : 0;
		return key == '[' ? -1 : 27; /* a lone ESC */
	}
	if (l->esc == 2) {
		l->esc = 0;
		return key == 'A' ? 'k' : key == 'B' ? 'j' : -1;
	}
	return key;
}

/* Applies a key; returns 1 for quit. */
static int on_key(struct live *l, int key)
{
	key = decode_key(l, key);
	if (key < 0)
		return 0;
	if (l->st.help) {
		l->st.help = false; /* any key leaves the help */
		return key == 'q';
	}
	switch (key) {
	case 'q': return 1;
	case 's':
	case '>': l->st.sort = (l->st.sort + 1) % COL__COUNT; break;
	case '<': l->st.sort = (l->st.sort + COL__COUNT - 1) % COL__COUNT; break;
	case 'r': l->st.reverse = !l->st.reverse; break;
	case 'p': l->st.paused = !l->st.paused; break;
	case 'w':
		l->st.window = l->st.window == AGG_WINDOW_LONG ? AGG_WINDOW_NOW : AGG_WINDOW_LONG;
		break;
	case '?': l->st.help = true; break;
	case 'j': l->st.selected++; break;
	case 'k':
		if (l->st.selected > 0)
			l->st.selected--;
		break;
	case '\r':
	case '\n':
		l->drill = !l->drill;
		l->drill_key[0] = 0;
		break;
	case 27:
	case 127: l->drill = false; break;
	}
	return 0;
}

/* Fills the hot-functions pane for all routes or the selected one. */
static void fill_hot(struct live *l, const struct agg_snapshot *s)
{
	struct profile_hot h[12];
	size_t n;

	if (!l->o.profile)
		return;
	if (s->nrows && l->st.selected >= (int)s->nrows)
		l->st.selected = s->nrows - 1;
	if (l->drill && s->nrows) {
		const struct agg_row *r = &s->rows[l->st.selected];

		snprintf(l->drill_key, sizeof(l->drill_key), "%s %s", r->method, r->route);
	}
	n = profile__hot(l->o.profile, l->drill ? l->drill_key : NULL, h, 12);
	for (size_t i = 0; i < n; i++) {
		snprintf(l->hot[i].function, sizeof(l->hot[i].function), "%.255s", h[i].function);
		l->hot[i].own_pct = h[i].own_pct;
		l->hot[i].total_pct = h[i].total_pct;
		l->hot[i].wait_ms = h[i].offcpu_ns / 1e6;
	}
	l->st.hot = l->hot;
	l->st.nhot = n;
	l->st.hot_title = l->drill ? l->drill_key : "all routes; Enter: selected route";
}

static void draw_dashboard(struct live *l, const struct agg_snapshot *s,
			   const struct live_counters *c, uint64_t now)
{
	struct dash_header h = l->o.header;
	int w = 80, ht = 24;

	term_size(&w, &ht);
	h.uptime_s = (now - l->o.start_ns) / 1e9;
	h.events_per_s = l->events_per_s;
	h.lost = c->lost;
	h.inflight = c->inflight;
	dashboard_render(&h, s, &l->st, w, ht, l->frame);
	term_draw(l->frame);
}

static void print_table(struct live *l, const struct agg_snapshot *s)
{
	char stamp[32];
	time_t t = time(NULL);
	struct tm tm;

	localtime_r(&t, &tm);
	strftime(stamp, sizeof(stamp), "%H:%M:%S", &tm);
	live_table(s, 120, l->frame);
	printf("%s  %.1f req/s  %zu routes", stamp, s->total.rps, s->nrows);
	if (dashboard_many_services(s))
		printf("  %zu services", s->nservices);
	printf("\n");
	for (int i = 0; i < l->frame->nlines; i++)
		printf("%s\n", l->frame->text[i]);
	printf("\n");
	fflush(stdout);
}

static void refresh(struct live *l, uint64_t now, const struct live_counters *c)
{
	struct agg_snapshot s;
	int err;

	if (aggregator__snapshot(l->agg, l->st.window, now, &s))
		return;
	if (l->o.stats_json) {
		err = stats_json_write(l->o.stats_json, &s, l->o.window_minutes);
		if (err && !l->stats_warned)
			p_warn("cannot write --stats-json %s: %s", l->o.stats_json,
			       safefile_strerror(err));
		l->stats_warned = err != 0;
	}
	if (l->o.mode == LIVE_TABLE) {
		dashboard_sort(&s, l->st.sort, l->st.reverse);
		print_table(l, &s);
	}
	if (l->o.mode != LIVE_DASHBOARD) {
		aggregator__snapshot_free(&s);
		return;
	}
	/* Paused: keep showing the frozen numbers; keys still sort them. */
	if (!l->st.paused || !l->have_frozen) {
		aggregator__snapshot_free(&l->frozen);
		l->frozen = s;
		l->have_frozen = true;
	} else {
		aggregator__snapshot_free(&s);
	}
	dashboard_sort(&l->frozen, l->st.sort, l->st.reverse);
	fill_hot(l, &l->frozen);
	draw_dashboard(l, &l->frozen, c, now);
}

int live__tick(struct live *l, uint64_t now, const struct live_counters *c)
{
	bool redraw = now >= l->next_ns;
	int key;

	if (now - l->last_events_ns >= 1000000000ULL) {
		if (l->last_events_ns)
			l->events_per_s =
				(c->events - l->last_events) / ((now - l->last_events_ns) / 1e9);
		l->last_events = c->events;
		l->last_events_ns = now;
	}
	if (l->term_on) {
		while ((key = term_key()) >= 0) {
			if (on_key(l, key))
				return 1;
			redraw = true;
		}
		redraw |= term_resized();
	}
	if (redraw) {
		refresh(l, now, c);
		l->next_ns = now + (uint64_t)(l->o.interval_s * 1e9);
	}
	return 0;
}

void live_table(const struct agg_snapshot *s, int width, struct dash_frame *f)
{
	struct dash_header h = { 0 };
	struct dash_state st = { .sort = COL__COUNT };
	struct dash_frame *full = malloc(sizeof(*full));
	int start = 0, end;

	f->nlines = 0;
	if (!full)
		return;
	/* The dashboard's table section, without its title, errors and footer. */
	dashboard_render(&h, s, &st, width, DASH_LINES_MAX, full);
	while (start < full->nlines && full->style[start] != DS_HEADING)
		start++;
	for (end = start + 1; end < full->nlines && full->text[end][0]; end++)
		;
	for (int i = start; i < end; i++) {
		memcpy(f->text[f->nlines], full->text[i], DASH_LINE_BYTES);
		f->style[f->nlines++] = full->style[i];
	}
	free(full);
}

void live__summary(struct live *l, uint64_t now, FILE *out)
{
	struct agg_snapshot s;
	int width = 120, height;

	if (aggregator__snapshot(l->agg, AGG_WINDOW_LONG, now, &s))
		return;
	if (isatty(fileno(out)) && term_size_of(fileno(out), &width, &height) && width > 200)
		width = 200;
	dashboard_sort(&s, COL_RPS, false);
	live_table(&s, width, l->frame);
	fprintf(out, "Summary (%.0f s): %.0f requests, %.1f req/s, 5xx %.1f%%, 4xx %.1f%%\n",
		s.window_secs, s.total.count, s.total.rps, s.total.pct_5xx, s.total.pct_4xx);
	for (size_t i = 0; dashboard_many_services(&s) && i < s.nservices; i++) {
		const struct agg_row *v = &s.services[i];

		fprintf(out, "  %s: %.0f requests, %.1f req/s, 5xx %.1f%%, 4xx %.1f%%\n",
			v->service[0] ? v->service : "-", v->count, v->rps, v->pct_5xx, v->pct_4xx);
	}
	for (int i = 0; i < l->frame->nlines; i++)
		fprintf(out, "%s\n", l->frame->text[i]);
	fflush(out);
	aggregator__snapshot_free(&s);
}

void live__free(struct live *l)
{
	if (!l)
		return;
	if (l->term_on)
		term_close();
	if (l->holds_log)
		log_hold(false);
	aggregator__snapshot_free(&l->frozen);
	free(l->frame);
	free(l);
}
