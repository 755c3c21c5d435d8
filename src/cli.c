// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The argp command line.  Every number is parsed whole and range checked;
 * a bad value names the option and the accepted range and exits 64.
 */
#include <argp.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli.h"

const char *argp_program_version = "profilis-bpf 0.1";
const char *argp_program_bug_address = "the profilis-bpf issue tracker";

static const char doc[] =
	"profilis-bpf -- request spans from a running Flask service, from outside the process\n"
	"\n"
	"Attaches uprobes to the CPython interpreter of PID (and of every process it\n"
	"forks: a gunicorn master PID covers its workers, re-spawned ones included)\n"
	"and writes one JSON line per HTTP request: method, path, route template,\n"
	"endpoint, status, duration, exception type and W3C trace ids.  No code\n"
	"change, no restart.  Supported: CPython 3.11 with Flask >= 2.2."
	"\v"
	"Examples:\n"
	"  sudo profilis-bpf -p $(pgrep -o gunicorn)          # until Ctrl-C\n"
	"  sudo profilis-bpf -p 4123 -d 60 -o requests.jsonl  # one minute, to a file\n"
	"  sudo profilis-bpf -p 4123 | jq -c 'select(.status >= 500)'\n"
	"\n"
	"Needs root, or CAP_BPF, CAP_PERFMON and CAP_SYS_PTRACE, and a kernel with BTF.\n"
	"Exit status: 0 done (also when the target exits), 1 runtime failure,\n"
	"64 bad usage.";

enum { OPT_RINGBUF = 0x100 };

static const struct argp_option options[] = {
	{ 0, 0, 0, 0, "Target and duration:", 1 },
	{ "pid", 'p', "PID", 0, "Process to trace, with all its descendants (required)", 1 },
	{ "duration", 'd', "SECONDS", 0, "Stop after SECONDS (default: until Ctrl-C/SIGTERM)", 1 },
	{ 0, 0, 0, 0, "Output:", 2 },
	{ "output", 'o', "PATH", 0, "Append JSONL to PATH instead of stdout ('-' is stdout)", 2 },
	{ "verbose", 'v', 0, 0, "Say more on stderr (-vv adds libbpf and verifier logs)", 2 },
	{ "quiet", 'q', 0, 0, "Only warnings and errors on stderr", 2 },
	{ 0, 0, 0, 0, "Tuning:", 3 },
	{ "ringbuf-mb", OPT_RINGBUF, "MB", 0, "Ring buffer size, a power of two 1..1024 (default 4)", 3 },
	{ 0 },
};

static int parse_double(const char *s, double lo, double hi, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || isnan(v) || v < lo || v > hi)
		return -EINVAL;
	*out = v;
	return 0;
}

static int parse_long(const char *s, long lo, long hi, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi)
		return -EINVAL;
	*out = v;
	return 0;
}

static error_t parse_opt(int key, char *arg, struct argp_state *state)
{
	struct config *cfg = state->input;
	long v;

	switch (key) {
	case 'p':
		if (parse_long(arg, 1, 4194304, &v))
			argp_error(state, "--pid: '%s' is not a process id (1..4194304)", arg);
		cfg->pid = v;
		break;
	case 'd':
		if (parse_double(arg, 0.001, 31536000, &cfg->duration_s))
			argp_error(state, "--duration: '%s' is not a number of seconds "
					  "(0.001..31536000)", arg);
		break;
	case 'o':
		cfg->output = arg;
		break;
	case 'v':
		cfg->verbosity++;
		break;
	case 'q':
		cfg->quiet = 1;
		break;
	case OPT_RINGBUF:
		if (parse_long(arg, 1, 1024, &v) || (v & (v - 1)))
			argp_error(state, "--ringbuf-mb: '%s' must be a power of two in 1..1024", arg);
		cfg->ringbuf_bytes = (size_t)v << 20;
		break;
	case ARGP_KEY_ARG:
		argp_error(state, "unexpected argument '%s'", arg);
		break;
	case ARGP_KEY_END:
		if (!cfg->pid)
			argp_error(state, "-p PID is required");
		break;
	default:
		return ARGP_ERR_UNKNOWN;
	}
	return 0;
}

int cli_parse(int argc, char **argv, struct config *cfg)
{
	static const struct argp argp = { options, parse_opt, NULL, doc, NULL, NULL, NULL };

	memset(cfg, 0, sizeof(*cfg));
	cfg->ringbuf_bytes = 4u << 20;
	/* argp_error() exits with argp_err_exit_status: make it ours. */
	argp_err_exit_status = EXIT_USAGE;
	return argp_parse(&argp, argc, argv, 0, NULL, cfg) ? EXIT_USAGE : 0;
}
