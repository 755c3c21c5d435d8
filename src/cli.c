// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The argp command line and the PROFILIS_* environment.  Every number is
 * parsed whole and range checked by one helper, so a flag and its variable
 * get the same message: the option's name and the accepted range.  Nothing
 * is attached before all of this has passed.
 */
#include <argp.h>
#include <errno.h>
#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "cli.h"
#include "http_auth.h"
#include "http_route.h"
#include "jsonl.h"
#include "otlp_config.h"
#include "safefile.h"

const char *argp_program_version = "profilis-bpf 0.2";
const char *argp_program_bug_address = "the profilis-bpf issue tracker";

static const char doc[] =
	"profilis-bpf -- request spans from a running Flask service, from outside the process\n"
	"\n"
	"Attaches uprobes to the CPython interpreter of PID (and of every process it\n"
	"forks: a gunicorn master PID covers its workers, re-spawned ones included)\n"
	"-- or of several PIDs, each with its own CPython version, at once --\n"
	"and writes one JSON line per HTTP request: method, path, route template,\n"
	"endpoint, status, duration, exception type and W3C trace ids.  No code\n"
	"change, no restart.  Supported: CPython 3.9 to 3.15 with Flask >= 2.2."
	"\v"
	"Examples:\n"
	"  sudo profilis-bpf -p $(pgrep -o gunicorn)          # until Ctrl-C\n"
	"  sudo profilis-bpf -p 4123 -d 60 -o requests.jsonl  # one minute, to a file\n"
	"  sudo profilis-bpf -p 4123 -o /var/log/profilis --rotate-secs 3600\n"
	"  sudo profilis-bpf -p 4123 --sample 0.1 --exclude-route /health\n"
	"  sudo profilis-bpf -p 4123 | jq -c 'select(.status >= 500)'\n"
	"  sudo profilis-bpf -p 4123 -p 5210                  # two services at once\n"
	"  sudo PROFILIS_UI_TOKEN=s3cret profilis-bpf -p 4123 --http 127.0.0.1:9464\n"
	"\n"
	"Environment (flags win over variables, variables over defaults):\n"
	"  PROFILIS_SAMPLE_RATE, PROFILIS_QUEUE_SIZE, PROFILIS_BATCH_MAX,\n"
	"  PROFILIS_FLUSH_INTERVAL as the options of those names; PROFILIS_LOG_DIR\n"
	"  as -o DIR; PROFILIS_DEBUG=1 as -v; PROFILIS_UI_TOKEN as --ui-token.\n"
	"  OpenTelemetry: OTEL_EXPORTER_OTLP_ENDPOINT,\n"
	"  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OTEL_EXPORTER_OTLP_[TRACES_]HEADERS,\n"
	"  OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_EXPORTER=none.\n"
	"\n"
	"Needs root, or CAP_SYS_ADMIN and CAP_SYS_PTRACE, and a kernel with BTF.\n"
	"Exit status: 0 done (also when the target exits), 1 runtime failure,\n"
	"64 bad usage.";

enum {
	OPT_RINGBUF = 0x100,
	OPT_QUEUE,
	OPT_BATCH,
	OPT_FLUSH,
	OPT_DROP_OLDEST,
	OPT_NO_DROP_OLDEST,
	OPT_SAMPLE,
	OPT_NO_KEEP_ERRORS,
	OPT_EXCLUDE,
	OPT_ROTATE_BYTES,
	OPT_ROTATE_SECS,
	OPT_TEMPLATE,
	OPT_FILE_MODE,
	OPT_CONSOLE,
	OPT_TABLE,
	OPT_WINDOW,
	OPT_MAX_ERRORS,
	OPT_STATS_JSON,
	OPT_MAX_DEPTH,
	OPT_NO_OFFCPU,
	OPT_FOLDED,
	OPT_SPEEDSCOPE,
	OPT_CHECK,
	OPT_LIST,
	OPT_MAX_PROCS,
	OPT_MAX_INFLIGHT,
	OPT_ALL,
	OPT_K8S_NAMESPACE,
	OPT_K8S_POD,
	OPT_CONTAINER,
	OPT_SERVICE,
	OPT_HTTP,
	OPT_UI_PREFIX,
	OPT_UI_TOKEN,
	OPT_OTLP_ENDPOINT,
};

