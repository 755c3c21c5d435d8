// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Composition root: parse the command line, check the machine, resolve every
 * -p target, wire loader -> router -> collectors (requests; stacks) ->
 * pipeline (decode, filter) -> exporters and profile, run until interrupted,
 * the duration ends or every target exits, and report.
 */
#include <argp.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "aggregator.h"
#include "checks.h"
#include "proclist.h"
#include "cli.h"
#include "clock.h"
#include "collector.h"
#include "console.h"
#include "jsonl.h"
#include "filter.h"
#include "http.h"
#include "http_route.h"
#include "live.h"
#include "loader.h"
#include "otlp.h"
#include "otlp_config.h"
#include "log.h"
#include "pipeline.h"
#include "preflight.h"
#include "procs.h"
#include "profile.h"
#include "prom.h"
#include "interps.h"
#include "k8smeta.h"
#include "router.h"
#include "safefile.h"
#include "target.h"
#include "term.h"

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
	if (stop_signal) {
		term_close();	  /* write(2) and tcsetattr(3): safe in a handler */
		_exit(128 + sig); /* second signal: leave now */
	}
	stop_signal = sig;
}

struct app {
	struct config cfg;
	struct interp targets[CLI_PID_MAX]; /* -p, resolved */
	int ntargets;
	struct interps *interps; /* descriptors of every traced process */
	struct filter *filter;
	struct jsonl_exporter *jsonl;
	struct console_exporter *console;
	struct otlp_exporter *otlp;
	struct collector *collector; /* request records -> pipeline */
	struct collector *stacks;    /* stack events -> profile (symbolized there) */
	struct loader *loader;
	struct procs *procs; /* which processes are traced */
	struct aggregator *agg;
	struct profile *profile;
	struct live *live;
	struct prom *prom; /* --http's /metrics */
	struct http *http;
	int64_t next_health_ns;
	struct pipeline pipe;
	uint64_t start_ns;
	/* last reported values, for rate-limited warnings */
	uint64_t warned_dropped, warned_kernel_lost;
	int64_t next_warn_ns;
};

/* The router's sinks, on the ring-buffer thread: they only queue. */
static void on_request(void *ctx, const struct pbpf_req_event *e)
{
	struct app *a = ctx;

	collector__push(a->collector, e);
}

static void on_stack(void *ctx, const struct pbpf_stack_event *e)
{
	struct app *a = ctx;

	if (a->stacks)
		collector__push(a->stacks, e);
}

static void on_exec(void *ctx, uint32_t pid)
{
	struct app *a = ctx;

	procs__exec_seen(a->procs, pid);
}

static void on_first_seen(void *ctx, uint32_t pid)
{
	struct app *a = ctx;
	struct k8smeta m;

	p_dbg("first Flask request context seen in PID %u", pid);
	/* Read where it runs now, at its first request: a worker killed before
	 * its records are decoded still has them say which pod it was in. */
	k8smeta_cache__get(a->pipe.meta, pid, clock_ns(CLOCK_MONOTONIC), &m);
}

/* --all with selectors: the process's metadata decides.  Read through the
 * records' cache, so its first request finds it there. */
static bool selected(void *ctx, const struct interp *ip)
{
	struct app *a = ctx;
	struct k8smeta m;

	return k8smeta_cache__get(a->pipe.meta, ip->t.pid, clock_ns(CLOCK_MONOTONIC), &m) == 0 &&
	       selector_matches(&a->cfg.select, &m);
}

/* The stack collector's thread: symbolization and profile aggregation. */
static void stacks_sink(void *ctx, const void *items, size_t n)
{
	const struct pbpf_stack_event *e = items;
	struct app *a = ctx;
	uint64_t now = clock_ns(CLOCK_MONOTONIC);

	for (size_t i = 0; i < n; i++)
		profile__push_stack(a->profile, &e[i], now);
}

