/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Command line and environment: argp parsing with range-checked numbers into
 * a config.  Precedence: flags, then PROFILIS_* variables, then defaults.
 */
#ifndef PROFILIS_CLI_H
#define PROFILIS_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include "selector.h"

#define EXIT_USAGE 64
#define CLI_EXCLUDE_MAX 64
#define CLI_PID_MAX 64 /* -p given this many times */

enum console_mode { CONSOLE_AUTO, CONSOLE_OFF, CONSOLE_COMPACT, CONSOLE_PRETTY };

struct config {
	pid_t pids[CLI_PID_MAX]; /* -p, in the order given */
	int n_pids;
	bool check;		/* --check: report machine support, exit */
	bool list;		/* --list: Python processes, exit */
	bool all;		/* --all: every CPython on the node */
	struct selector select; /* --k8s-namespace & co., with --all */
	double duration_s;	/* 0: until interrupted */
	int verbosity;		/* 0 normal, 1 -v, 2 -vv */
	int quiet;
	size_t ringbuf_bytes;
	int max_procs; /* BPF map sizes */
	int max_inflight;
	/* collector */
	long queue_size;
	long batch_max;
	double flush_interval_s;
	bool drop_oldest;
	/* requests */
	double sample;
	bool keep_errors;
	const char *exclude[CLI_EXCLUDE_MAX]; /* prefixes, or "re:REGEX" */
	int n_exclude;
	/* JSONL */
	const char *output; /* NULL: none (console on stdout) */
	bool output_is_dir;
	long long rotate_bytes; /* 0: no size rotation */
	double rotate_secs;	/* 0: no time rotation */
	const char *filename_template;
	mode_t file_mode; /* of files we create (--file-mode) */
	/* console */
	enum console_mode console;
	/* live statistics */
	bool dashboard; /* resolved: stdout is a terminal, no --console */
	bool table;	/* --table: plain table every interval */
	double interval_s;
	int window_minutes;
	int max_errors;
	const char *stats_json;
	/* stack sampling */
	int sample_hz; /* -F, 0 = off */
	int max_depth;
	bool offcpu;
	const char *folded;
	const char *speedscope;
	/* HTTP endpoint (off when http_addr is NULL) */
	const char *http_addr; /* --http HOST:PORT */
	const char *ui_prefix; /* --ui-prefix, default /_profilis */
	const char *ui_token;  /* --ui-token or PROFILIS_UI_TOKEN; NULL: none */
	bool ui_token_on_argv; /* given as --ui-token: visible in ps */
	/* OTLP traces: --otlp-endpoint and the OTEL_* variables, then the URL
	 * cli_validate resolves from them ("" = no OTLP export). */
	const char *otlp_endpoint;	      /* --otlp-endpoint (a base URL) */
	const char *otlp_env_endpoint;	      /* OTEL_EXPORTER_OTLP_ENDPOINT */
	const char *otlp_env_traces_endpoint; /* OTEL_EXPORTER_OTLP_TRACES_ENDPOINT */
	const char *otlp_protocol;	      /* OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL */
	bool otlp_env_off;		      /* OTEL_TRACES_EXPORTER=none */
	const char *otlp_headers;	      /* OTEL_EXPORTER_OTLP_HEADERS */
	const char *otlp_traces_headers;      /* OTEL_EXPORTER_OTLP_TRACES_HEADERS */
	const char *otlp_resource_attrs;      /* OTEL_RESOURCE_ATTRIBUTES */
	const char *otlp_service_name;	      /* OTEL_SERVICE_NAME */
	char otlp_url[2048];		      /* resolved (OTLP_URL_MAX) */
};

/*
 * Parses argv and the environment into cfg and validates the result.
 * Returns 0, or EXIT_USAGE after printing a message that names the option
 * (or variable) and the accepted range.
 */
int cli_parse(int argc, char **argv, struct config *cfg);

/* The checks cli_parse runs after parsing; 0 or -EINVAL with msg set. */
int cli_validate(struct config *cfg, char *msg, size_t msglen);

#endif