static const struct argp_option options[] = {
	{ 0, 0, 0, 0, "Target and duration:", 1 },
	{ "pid", 'p', "PID", 0,
	  "Process to trace, with all its descendants (required; repeat for several: "
	  "each may run another CPython version)",
	  1 },
	{ "all", OPT_ALL, 0, 0,
	  "Trace every CPython process on this node, in any container, and every one that "
	  "starts later (a node agent, e.g. a Kubernetes DaemonSet); with -p, those too",
	  1 },
	{ "k8s-namespace", OPT_K8S_NAMESPACE, "NS", 0,
	  "With --all: only pods in namespace NS (from each pod's service-account file)", 1 },
	{ "k8s-pod", OPT_K8S_POD, "GLOB", 0, "With --all: only pods whose name matches GLOB", 1 },
	{ "container", OPT_CONTAINER, "ID-PREFIX", 0,
	  "With --all: only the container whose id starts with ID-PREFIX", 1 },
	{ "service", OPT_SERVICE, "NAME", 0,
	  "With --all: only processes of service NAME (OTEL_SERVICE_NAME, else the app); "
	  "each selector is repeatable: any value of a kind, and every kind given, must match",
	  1 },
	{ "duration", 'd', "SECONDS", 0, "Stop after SECONDS (default: until Ctrl-C/SIGTERM)", 1 },
	{ "list", OPT_LIST, 0, 0,
	  "List the Python processes here (version, server, workers, "
	  "ports, Flask imported?) and exit",
	  1 },
	{ "check", OPT_CHECK, 0, 0,
	  "Report whether this machine can run profilis-bpf (kernel, "
	  "BTF, capabilities, BPF features) and exit",
	  1 },
	{ 0, 0, 0, 0, "Requests:", 2 },
	{ "sample", OPT_SAMPLE, "RATE", 0,
	  "Record this share of requests, 0.0..1.0, decided in the kernel (default 1; "
	  "env PROFILIS_SAMPLE_RATE)",
	  2 },
	{ "no-keep-errors", OPT_NO_KEEP_ERRORS, 0, 0,
	  "Sample 5xx and failed requests too (default: always keep them)", 2 },
	{ "exclude-route", OPT_EXCLUDE, "PREFIX", 0,
	  "Drop requests whose path starts with PREFIX, or matches re:REGEX (POSIX "
	  "extended); repeatable",
	  2 },
	{ 0, 0, 0, 0, "Output:", 3 },
	{ "output", 'o', "PATH", 0,
	  "JSONL to the file PATH (appended), or to rotated files in PATH if it is a "
	  "directory or ends in '/' (env PROFILIS_LOG_DIR)",
	  3 },
	{ "rotate-bytes", OPT_ROTATE_BYTES, "BYTES", 0,
	  "With -o DIR: start a new file past BYTES (suffixes k, M, G)", 3 },
	{ "rotate-secs", OPT_ROTATE_SECS, "SECONDS", 0,
	  "With -o DIR: start a new file every SECONDS, idle or not", 3 },
	{ "filename-template", OPT_TEMPLATE, "TEMPLATE", 0,
	  "With -o DIR: names of finished files; fields {timestamp}, {pid}, {seq} "
	  "(default profilis-{timestamp}.jsonl)",
	  3 },
	{ "file-mode", OPT_FILE_MODE, "OCTAL", 0,
	  "Permissions of the files profilis-bpf creates (JSONL, --stats-json, --folded, "
	  "--speedscope), at most 0666 (default 0600: request paths are private; an "
	  "existing -o FILE keeps its own)",
	  3 },
	{ "console", OPT_CONSOLE, "MODE", 0,
	  "Records on stdout: compact (one JSON per line), pretty (indented) or off "
	  "(default: compact unless -o is given)",
	  3 },
	{ "otlp-endpoint", OPT_OTLP_ENDPOINT, "URL", 0,
	  "Also send every request as an OpenTelemetry SERVER span, OTLP/HTTP JSON, to URL "
	  "(a base such as http://otel-collector:4318: /v1/traces is added; env "
	  "OTEL_EXPORTER_OTLP_ENDPOINT, or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as is; "
	  "OTEL_EXPORTER_OTLP_HEADERS, OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES honoured)",
	  3 },
	{ "verbose", 'v', 0, 0,
	  "Say more on stderr (-vv adds libbpf and verifier logs; "
	  "env PROFILIS_DEBUG=1)",
	  3 },
	{ "quiet", 'q', 0, 0, "Only warnings and errors on stderr", 3 },
	{ 0, 0, 0, 0, "Live statistics:", 4 },
	{ "interval", 'i', "SECONDS", 0,
	  "Redraw the dashboard / table and rewrite --stats-json every SECONDS, "
	  "0.1..3600 (default 1)",
	  4 },
	{ "window-minutes", OPT_WINDOW, "N", 0,
	  "Rolling statistics window, 1..1440 minutes "
	  "(default 15); 'w' switches to the last 10 seconds",
	  4 },
	{ "max-errors", OPT_MAX_ERRORS, "N", 0, "Recent errors kept, 1..100000 (default 100)", 4 },
	{ "table", OPT_TABLE, 0, 0,
	  "Print a plain routes table every interval on stdout "
	  "instead of records (for logs and pipes)",
	  4 },
	{ "stats-json", OPT_STATS_JSON, "FILE", 0,
	  "Rewrite FILE atomically every interval "
	  "with totals, routes and recent errors (Profilis metrics.json superset)",
	  4 },
	{ 0, 0, 0, 0, "Where the time goes (stack sampling):", 5 },
	{ "frequency", 'F', "HZ", 0,
	  "Sample Python stacks of traced threads HZ times a "
	  "second, 0..1000 (default 99; 0 turns sampling off)",
	  5 },
	{ "max-depth", OPT_MAX_DEPTH, "N", 0,
	  "Frames per stack, 1..128 (default 64); deeper "
	  "stacks are cut and counted",
	  5 },
	{ "no-offcpu", OPT_NO_OFFCPU, 0, 0,
	  "Do not record where requests block (sleep, I/O, "
	  "locks)",
	  5 },
	{ "folded", OPT_FOLDED, "FILE", 0,
	  "At exit, write collapsed on-CPU stacks "
	  "(route;frame;frame count) for flamegraph.pl",
	  5 },
	{ "speedscope", OPT_SPEEDSCOPE, "FILE", 0,
	  "At exit, write a speedscope profile "
	  "(one on-CPU and one off-CPU profile per route)",
	  5 },
	{ 0, 0, 0, 0, "Collector:", 6 },
	{ "queue-size", OPT_QUEUE, "N", 0,
	  "Events queued between kernel and exporters, 1..1048576 (default 2048; env "
	  "PROFILIS_QUEUE_SIZE)",
	  6 },
	{ "batch-max", OPT_BATCH, "N", 0,
	  "Events per exporter batch, 1..queue size (default 128; env PROFILIS_BATCH_MAX)", 6 },
	{ "flush-interval", OPT_FLUSH, "SECONDS", 0,
	  "Longest an event waits for its batch, 0.001..60 (default 0.1; env "
	  "PROFILIS_FLUSH_INTERVAL)",
	  6 },
	{ "drop-oldest", OPT_DROP_OLDEST, 0, 0,
	  "When the queue is full, drop its oldest event (default)", 6 },
	{ "no-drop-oldest", OPT_NO_DROP_OLDEST, 0, 0,
	  "When the queue is full, stop reading the kernel ring buffer instead; its "
	  "overflow is counted as lost",
	  6 },
	{ "ringbuf-mb", OPT_RINGBUF, "MB", 0,
	  "Kernel ring buffer size, a power of two "
	  "1..1024 (default 4)",
	  6 },
	{ "max-procs", OPT_MAX_PROCS, "N", 0,
	  "Processes traced at once (the tree and its "
	  "forks), 16..1048576 (default 4096); a child past it is not traced and counted",
	  6 },
	{ "max-inflight", OPT_MAX_INFLIGHT, "N", 0,
	  "Requests in flight at once across the "
	  "traced processes beyond the 4 each thread keeps in its own storage, 64..1048576 "
	  "(default 16384); a start past it is counted lost",
	  6 },
	{ 0, 0, 0, 0, "HTTP endpoint (Prometheus /metrics and the web page):", 7 },
	{ "http", OPT_HTTP, "ADDR", 0,
	  "Serve /metrics (Prometheus) and the web page on HOST:PORT, e.g. 127.0.0.1:9464 "
	  "(a non-loopback address is allowed, with a warning)",
	  7 },
	{ "ui-prefix", OPT_UI_PREFIX, "PREFIX", 0,
	  "Path of the web page and its metrics.json and errors.json (default /_profilis)", 7 },
	{ "ui-token", OPT_UI_TOKEN, "TOKEN", 0,
	  "Every path, /metrics too, needs \"Authorization: Bearer TOKEN\"; the page takes "
	  "?token=TOKEN once (env PROFILIS_UI_TOKEN, which ps does not show)",
	  7 },
	{ 0 },
};