static void install_signals(void)
{
	struct sigaction sa = { .sa_handler = on_signal };

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* Resolves every -p; a thread stands for its process, named once. */
static int resolve_targets(struct app *a)
{
	char msg[1024];

	for (int i = 0; i < a->cfg.n_pids; i++) {
		struct interp *ip = &a->targets[a->ntargets];
		pid_t pid = a->cfg.pids[i];
		int dup = 0;

		if (interp_resolve(pid, ip, msg, sizeof(msg))) {
			p_err("%s", msg);
			return -1;
		}
		if (ip->t.pid != pid)
			p_info("%d is a thread of PID %d; tracing PID %d", pid, ip->t.pid,
			       ip->t.pid);
		for (int j = 0; j < a->ntargets; j++)
			dup |= a->targets[j].t.pid == ip->t.pid;
		if (!dup)
			a->ntargets++;
	}
	return 0;
}

static int check_machine(struct app *a)
{
	char msg[1024];

	if (preflight_capabilities(msg, sizeof(msg)) || preflight_uprobe(msg, sizeof(msg)) ||
	    preflight_btf("/sys/kernel/btf/vmlinux", msg, sizeof(msg))) {
		p_err("%s", msg);
		return -1;
	}
	return resolve_targets(a);
}

static int open_otlp(struct app *a)
{
	const struct config *c = &a->cfg;
	char shown[2048];

	if (!c->otlp_url[0])
		return 0;
	a->otlp = otlp__new(&(struct otlp_opts){ .url = c->otlp_url,
						 .headers = c->otlp_headers,
						 .traces_headers = c->otlp_traces_headers,
						 .resource_attrs = c->otlp_resource_attrs,
						 .service_name = c->otlp_service_name,
						 .queue_size = c->queue_size,
						 .batch_max = c->batch_max,
						 .flush_interval_ns = c->flush_interval_s * 1e9,
						 .drop_oldest = c->drop_oldest });
	otlp_url_redacted(c->otlp_url, shown, sizeof(shown));
	if (!a->otlp)
		return p_err("cannot set up OTLP export to %s: %s", shown, strerror(errno)), -1;
	p_info("sending spans to %s (OTLP/HTTP JSON)", shown);
	return 0;
}

static int open_exporters(struct app *a)
{
	const struct config *c = &a->cfg;

	a->filter = filter__new(c->exclude, c->n_exclude);
	if (!a->filter)
		return p_err("cannot set up --exclude-route: %s", strerror(errno)), -1;
	if (c->output) {
		a->jsonl = jsonl__new(
			&(struct jsonl_opts){ .path = c->output_is_dir ? NULL : c->output,
					      .dir = c->output_is_dir ? c->output : NULL,
					      .rotate_bytes = c->rotate_bytes,
					      .rotate_secs = c->rotate_secs,
					      .filename_template = c->filename_template });
		if (!a->jsonl)
			return p_err("cannot write JSONL to %s: %s", c->output,
				     safefile_strerror(errno)),
			       -1;
	}
	if (c->console != CONSOLE_OFF) {
		a->console = console__new(&(struct console_opts){
			.pretty = c->console == CONSOLE_PRETTY, .fd = STDOUT_FILENO });
		if (!a->console)
			return p_err("cannot set up the console: %s", strerror(errno)), -1;
	}
	if (open_otlp(a))
		return -1;
	a->start_ns = clock_ns(CLOCK_MONOTONIC);
	a->agg = aggregator__new(&(struct agg_opts){ .window_minutes = c->window_minutes,
						     .max_errors = c->max_errors,
						     .start_ns = a->start_ns });
	if (!a->agg)
		return p_err("cannot set up statistics: %s", strerror(errno)), -1;
	if (c->sample_hz > 0 || c->offcpu) {
		struct profile_opts po = {
			.interps = a->interps,
			.sample_hz = c->sample_hz,
		};

		a->profile = profile__new(&po);
		if (!a->profile)
			return p_err("cannot set up the profiler: %s", strerror(errno)), -1;
		/* Stacks queue apart from requests: a sample never takes a
		 * record's place, and their losses are counted apart. */
		a->stacks = collector__new(
			&(struct collector_opts){ .item_size = sizeof(struct pbpf_stack_event),
						  .queue_size = 8192,
						  .batch_max = 256,
						  .flush_interval_ns = 100000000,
						  .drop_oldest = true,
						  .sink = stacks_sink,
						  .ctx = a });
		if (!a->stacks)
			return p_err("cannot start the stack collector: %s", strerror(errno)), -1;
	}
	a->pipe = (struct pipeline){ .realtime_offset_ns =
					     clock_ns(CLOCK_REALTIME) - clock_ns(CLOCK_MONOTONIC),
				     .sample_rate = c->sample,
				     .filter = a->filter,
				     .jsonl = a->jsonl,
				     .console = a->console,
				     .otlp = a->otlp,
				     .agg = a->agg,
				     .profile = a->profile,
				     .profile_every_ns = 10000000000ULL };
	a->pipe.stacks = a->stacks;
	if (a->cfg.http_addr && !(a->pipe.prom = a->prom = prom__new(&(struct prom_opts){
					  .k8s_labels = c->all, .instance = k8smeta_host_name() })))
		return p_err("cannot set up --http's metrics: %s", strerror(errno)), -1;
	a->pipe.meta = k8smeta_cache__new(4096);
	if (!a->pipe.meta)
		return p_err("cannot allocate: %s", strerror(errno)), -1;
	a->collector = collector__new(
		&(struct collector_opts){ .item_size = sizeof(struct pbpf_req_event),
					  .copy = request_event_copy,
					  .queue_size = c->queue_size,
					  .batch_max = c->batch_max,
					  .flush_interval_ns = c->flush_interval_s * 1e9,
					  .drop_oldest = c->drop_oldest,
					  .sink = pipeline_sink,
					  .tick = pipeline_tick,
					  .ctx = &a->pipe });
	if (!a->collector)
		return p_err("cannot start the collector: %s", strerror(errno)), -1;
	return 0;
}

static int open_live(struct app *a)
{
	struct live_opts lo = {
		.mode = a->cfg.dashboard ? LIVE_DASHBOARD
			: a->cfg.table	 ? LIVE_TABLE
					 : LIVE_NONE,
		.interval_s = a->cfg.interval_s,
		.stats_json = a->cfg.stats_json,
		.window_minutes = a->cfg.window_minutes,
		.start_ns = a->start_ns,
		.header = { .pid = a->targets[0].t.pid },
		.profile = a->profile,
	};
	struct dash_header *h = &lo.header;

	snprintf(h->process, sizeof(h->process), "%s", a->targets[0].t.comm);
	if (a->ntargets > 1)
		snprintf(h->process + strlen(h->process), sizeof(h->process) - strlen(h->process),
			 " +%d more", a->ntargets - 1);
	target_server_kind(h->pid, h->server, sizeof(h->server));
	for (int i = 0; i < a->ntargets; i++) {
		size_t n = strlen(h->python);

		snprintf(h->python + n, sizeof(h->python) - n, "%s%s", i ? ", " : "",
			 a->targets[i].t.py_version);
	}
	if (lo.mode == LIVE_NONE && !lo.stats_json)
		return 0;
	a->live = live__new(&lo, a->agg);
	if (!a->live)
		return p_err("cannot start the live view: %s", strerror(errno)), -1;
	return 0;
}

static void live_counters(struct app *a, struct live_counters *c)
{
	struct collector_stats cs;
	struct pbpf_stats bs;
	int64_t ended;

	collector__stats(a->collector, &cs);
	loader__stats(a->loader, &bs);
	c->events = cs.enqueued;
	c->lost = bs.ringbuf_drops + bs.inflight_drops + cs.dropped;
	/* Started and not yet ended, leaving out ends of requests begun before attach. */
	ended = (int64_t)bs.request_ends - (int64_t)bs.no_start;
	c->inflight = (int64_t)bs.request_starts - ended;
	if (c->inflight < 0)
		c->inflight = 0;
}

/* --http: listens before anything is attached, so a taken port fails fast. */
static int open_http(struct app *a)
{
	const struct config *c = &a->cfg;
	struct sockaddr_storage ss;
	socklen_t len;
	char msg[512];

	if (!c->http_addr)
		return 0;
	a->http = http__new(&(struct http_opts){ .addr = c->http_addr,
						 .prefix = c->ui_prefix,
						 .token = c->ui_token,
						 .agg = a->agg,
						 .prom = a->prom,
						 .profile = a->profile,
						 .window_minutes = c->window_minutes },
			    msg, sizeof(msg));
	if (!a->http)
		return p_err("%s", msg), -1;
	p_info("serving /metrics and the page %s/ on port %d%s",
	       c->ui_prefix ? c->ui_prefix : "/_profilis", http__port(a->http),
	       c->ui_token ? " (bearer token required)" : "");
	http_parse_addr(c->http_addr, &ss, &len, msg, sizeof(msg)); /* checked by cli.c */
	if (!http_addr_loopback((struct sockaddr *)&ss))
		p_warn("--http %s is not a loopback address: other machines can reach it%s",
		       c->http_addr,
		       c->ui_token ? "" : " and, without --ui-token, read every route and error");
	if (c->ui_token_on_argv)
		p_warn("--ui-token is visible to every user in ps; PROFILIS_UI_TOKEN is not");
	return 0;
}

/* The health counters /metrics and agent.json show, read here on the main
 * thread once a second.  jsonl/console counters are read while the
 * pipeline updates them: a whole 64-bit load, at worst one batch old. */
static void publish_health(struct app *a, int64_t now)
{
	struct prom_health h = { .version = strchr(argp_program_version, ' ') + 1 };
	struct jsonl_stats js = { 0 };
	struct console_stats con = { 0 };
	struct collector_stats cs;
	struct pbpf_stats bs;

	if (!a->http || now < a->next_health_ns)
		return;
	a->next_health_ns = now + 1000000000LL;
	collector__stats(a->collector, &cs);
	loader__stats(a->loader, &bs);
	if (a->jsonl)
		jsonl__stats(a->jsonl, &js);
	if (a->console)
		console__stats(a->console, &con);
	h.start_time_s = (a->start_ns + a->pipe.realtime_offset_ns) / 1e9;
	h.events = cs.enqueued;
	h.lost_ringbuf = bs.ringbuf_drops;
	h.lost_inflight = bs.inflight_drops;
	h.lost_queue = cs.dropped;
	h.lost_write = js.write_errors + con.write_errors;
	h.malformed = __atomic_load_n(&a->pipe.malformed, __ATOMIC_RELAXED);
	h.stack_samples_lost = bs.sample_drops;
	h.queue_depth = cs.depth;
	h.queue_size = a->cfg.queue_size;
	h.traced_processes = loader__traced_count(a->loader);
	if (a->otlp) {
		struct otlp_stats os;

		otlp__stats(a->otlp, &os);
		h.otlp = true;
		h.otlp_sent = os.sent;
		h.otlp_queue_full = os.queue_full;
		h.otlp_rejected = os.rejected;
		h.otlp_gave_up = os.gave_up;
		h.otlp_at_exit = os.at_exit;
		h.otlp_unencodable = os.unencodable;
	}
	http__set_health(a->http, &h);
}

static int attach(struct app *a)
{
	static struct router_sinks sinks = { .request = on_request,
					     .stack = on_stack,
					     .exec = on_exec,
					     .first_seen = on_first_seen };
	struct pbpf_filter_cfg fcfg;
	char msg[1024];

	sinks.ctx = a;
	filter__bpf_config(a->filter, a->cfg.sample, a->cfg.keep_errors, &fcfg);
	a->loader = loader__new(&(struct loader_opts){ .filter = &fcfg,
						       .ringbuf_bytes = a->cfg.ringbuf_bytes,
						       .sinks = &sinks,
						       .libbpf_verbose = a->cfg.verbosity >= 2,
						       .sample_hz = a->cfg.sample_hz,
						       .max_depth = a->cfg.max_depth,
						       .offcpu = a->cfg.offcpu,
						       .max_procs = a->cfg.max_procs,
						       .max_inflight = a->cfg.max_inflight,
						       .discover_all = a->cfg.all },
				msg, sizeof(msg));
	if (!a->loader) {
		p_err("%s", msg);
		return -1;
	}
	a->procs = procs__new(
		&(struct procs_opts){ .map_fd = loader__procs_fd(a->loader),
				      .max_procs = loader__max_procs(a->loader),
				      .interps = a->interps,
				      .probe = loader__probe,
				      .probe_ctx = a->loader,
				      .select = selector_active(&a->cfg.select) ? selected : NULL,
				      .select_ctx = a,
				      .discover = a->cfg.all });
	if (!a->procs)
		return p_err("cannot allocate: %s", strerror(errno)), -1;
	for (int i = 0; i < a->ntargets; i++) {
		const struct target *t = &a->targets[i].t;

		if (procs__trace_tree(a->procs, &a->targets[i], msg, sizeof(msg))) {
			p_err("%s", msg);
			return -1;
		}
		p_info("attached to PID %d (%s, CPython %s, %s%s)%s", t->pid, t->comm,
		       t->py_version, t->interp, t->is_lib ? "" : ", static",
		       i == a->ntargets - 1 && !a->cfg.all ? "; Ctrl-C to stop" : "");
	}
	if (a->cfg.all)
		p_info("tracing every CPython on this node: %d now, new ones as they start; "
		       "Ctrl-C to stop",
		       procs__discover(a->procs));
	p_dbg("tracing %d process(es); waiting for Flask requests (Flask may not be "
	      "imported yet)",
	      loader__traced_count(a->loader));
	return open_live(a);
}

/* Backpressure and losses are reported as they happen, at most every 5 s. */
static void warn_pressure(struct app *a, int64_t now)
{
	struct collector_stats cs;
	struct pbpf_stats bs;
	uint64_t klost;

	if (now < a->next_warn_ns)
		return;
	collector__stats(a->collector, &cs);
	loader__stats(a->loader, &bs);
	klost = bs.ringbuf_drops + bs.inflight_drops;
	if (cs.depth * 5 > (uint64_t)a->cfg.queue_size * 4)
		p_warn("queue %zu%% full (%zu of %ld): the exporters are slower than the service",
		       cs.depth * 100 / a->cfg.queue_size, cs.depth, a->cfg.queue_size);
	if (cs.dropped > a->warned_dropped)
		p_warn("dropped %llu oldest queued events (%llu in all); raise --queue-size "
		       "or use --no-drop-oldest",
		       (unsigned long long)(cs.dropped - a->warned_dropped),
		       (unsigned long long)cs.dropped);
	if (klost > a->warned_kernel_lost)
		p_warn("lost %llu events in the kernel (ring buffer or in-flight table full; "
		       "%llu in all); raise --ringbuf-mb or --max-inflight",
		       (unsigned long long)(klost - a->warned_kernel_lost),
		       (unsigned long long)klost);
	if (cs.dropped > a->warned_dropped || klost > a->warned_kernel_lost ||
	    cs.depth * 5 > (uint64_t)a->cfg.queue_size * 4)
		a->next_warn_ns = now + 5000000000LL;
	a->warned_dropped = cs.dropped;
	a->warned_kernel_lost = klost;
}

static int any_target_alive(const struct app *a)
{
	if (a->cfg.all)
		return 1; /* a node agent outlives every process */
	for (int i = 0; i < a->ntargets; i++)
		if (target_alive(a->targets[i].t.pid))
			return 1;
	return 0;
}

/* Returns why the loop ended: 0 stopped or duration over, 1 targets exited. */
static int run_loop(struct app *a)
{
	int64_t deadline = a->cfg.duration_s > 0
				   ? clock_ns(CLOCK_MONOTONIC) + (int64_t)(a->cfg.duration_s * 1e9)
				   : 0;
	int64_t next_check = 0;

	while (!stop_signal) {
		int64_t now;

		/* Exec'd processes wait to be resolved: look again soon. */
		if (loader__poll(a->loader, procs__busy(a->procs) ? 10 : 100) < 0)
			break;
		now = clock_ns(CLOCK_MONOTONIC);
		if (a->live) {
			struct live_counters lc;

			live_counters(a, &lc);
			if (live__tick(a->live, now, &lc))
				return 0;
		}
		warn_pressure(a, now);
		publish_health(a, now);
		otlp__report(a->otlp, now);
		if (a->profile)
			profile__tick(a->profile, now);
		if (deadline && now >= deadline)
			return 0;
		if (a->console && console__closed(a->console) && !a->jsonl) {
			p_info("standard output was closed; stopping");
			return 0;
		}
		procs__retrack(a->procs, now, loader__execs(a->loader));
		if (now >= next_check) {
			next_check = now + 200000000LL;
			if (!any_target_alive(a))
				return 1;
		}
	}
	return 0;
}

/* Everything the stages dropped or could not record, besides the first line's
 * request losses; silent when all are zero. */
static void summarize_other_losses(struct app *a, const struct pbpf_stats *bs,
				   const struct jsonl_stats *js)
{
	struct router_stats rs;
	struct procs_stats ps;

	loader__router_stats(a->loader, &rs);
	if (rs.too_short || rs.unknown_kind)
		p_warn("%llu ring-buffer records were dropped unread: %llu shorter than their "
		       "kind, %llu of an unknown kind",
		       (unsigned long long)(rs.too_short + rs.unknown_kind),
		       (unsigned long long)rs.too_short, (unsigned long long)rs.unknown_kind);
	procs__stats(a->procs, &ps);
	if (bs->execs)
		p_info("%llu traced processes called exec: %llu traced again as CPython, %llu "
		       "not (their children still are), %llu exited first",
		       (unsigned long long)bs->execs, (unsigned long long)ps.exec_resolved,
		       (unsigned long long)ps.exec_not_python, (unsigned long long)ps.exec_gone);
	if (a->cfg.all)
		p_info("--all: %llu CPython processes traced, %llu left out by the selectors, "
		       "%llu of unsupported versions",
		       (unsigned long long)ps.discovered, (unsigned long long)ps.not_selected,
		       (unsigned long long)ps.unsupported);
	if (ps.pending_overflow || bs->exec_report_drops || ps.set_full)
		p_warn("processes that started may be missing: %llu exec reports over the "
		       "pending limit, %llu lost in a full ring buffer, %llu past --max-procs",
		       (unsigned long long)ps.pending_overflow,
		       (unsigned long long)bs->exec_report_drops, (unsigned long long)ps.set_full);
	if (a->pipe.malformed)
		p_warn("%llu events could not be decoded (malformed) and were not recorded",
		       (unsigned long long)a->pipe.malformed);
	if (bs->forks_untracked)
		p_warn("%llu child processes were not traced: the traced set (--max-procs %u) "
		       "was full; their requests are missing",
		       (unsigned long long)bs->forks_untracked, loader__max_procs(a->loader));
	if (bs->frame_missing)
		p_warn("%llu request contexts were popped outside Flask.wsgi_app and gave no "
		       "record: a stream_with_context body (Flask 3), test_request_context, or "
		       "an unreadable frame",
		       (unsigned long long)bs->frame_missing);
	if (bs->sample_drops)
		p_warn("%llu stack samples lost (kernel ring buffer full); raise --ringbuf-mb",
		       (unsigned long long)bs->sample_drops);
	if (js->other_errors)
		p_warn("%llu PROFILE records lost to failed writes",
		       (unsigned long long)js->other_errors);
}

static void summarize(struct app *a)
{
	struct collector_stats cs;
	struct jsonl_stats js = { 0 };
	struct console_stats con = { 0 };
	struct pbpf_stats bs;
	unsigned long long recorded, write_errors;
	unsigned long long user_excluded = filter__excluded_count(a->filter);

	collector__stats(a->collector, &cs);
	loader__stats(a->loader, &bs);
	if (a->jsonl)
		jsonl__stats(a->jsonl, &js);
	if (a->console)
		console__stats(a->console, &con);
	/* With no exporter (dashboard, --table) a request counts once aggregated. */
	recorded = a->jsonl	? js.written
		   : a->console ? con.written
				: a->pipe.decoded - user_excluded;
	write_errors = a->jsonl ? js.write_errors : con.write_errors;
	p_info("%llu requests recorded, %llu lost (kernel ring buffer full %llu, in-flight "
	       "table full %llu, queue drops %llu, write errors %llu); %llu sampled out, "
	       "%llu excluded (%llu in the kernel); %llu began before attach",
	       recorded,
	       (unsigned long long)(bs.ringbuf_drops + bs.inflight_drops + cs.dropped) +
		       write_errors,
	       (unsigned long long)bs.ringbuf_drops, (unsigned long long)bs.inflight_drops,
	       (unsigned long long)cs.dropped, write_errors, (unsigned long long)bs.unsampled,
	       (unsigned long long)bs.excluded + user_excluded, (unsigned long long)bs.excluded,
	       (unsigned long long)bs.no_start);
	summarize_other_losses(a, &bs, &js);
	otlp__summary(a->otlp);
	if (a->jsonl && js.files)
		p_info("%llu JSONL files written to %s", (unsigned long long)js.files,
		       a->cfg.output);
	if (js.rename_failures)
		p_warn("%llu of them could not be renamed by --filename-template and were kept as "
		       "profilis-unrenamed-*.jsonl (or, where even that failed, under their "
		       "hidden .profilis-active-* name)",
		       (unsigned long long)js.rename_failures);
	if (js.deleted_files)
		p_warn("%llu JSONL files were deleted by someone else while being written, with "
		       "%llu bytes of records (counted as recorded: profilis-bpf wrote them)",
		       (unsigned long long)js.deleted_files, (unsigned long long)js.deleted_bytes);
	if (cs.enqueued != cs.exported + cs.dropped)
		p_err("internal: collector enqueued %llu != exported %llu + dropped %llu",
		      (unsigned long long)cs.enqueued, (unsigned long long)cs.exported,
		      (unsigned long long)cs.dropped);
	p_dbg("collector: %llu enqueued, %llu exported in %llu batches, high water %llu; "
	      "bpf: %llu context-var traps, %llu starts, %llu ends, %llu read failures, "
	      "%llu forks followed, %llu nested context pushes (%llu of their pops), %llu stack "
	      "samples, %llu blocked stacks, %llu stacks cut at --max-depth; attribute lookups: "
	      "%llu from the cache, %llu scanned; %llu dicts scanned (not found by hash); "
	      "%llu facts learned",
	      (unsigned long long)cs.enqueued, (unsigned long long)cs.exported,
	      (unsigned long long)cs.batches, (unsigned long long)cs.high_water,
	      (unsigned long long)bs.ctxvar_hits, (unsigned long long)bs.request_starts,
	      (unsigned long long)bs.request_ends, (unsigned long long)bs.read_failures,
	      (unsigned long long)bs.forks_tracked, (unsigned long long)bs.nested_pushes,
	      (unsigned long long)bs.nested_pops, (unsigned long long)bs.cpu_samples,
	      (unsigned long long)bs.offcpu_stacks, (unsigned long long)bs.stack_truncated,
	      (unsigned long long)bs.attr_cache_hits, (unsigned long long)bs.attr_cache_misses,
	      (unsigned long long)bs.dict_scans, (unsigned long long)bs.facts_learned);
}

/* The routes table at exit: stdout when it is not carrying JSONL. */
static void print_summary_table(struct app *a)
{
	FILE *out = a->cfg.console == CONSOLE_OFF ? stdout : stderr;
	struct live *l;

	l = live__new(&(struct live_opts){ .mode = LIVE_NONE,
					   .window_minutes = a->cfg.window_minutes },
		      a->agg);
	if (!l)
		return;
	live__summary(l, clock_ns(CLOCK_MONOTONIC), out);
	live__free(l);
}

/* --folded and --speedscope are written once, at exit, from everything seen
 * (main has already given every pending sample its route). */
static void write_profiles(struct app *a)
{
	struct collector_stats cs;
	struct profile_stats ps;
	int err;

	if (!a->profile)
		return;
	profile__stats(a->profile, &ps);
	p_info("profile: %llu stack samples (%llu without the GIL, %llu outside Python), "
	       "%llu blocked stacks (%.1f s), %llu cut at --max-depth",
	       (unsigned long long)ps.samples, (unsigned long long)ps.no_gil,
	       (unsigned long long)ps.no_python, (unsigned long long)ps.offcpu_stacks,
	       ps.offcpu_ns / 1e9, (unsigned long long)ps.truncated);
	if (ps.capped)
		p_info("profile: %llu routes, frames or stacks past their caps were folded into "
		       "(other) buckets",
		       (unsigned long long)ps.capped);
	collector__stats(a->stacks, &cs);
	if (cs.dropped)
		p_warn("profile: %llu stack events dropped: symbolization fell behind the sampler "
		       "(lower -F)",
		       (unsigned long long)cs.dropped);
	if (ps.oom || ps.dropped)
		p_warn("profile: %llu allocations failed; %llu samples or blocked stacks were not "
		       "kept",
		       (unsigned long long)ps.oom, (unsigned long long)ps.dropped);
	p_dbg("profile: symbols of %llu exited processes dropped; %llu routes, %llu frames, "
	      "%llu stacks, %llu cells, %llu cached code objects",
	      (unsigned long long)ps.exited_procs, (unsigned long long)ps.routes,
	      (unsigned long long)ps.frames, (unsigned long long)ps.stacks,
	      (unsigned long long)ps.cells, (unsigned long long)ps.symbols);
	if (a->cfg.folded && (err = profile__write_folded(a->profile, a->cfg.folded)))
		p_err("cannot write --folded %s: %s", a->cfg.folded, safefile_strerror(err));
	if (a->cfg.speedscope && (err = profile__write_speedscope(a->profile, a->cfg.speedscope)))
		p_err("cannot write --speedscope %s: %s", a->cfg.speedscope,
		      safefile_strerror(err));
}

static void teardown(struct app *a)
{
	/* Stop serving first: the server reads the stages freed below. */
	http__free(a->http);
	/* Detach first so nothing new arrives, then let the queue empty. */
	loader__free(a->loader);
	procs__free(a->procs);
	collector__free(a->collector);
	collector__free(a->stacks);
	live__free(a->live);
	jsonl__free(a->jsonl);
	console__free(a->console);
	otlp__free(a->otlp);
	filter__free(a->filter);
	aggregator__free(a->agg);
	prom__free(a->prom);
	profile__free(a->profile);
	interps__free(a->interps);
	k8smeta_cache__free(a->pipe.meta);
}

int main(int argc, char **argv)
{
	static struct app a;
	int rc = 1, why;

	if (cli_parse(argc, argv, &a.cfg))
		return EXIT_USAGE;
	if (a.cfg.check)
		return checks_run(stdout);
	if (a.cfg.list)
		return proclist_run(stdout) >= 0 ? 0 : 1;
	log_set_level(a.cfg.quiet ? LOG_WARN : a.cfg.verbosity ? LOG_DEBUG : LOG_INFO);
	safefile_set_mode(a.cfg.file_mode);
	install_signals();
	a.interps = interps__new();
	if (!a.interps)
		return p_err("cannot allocate: %s", strerror(errno)), 1;
	if (check_machine(&a) || open_exporters(&a) || open_http(&a) || attach(&a))
		goto cleanup;
	why = run_loop(&a);
	loader__drain(a.loader);
	collector__stop(a.collector);
	collector__stop(a.stacks);
	/* Every span is queued now: a last flush with a short deadline. */
	otlp__finish(a.otlp, OTLP_EXIT_FLUSH_NS);
	/* Losses since the last (rate-limited) warning are reported too. */
	a.next_warn_ns = 0;
	warn_pressure(&a, clock_ns(CLOCK_MONOTONIC));
	if (a.profile) {
		/* Every sample has its route by now: the last PROFILE records. */
		profile__tick(a.profile, UINT64_MAX / 2);
		pipeline_profile_records(&a.pipe, clock_ns(CLOCK_MONOTONIC));
	}
	jsonl__finish(a.jsonl);
	/* Leave the dashboard's screen before printing anything. */
	live__free(a.live);
	a.live = NULL;
	print_summary_table(&a);
	/* The summary below says what was recorded and what was lost. */
	if (why == 1 && a.ntargets > 1)
		p_info("all %d PIDs given with -p exited; tracing stopped", a.ntargets);
	else if (why == 1)
		p_info("PID %d exited; tracing stopped", a.targets[0].t.pid);
	summarize(&a);
	write_profiles(&a);
	rc = 0;
cleanup:
	teardown(&a);
	return rc;
}
