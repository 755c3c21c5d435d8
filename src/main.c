// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Composition root: parse the command line, check the machine, resolve the
 * target, wire loader -> request decoder -> JSONL exporter, run until
 * interrupted, the duration ends or the target exits, and report.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "cli.h"
#include "export_jsonl.h"
#include "loader.h"
#include "log.h"
#include "preflight.h"
#include "pyoffsets.h"
#include "request.h"
#include "target.h"

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
	if (stop_signal)
		_exit(128 + sig); /* second signal: leave now */
	stop_signal = sig;
}

struct run {
	struct jsonl_exporter *out;
	int64_t realtime_offset_ns;
	uint64_t requests, decode_errors;
	int flask_seen;
};

static int on_event(void *ctx, const struct pbpf_req_event *e)
{
	struct run *run = ctx;
	struct request_record r;

	if (e->kind == PBPF_EV_FIRST_SEEN) {
		run->flask_seen = 1;
		p_dbg("first Flask request context seen in PID %u", e->pid);
		return 0;
	}
	if (request_decode(e, run->realtime_offset_ns, &r)) {
		run->decode_errors++;
		return 0;
	}
	run->requests++;
	jsonl__push(run->out, &r);
	return 0;
}

static int64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void install_signals(void)
{
	struct sigaction sa = { .sa_handler = on_signal };

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

static int check_machine(const struct config *cfg, struct target *t)
{
	char msg[1024];

	if (preflight_capabilities(msg, sizeof(msg)) ||
	    preflight_btf("/sys/kernel/btf/vmlinux", msg, sizeof(msg)) ||
	    target_resolve(cfg->pid, t, msg, sizeof(msg))) {
		p_err("%s", msg);
		return -1;
	}
	if (!pyoffsets_find(t->py_major, t->py_minor)) {
		p_err("PID %d (%s) runs CPython %u.%u%s%.0u (%s), which is not supported; "
		      "supported: CPython %s",
		      t->pid, t->comm, t->py_major, t->py_minor, t->py_micro ? "." : "",
		      t->py_micro, t->interp, pyoffsets_supported());
		return -1;
	}
	return 0;
}

/* Returns why the loop ended: 0 stopped or duration over, 1 target exited. */
static int run_loop(struct loader *l, struct run *run, const struct config *cfg)
{
	int64_t deadline = cfg->duration_s > 0
				   ? clock_ns(CLOCK_MONOTONIC) + (int64_t)(cfg->duration_s * 1e9)
				   : 0;
	int64_t next_check = 0;

	while (!stop_signal) {
		int64_t now;

		if (loader__poll(l, 100) < 0)
			break;
		jsonl__flush(run->out);
		now = clock_ns(CLOCK_MONOTONIC);
		if (deadline && now >= deadline)
			return 0;
		if (now >= next_check) {
			next_check = now + 200000000LL;
			if (!target_alive(cfg->pid))
				return 1;
		}
	}
	return 0;
}

static void summarize(struct loader *l, struct run *run)
{
	struct pbpf_stats s;
	struct jsonl_stats js;
	unsigned long long lost;

	loader__stats(l, &s);
	jsonl__stats(run->out, &js);
	lost = s.ringbuf_drops + s.inflight_drops + js.write_errors;
	p_info("%llu requests recorded, %llu lost (ring buffer full %llu, in-flight table "
	       "full %llu, write errors %llu); %llu began before attach",
	       (unsigned long long)run->requests, lost, (unsigned long long)s.ringbuf_drops,
	       (unsigned long long)s.inflight_drops, (unsigned long long)js.write_errors,
	       (unsigned long long)s.no_start);
	p_dbg("bpf: %llu context-var traps, %llu starts, %llu ends, %llu without a wsgi_app "
	      "frame, %llu read failures, %llu forks followed",
	      (unsigned long long)s.ctxvar_hits, (unsigned long long)s.request_starts,
	      (unsigned long long)s.request_ends, (unsigned long long)s.frame_missing,
	      (unsigned long long)s.read_failures, (unsigned long long)s.forks_tracked);
}

int main(int argc, char **argv)
{
	struct config cfg;
	struct target t;
	struct run run = { 0 };
	struct loader *l = NULL;
	char msg[1024];
	int rc = 1, why;

	if (cli_parse(argc, argv, &cfg))
		return EXIT_USAGE;
	log_set_level(cfg.quiet ? LOG_WARN : cfg.verbosity ? LOG_DEBUG : LOG_INFO);
	install_signals();
	if (check_machine(&cfg, &t))
		return 1;
	if (t.pid != cfg.pid) {
		p_info("%d is a thread of PID %d; tracing PID %d", cfg.pid, t.pid, t.pid);
		cfg.pid = t.pid;
	}
	run.out = jsonl__new(&(struct jsonl_opts){ .path = cfg.output });
	if (!run.out) {
		p_err("cannot open %s for writing: %s", cfg.output, strerror(errno));
		return 1;
	}
	run.realtime_offset_ns = clock_ns(CLOCK_REALTIME) - clock_ns(CLOCK_MONOTONIC);
	l = loader__new(&(struct loader_opts){ .target = &t,
					       .offsets = &pyoffsets_find(t.py_major, t.py_minor)->off,
					       .ringbuf_bytes = cfg.ringbuf_bytes,
					       .on_event = on_event, .ctx = &run,
					       .libbpf_verbose = cfg.verbosity >= 2 },
			msg, sizeof(msg));
	if (!l) {
		p_err("%s", msg);
		goto cleanup;
	}
	p_info("attached to PID %d (%s, CPython %u.%u.%u, %s%s); Ctrl-C to stop", t.pid, t.comm,
	       t.py_major, t.py_minor, t.py_micro, t.interp, t.is_lib ? "" : ", static");
	p_dbg("tracing %d process(es); waiting for Flask requests (Flask may not be "
	      "imported yet)", loader__traced_count(l));
	why = run_loop(l, &run, &cfg);
	loader__drain(l);
	jsonl__flush(run.out);
	if (why == 1)
		p_info("PID %d exited; everything it sent was written", cfg.pid);
	summarize(l, &run);
	rc = 0;
cleanup:
	loader__free(l);
	jsonl__free(run.out);
	return rc;
}