/* Parses a whole number or decimal in [lo, hi]; prints why not and fails. */
static int number(const char *name, const char *text, double lo, double hi, bool integer,
		  double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(text, &end);
	if (errno || end == text || *end || isnan(v) || v < lo || v > hi ||
	    (integer && v != floor(v))) {
		if (integer)
			fprintf(stderr,
				"profilis-bpf: %s: '%s' is not a whole number in "
				"%.0f..%.0f\n",
				name, text, lo, hi);
		else
			fprintf(stderr, "profilis-bpf: %s: '%s' is not a number in %g..%g\n", name,
				text, lo, hi);
		return -1;
	}
	*out = v;
	return 0;
}

/* Sizes accept k/M/G suffixes (powers of 1024). */
static int byte_size(const char *name, const char *text, long long *out)
{
	char buf[64], *end;
	double v, mult = 1;
	size_t n = strlen(text);

	if (n == 0 || n >= sizeof(buf))
		goto bad;
	memcpy(buf, text, n + 1);
	switch (buf[n - 1]) {
	case 'k':
	case 'K':
		mult = 1024;
		buf[n - 1] = 0;
		break;
	case 'm':
	case 'M':
		mult = 1024 * 1024;
		buf[n - 1] = 0;
		break;
	case 'g':
	case 'G':
		mult = 1024.0 * 1024 * 1024;
		buf[n - 1] = 0;
		break;
	}
	errno = 0;
	v = strtod(buf, &end);
	if (errno || end == buf || *end || !(v * mult >= 1) || v * mult > 1e15)
		goto bad;
	*out = (long long)(v * mult);
	return 0;
bad:
	fprintf(stderr,
		"profilis-bpf: %s: '%s' is not a size in bytes (1..1e15, "
		"suffixes k, M, G)\n",
		name, text);
	return -1;
}

static int set_long(const char *name, const char *text, double lo, double hi, long *out)
{
	double v;

	if (number(name, text, lo, hi, true, &v))
		return -1;
	*out = (long)v;
	return 0;
}

static int set_int(const char *name, const char *text, long lo, long hi, int *out)
{
	long v = 0;

	if (set_long(name, text, lo, hi, &v))
		return -1;
	*out = (int)v;
	return 0;
}

/* A set, non-empty variable, else NULL (an empty one counts as unset). */
static const char *env(const char *name)
{
	const char *v = getenv(name);

	return v && *v ? v : NULL;
}

/* The OpenTelemetry exporter variables, checked by check_otlp. */
static void apply_otel_env(struct config *cfg)
{
	const char *v;

	cfg->otlp_env_endpoint = env("OTEL_EXPORTER_OTLP_ENDPOINT");
	cfg->otlp_env_traces_endpoint = env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
	cfg->otlp_protocol = env("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL");
	if (!cfg->otlp_protocol)
		cfg->otlp_protocol = env("OTEL_EXPORTER_OTLP_PROTOCOL");
	cfg->otlp_env_off = (v = env("OTEL_TRACES_EXPORTER")) && strcmp(v, "none") == 0;
	cfg->otlp_headers = env("OTEL_EXPORTER_OTLP_HEADERS");
	cfg->otlp_traces_headers = env("OTEL_EXPORTER_OTLP_TRACES_HEADERS");
	cfg->otlp_resource_attrs = env("OTEL_RESOURCE_ATTRIBUTES");
	cfg->otlp_service_name = env("OTEL_SERVICE_NAME");
}

/* Applies PROFILIS_* variables; flags parsed afterwards override them. */
static int apply_env(struct config *cfg)
{
	const char *v;

	if ((v = getenv("PROFILIS_DEBUG")) && *v && strcmp(v, "0") != 0)
		cfg->verbosity = 1;
	if ((v = getenv("PROFILIS_SAMPLE_RATE")) &&
	    number("PROFILIS_SAMPLE_RATE", v, 0, 1, false, &cfg->sample))
		return -1;
	if ((v = getenv("PROFILIS_QUEUE_SIZE")) &&
	    set_long("PROFILIS_QUEUE_SIZE", v, 1, 1048576, &cfg->queue_size))
		return -1;
	if ((v = getenv("PROFILIS_BATCH_MAX")) &&
	    set_long("PROFILIS_BATCH_MAX", v, 1, 1048576, &cfg->batch_max))
		return -1;
	if ((v = getenv("PROFILIS_FLUSH_INTERVAL")) &&
	    number("PROFILIS_FLUSH_INTERVAL", v, 0.001, 60, false, &cfg->flush_interval_s))
		return -1;
	if ((v = getenv("PROFILIS_UI_TOKEN")) && *v)
		cfg->ui_token = v;
	apply_otel_env(cfg);
	if ((v = getenv("PROFILIS_LOG_DIR")) && *v) {
		cfg->output = v;
		cfg->output_is_dir = true;
	}
	return 0;
}

static int parse_console(const char *arg, enum console_mode *out)
{
	if (strcmp(arg, "compact") == 0)
		*out = CONSOLE_COMPACT;
	else if (strcmp(arg, "pretty") == 0)
		*out = CONSOLE_PRETTY;
	else if (strcmp(arg, "off") == 0)
		*out = CONSOLE_OFF;
	else
		return -1;
	return 0;
}

static error_t parse_opt(int key, char *arg, struct argp_state *state)
{
	struct config *cfg = state->input;
	double d;
	int bad = 0;

	switch (key) {
	case 'p': {
		long v = 0;

		bad = set_long("--pid", arg, 1, 4194304, &v);
		if (bad)
			break;
		for (int i = 0; i < cfg->n_pids; i++)
			if (cfg->pids[i] == v)
				argp_error(state, "-p %ld is given twice", v);
		if (cfg->n_pids == CLI_PID_MAX)
			argp_error(state, "-p is given more than %d times", CLI_PID_MAX);
		cfg->pids[cfg->n_pids++] = v;
		break;
	}
	case 'd': bad = number("--duration", arg, 0.001, 31536000, false, &cfg->duration_s); break;
	case 'o': {
		struct stat st;
		size_t n = strlen(arg);

		cfg->output = arg;
		cfg->output_is_dir = (n && arg[n - 1] == '/') ||
				     (stat(arg, &st) == 0 && S_ISDIR(st.st_mode));
		break;
	}
	case 'v': cfg->verbosity++; break;
	case 'q': cfg->quiet = 1; break;
	case OPT_SAMPLE: bad = number("--sample", arg, 0, 1, false, &cfg->sample); break;
	case OPT_NO_KEEP_ERRORS: cfg->keep_errors = false; break;
	case OPT_EXCLUDE:
		if (cfg->n_exclude == CLI_EXCLUDE_MAX) {
			fprintf(stderr, "profilis-bpf: --exclude-route: at most %d patterns\n",
				CLI_EXCLUDE_MAX);
			bad = 1;
			break;
		}
		cfg->exclude[cfg->n_exclude++] = arg;
		break;
	case OPT_QUEUE: bad = set_long("--queue-size", arg, 1, 1048576, &cfg->queue_size); break;
	case OPT_BATCH: bad = set_long("--batch-max", arg, 1, 1048576, &cfg->batch_max); break;
	case OPT_FLUSH:
		bad = number("--flush-interval", arg, 0.001, 60, false, &cfg->flush_interval_s);
		break;
	case OPT_DROP_OLDEST: cfg->drop_oldest = true; break;
	case OPT_NO_DROP_OLDEST: cfg->drop_oldest = false; break;
	case OPT_ROTATE_BYTES: bad = byte_size("--rotate-bytes", arg, &cfg->rotate_bytes); break;
	case OPT_ROTATE_SECS:
		bad = number("--rotate-secs", arg, 0.01, 31536000, false, &cfg->rotate_secs);
		break;
	case OPT_TEMPLATE: cfg->filename_template = arg; break;
	case OPT_FILE_MODE:
		if (safefile_parse_mode(arg, &cfg->file_mode)) {
			fprintf(stderr,
				"profilis-bpf: --file-mode: '%s' is not an octal mode "
				"within 0666 (e.g. 0640; files are never executable)\n",
				arg);
			bad = 1;
		}
		break;
	case 'i': bad = number("--interval", arg, 0.1, 3600, false, &cfg->interval_s); break;
	case OPT_WINDOW:
		bad = set_int("--window-minutes", arg, 1, 1440, &cfg->window_minutes);
		break;
	case OPT_MAX_ERRORS: bad = set_int("--max-errors", arg, 1, 100000, &cfg->max_errors); break;
	case OPT_TABLE: cfg->table = true; break;
	case 'F': bad = set_int("--frequency", arg, 0, 1000, &cfg->sample_hz); break;
	case OPT_MAX_DEPTH: bad = set_int("--max-depth", arg, 1, 128, &cfg->max_depth); break;
	case OPT_MAX_PROCS: bad = set_int("--max-procs", arg, 16, 1 << 20, &cfg->max_procs); break;
	case OPT_MAX_INFLIGHT:
		bad = set_int("--max-inflight", arg, 64, 1 << 20, &cfg->max_inflight);
		break;
	case OPT_NO_OFFCPU: cfg->offcpu = false; break;
	case OPT_FOLDED: cfg->folded = arg; break;
	case OPT_SPEEDSCOPE: cfg->speedscope = arg; break;
	case OPT_CHECK: cfg->check = true; break;
	case OPT_LIST: cfg->list = true; break;
	case OPT_ALL: cfg->all = true; break;
	case OPT_K8S_NAMESPACE:
	case OPT_K8S_POD:
	case OPT_CONTAINER:
	case OPT_SERVICE: {
		static const enum selector_kind kinds[] = { SEL_NAMESPACE, SEL_POD, SEL_CONTAINER,
							    SEL_SERVICE };
		char msg[256];

		if (selector_add(&cfg->select, kinds[key - OPT_K8S_NAMESPACE], arg, msg,
				 sizeof(msg))) {
			fprintf(stderr, "profilis-bpf: %s\n", msg);
			bad = 1;
		}
		break;
	}
	case OPT_STATS_JSON: cfg->stats_json = arg; break;
	case OPT_HTTP: cfg->http_addr = arg; break;
	case OPT_UI_PREFIX: cfg->ui_prefix = arg; break;
	case OPT_UI_TOKEN:
		cfg->ui_token = arg;
		cfg->ui_token_on_argv = true;
		break;
	case OPT_OTLP_ENDPOINT: cfg->otlp_endpoint = arg; break;
	case OPT_CONSOLE:
		if (parse_console(arg, &cfg->console)) {
			fprintf(stderr,
				"profilis-bpf: --console: '%s' is not one of compact, "
				"pretty, off\n",
				arg);
			bad = 1;
		}
		break;
	case OPT_RINGBUF:
		bad = number("--ringbuf-mb", arg, 1, 1024, true, &d);
		if (!bad && ((long)d & ((long)d - 1))) {
			fprintf(stderr,
				"profilis-bpf: --ringbuf-mb: '%s' is not a power of two "
				"in 1..1024\n",
				arg);
			bad = 1;
		}
		cfg->ringbuf_bytes = bad ? 0 : (size_t)d << 20;
		break;
	case ARGP_KEY_ARG: argp_error(state, "unexpected argument '%s'", arg); break;
	case ARGP_KEY_END:
		if (!cfg->n_pids && !cfg->all && !cfg->check && !cfg->list)
			argp_error(state, "-p PID or --all is required");
		if (selector_active(&cfg->select) && !cfg->all)
			argp_error(state, "--k8s-namespace, --k8s-pod, --container and --service "
					  "select among --all's processes: add --all");
		break;
	default: return ARGP_ERR_UNKNOWN;
	}
	if (bad)
		exit(EXIT_USAGE);
	return 0;
}

#define REGEX_MEM_BYTES (256ull << 20)
#define REGEX_SECONDS 2

/* glibc's regcomp builds a DFA whose size a short pattern can blow up past
 * gigabytes ("^" repeated 1,400 times): compile it first in a child with its
 * memory and time capped, so a pathological pattern is refused, not obeyed.
 * 0, or -E2BIG when the child could not compile it within the caps. */
static int regex_within_limits(const char *pattern)
{
	pid_t pid = fork();
	int status;

	if (pid < 0)
		return 0; /* cannot tell: the real compile below decides */
	if (pid == 0) {
		struct rlimit mem = { REGEX_MEM_BYTES, REGEX_MEM_BYTES };
		regex_t re;

		setrlimit(RLIMIT_AS, &mem);
		alarm(REGEX_SECONDS);
		_exit(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB) == REG_ESPACE ? 2 : 0);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return 0;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -E2BIG;
}

static int check_excludes(struct config *cfg, char *msg, size_t msglen)
{
	for (int i = 0; i < cfg->n_exclude; i++) {
		const char *p = cfg->exclude[i];
		regex_t re;
		int err;

		if (strncmp(p, "re:", 3) != 0) {
			if (!*p) {
				snprintf(msg, msglen,
					 "--exclude-route: an empty prefix would "
					 "exclude every request");
				return -EINVAL;
			}
			continue;
		}
		if (!p[3]) {
			snprintf(msg, msglen,
				 "--exclude-route: 're:' has an empty regular "
				 "expression, which matches every path; give a pattern "
				 "(e.g. re:^/health$)");
			return -EINVAL;
		}
		if (regex_within_limits(p + 3)) {
			snprintf(msg, msglen,
				 "--exclude-route: the regular expression '%.200s' is "
				 "too complex to compile within %llu MiB and %d s; simplify it",
				 p + 3, REGEX_MEM_BYTES >> 20, REGEX_SECONDS);
			return -E2BIG;
		}
		err = regcomp(&re, p + 3, REG_EXTENDED | REG_NOSUB);
		if (err) {
			char why[128];

			regerror(err, &re, why, sizeof(why));
			snprintf(msg, msglen, "--exclude-route: bad regular expression '%s': %s",
				 p + 3, why);
			return -EINVAL;
		}
		regfree(&re);
	}
	return 0;
}

static int check_output(struct config *cfg, char *msg, size_t msglen)
{
	bool rotation = cfg->rotate_bytes || cfg->rotate_secs || cfg->filename_template;

	if (rotation && !cfg->output_is_dir) {
		snprintf(msg, msglen,
			 "--rotate-bytes, --rotate-secs and --filename-template "
			 "need -o DIR (a directory, or a path ending in '/')");
		return -EINVAL;
	}
	if (!cfg->output_is_dir)
		return 0;
	if (jsonl_check_template(cfg->output, cfg->filename_template, msg, msglen))
		return -EINVAL;
	return safefile_check("-o", cfg->output, true, msg, msglen) ? -EINVAL : 0;
}

/* Files written only periodically or at exit are checked now, not after a
 * whole run: their directory exists, takes a new file, and their own name
 * is free or a regular file.  This also pins each directory (safefile.h). */
static int check_late_outputs(struct config *cfg, char *msg, size_t msglen)
{
	const struct {
		const char *what, *path;
	} outs[] = {
		{ "--stats-json", cfg->stats_json },
		{ "--folded", cfg->folded },
		{ "--speedscope", cfg->speedscope },
	};

	for (size_t i = 0; i < sizeof(outs) / sizeof(outs[0]); i++)
		if (outs[i].path && safefile_check(outs[i].what, outs[i].path, false, msg, msglen))
			return -EINVAL;
	return 0;
}

/* --http, --ui-prefix and --ui-token (the token itself is never quoted). */
static int check_http(struct config *cfg, char *msg, size_t msglen)
{
	char prefix[HTTP_PREFIX_MAX + 1];
	struct sockaddr_storage ss;
	socklen_t len;

	if (!cfg->http_addr) {
		if (!cfg->ui_prefix && !cfg->ui_token_on_argv)
			return 0;
		snprintf(msg, msglen,
			 "--ui-prefix and --ui-token configure --http: add --http ADDR");
		return -EINVAL;
	}
	if (http_parse_addr(cfg->http_addr, &ss, &len, msg, msglen))
		return -EINVAL;
	if (cfg->ui_prefix && http_normalize_prefix(cfg->ui_prefix, prefix, msg, msglen))
		return -EINVAL;
	if (cfg->ui_token && http_check_token(cfg->ui_token, msg, msglen))
		return -EINVAL;
	return 0;
}

_Static_assert(sizeof(((struct config *)0)->otlp_url) == OTLP_URL_MAX, "the URL buffer");

/* The OTLP settings that would otherwise fail at the first POST: the URL,
 * the protocol, and the key=value lists (parsed here only to check them). */
static int check_otlp_lists(struct config *cfg, char *msg, size_t msglen)
{
	const struct {
		const char *what, *text;
		bool header;
	} lists[] = {
		{ "OTEL_EXPORTER_OTLP_HEADERS", cfg->otlp_headers, true },
		{ "OTEL_EXPORTER_OTLP_TRACES_HEADERS", cfg->otlp_traces_headers, true },
		{ "OTEL_RESOURCE_ATTRIBUTES", cfg->otlp_resource_attrs, false },
	};

	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
		struct otlp_kvlist l = { 0 };
		int err = otlp_kv_parse(lists[i].what, lists[i].text, lists[i].header, &l, msg,
					msglen);

		otlp_kv_free(&l);
		if (err == -ENOMEM)
			snprintf(msg, msglen, "%s: out of memory", lists[i].what);
		if (err)
			return -EINVAL;
	}
	return 0;
}

static int check_otlp(struct config *cfg, char *msg, size_t msglen)
{
	const char *what = "--otlp-endpoint", *url = cfg->otlp_endpoint;
	bool append = true;

	cfg->otlp_url[0] = 0;
	if (!url && cfg->otlp_env_off)
		return 0; /* OTEL_TRACES_EXPORTER=none turns the variables off */
	if (!url && (url = cfg->otlp_env_traces_endpoint)) {
		what = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
		append = false;
	} else if (!url && (url = cfg->otlp_env_endpoint)) {
		what = "OTEL_EXPORTER_OTLP_ENDPOINT";
	}
	if (!url)
		return 0;
	if (cfg->otlp_protocol && strcmp(cfg->otlp_protocol, "http/json") != 0 &&
	    strcmp(cfg->otlp_protocol, "http/protobuf") != 0) {
		snprintf(
			msg, msglen,
			"OTEL_EXPORTER_OTLP_[TRACES_]PROTOCOL: '%.40s' is not supported: profilis-bpf sends "
			"OTLP/HTTP with JSON (http/json), which a receiver's HTTP port (4318) takes "
			"whether it expects http/json or http/protobuf",
			cfg->otlp_protocol);
		return -EINVAL;
	}
	if (otlp_traces_url(what, url, append, cfg->otlp_url, msg, msglen))
		return -EINVAL;
	return check_otlp_lists(cfg, msg, msglen);
}

int cli_validate(struct config *cfg, char *msg, size_t msglen)
{
	if (cfg->batch_max > cfg->queue_size) {
		snprintf(msg, msglen, "--batch-max (%ld) must not exceed --queue-size (%ld)",
			 cfg->batch_max, cfg->queue_size);
		return -EINVAL;
	}
	if (check_excludes(cfg, msg, msglen) || check_output(cfg, msg, msglen) ||
	    check_late_outputs(cfg, msg, msglen) || check_otlp(cfg, msg, msglen) ||
	    check_http(cfg, msg, msglen))
		return -EINVAL;
	if ((cfg->folded || cfg->speedscope) && cfg->sample_hz == 0 && !cfg->offcpu) {
		snprintf(msg, msglen,
			 "--folded and --speedscope need samples: not with -F 0 "
			 "and --no-offcpu");
		return -EINVAL;
	}
	if (cfg->table && cfg->console != CONSOLE_AUTO && cfg->console != CONSOLE_OFF) {
		snprintf(msg, msglen, "--table and --console both want stdout: choose one");
		return -EINVAL;
	}
	/* On a terminal the dashboard is the default view; records then go only
	 * to -o.  Anywhere else stdout carries JSONL unless --table is asked. */
	cfg->dashboard = cfg->console == CONSOLE_AUTO && !cfg->table && isatty(STDOUT_FILENO);
	if (cfg->console == CONSOLE_AUTO) {
		bool elsewhere = cfg->output || cfg->dashboard || cfg->table;

		cfg->console = elsewhere ? CONSOLE_OFF : CONSOLE_COMPACT;
	}
	return 0;
}

int cli_parse(int argc, char **argv, struct config *cfg)
{
	static const struct argp argp = { options, parse_opt, NULL, doc, NULL, NULL, NULL };
	char msg[512];

	memset(cfg, 0, sizeof(*cfg));
	cfg->ringbuf_bytes = 4u << 20;
	cfg->max_procs = 4096;
	cfg->max_inflight = 16384;
	cfg->queue_size = 2048;
	cfg->batch_max = 128;
	cfg->flush_interval_s = 0.1;
	cfg->drop_oldest = true;
	cfg->sample = 1.0;
	cfg->keep_errors = true;
	cfg->interval_s = 1.0;
	cfg->window_minutes = 15;
	cfg->max_errors = 100;
	cfg->sample_hz = 99;
	cfg->max_depth = 64;
	cfg->offcpu = true;
	cfg->file_mode = SAFEFILE_DEFAULT_MODE;
	if (apply_env(cfg))
		return EXIT_USAGE;
	/* argp_error() exits with argp_err_exit_status: make it ours. */
	argp_err_exit_status = EXIT_USAGE;
	if (argp_parse(&argp, argc, argv, 0, NULL, cfg))
		return EXIT_USAGE;
	if (cli_validate(cfg, msg, sizeof(msg))) {
		fprintf(stderr, "profilis-bpf: %s\n", msg);
		return EXIT_USAGE;
	}
	return 0;
}
