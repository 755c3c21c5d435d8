// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * libFuzzer target: the command line and the PROFILIS_* environment
 * (src/cli.c).  The input is split at NUL bytes: "PROFILIS_X=v" tokens for
 * the variables cli.c reads are put in the environment (and taken out after
 * the run), every other token is an argument after argv[0].
 *
 * cli_parse ends the process on usage errors (exit(64) from parse_opt,
 * argp_error from argp).  The harness is linked with --wrap=exit and
 * --wrap=argp_error so that both come back here by longjmp instead, and
 * with --wrap=argp_parse to pass ARGP_NO_EXIT (argp's own --help and
 * unknown-option paths return rather than exit).  What argp allocated and
 * the longjmp skipped freeing is tracked with the sanitizer malloc hooks
 * and freed here, as the exit would have.  Checked: the only way out is
 * 0 or 64; an accepted config holds only values inside the documented
 * ranges, and its combination rules hold.  Messages go to /dev/null
 * (through the stdio streams, so sanitizer reports on fd 2 stay visible).
 */
#include <argp.h>
#include <errno.h>
#include <math.h>
#include <sanitizer/allocator_interface.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cli.h"
#include "rotfile.h"

#define MAX_ARGS 256

static const char *const env_names[] = {
	"PROFILIS_DEBUG",     "PROFILIS_SAMPLE_RATE",	 "PROFILIS_QUEUE_SIZE",
	"PROFILIS_BATCH_MAX", "PROFILIS_FLUSH_INTERVAL", "PROFILIS_LOG_DIR",
};

#define MAX_LIVE 64

static jmp_buf usage_exit;
static int in_cli, in_argp;
/* Blocks allocated inside argp_parse and not yet freed. */
static const volatile void *live[MAX_LIVE];

pid_t __real_fork(void);
void __real_exit(int status) __attribute__((noreturn));
error_t __real_argp_parse(const struct argp *argp, int argc, char **argv, unsigned flags,
			  int *arg_index, void *input);

static void on_malloc(const volatile void *p, size_t size)
{
	int i;

	if (!in_argp)
		return;
	for (i = 0; i < MAX_LIVE && live[i]; i++)
		;
	if (i == MAX_LIVE)
		abort(); /* argp allocates a handful of blocks; more is a leak */
	live[i] = p;
}

static void on_free(const volatile void *p)
{
	for (int i = 0; in_argp && i < MAX_LIVE; i++)
		if (live[i] == p)
			live[i] = NULL;
}

/* cli.c trial-compiles each re: pattern in a forked child with a memory cap;
 * a fork of the fuzzer (ASan's shadow, libFuzzer's death callbacks) under
 * that cap dies in the sanitizer, not in cli.c.  "Cannot fork" is a path
 * cli.c takes anyway: it then compiles the pattern itself, and the patterns
 * that explode are skipped below. */
pid_t __wrap_fork(void)
{
	if (!in_cli)
		return __real_fork();
	errno = EAGAIN;
	return -1;
}

void __wrap_exit(int status)
{
	if (!in_cli)
		__real_exit(status); /* libFuzzer's own exit */
	if (status != EXIT_USAGE)
		abort(); /* cli.c exits only for usage errors */
	in_argp = 0;
	for (int i = 0; i < MAX_LIVE; i++) {
		free((void *)live[i]);
		live[i] = NULL;
	}
	longjmp(usage_exit, 1);
}

/* In the program this prints and exits 64 (argp_err_exit_status). */
void __wrap_argp_error(const struct argp_state *state, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	fputs(msg, stderr);
	if (argp_err_exit_status != EXIT_USAGE)
		abort();
	__wrap_exit(EXIT_USAGE);
}

error_t __wrap_argp_parse(const struct argp *argp, int argc, char **argv, unsigned flags,
			  int *arg_index, void *input)
{
	error_t rc;

	in_argp = 1;
	rc = __real_argp_parse(argp, argc, argv, flags | ARGP_NO_EXIT, arg_index, input);
	in_argp = 0;
	memset((void *)live, 0, sizeof(live));
	return rc;
}

/* argp's hidden default options --HANG (sleeps) and --program-name (keeps
 * our argument in a global): fine in the program, not in a harness. */
static int argp_debug_option(const char *arg)
{
	return strncmp(arg, "--H", 3) == 0 || strncmp(arg, "--pr", 4) == 0;
}

/*
 * Found here: glibc's regcomp copies the tree once per bounded repetition and
 * grows its DFA with the pattern, so a short --exclude-route re:REGEX like
 * "((a{1,255}){1,255}){1,255}" (26 bytes), 500 bytes of stacked '*'/'?' or
 * 1,400 '^' took gigabytes at startup.  cli.c now compiles each pattern first
 * in a child capped at 256 MiB and 2 s (test_cli: pathological_exclude_regex);
 * a fork and up to 2 s per input is too slow for fuzzing, so inputs with a
 * long or deeply repeated pattern are still skipped here.  Also found: a run
 * of mixed repetition operators, "^a*+*+*+*+*+*+*+s)" (14 of them), takes
 * regcomp over 90 s; cli.c's child refuses it at 2 s, and runs of more than
 * three operators are skipped here.
 */
static int regex_may_explode(const char *arg)
{
	int ops = 0, braces = 0, run = 0;

	if (strncmp(arg, "re:", 3) != 0)
		return 0;
	if (strlen(arg + 3) > 64)
		return 1;
	for (const char *p = arg + 3; *p; p++) {
		if (*p == '*' || *p == '+' || *p == '?') {
			ops++;
			if (++run > 3)
				return 1;
		} else {
			run = 0;
		}
		if (*p == '{' && (++braces > 2 || strtol(p + 1, NULL, 10) > 16 ||
				  (strchr(p, ',') && strtol(strchr(p, ',') + 1, NULL, 10) > 16)))
			return 1;
	}
	return ops > 24;
}

/* "NAME=value" for one of the variables cli.c reads */
static int known_env(const char *tok)
{
	for (size_t i = 0; i < sizeof(env_names) / sizeof(env_names[0]); i++) {
		size_t n = strlen(env_names[i]);

		if (strncmp(tok, env_names[i], n) == 0 && tok[n] == '=')
			return 1;
	}
	return 0;
}

static int in(double v, double lo, double hi)
{
	return !isnan(v) && v >= lo && v <= hi;
}

/* The ranges and rules that `profilis-bpf --help` and cli.h promise. */
static void check_config(const struct config *c)
{
	char msg[256];

	if ((!c->n_pids && !c->all && !c->check && !c->list) || c->n_pids < 0 ||
	    c->n_pids > CLI_PID_MAX)
		abort();
	if (selector_active(&c->select) && !c->all) /* selectors pick among --all's */
		abort();
	for (int i = 0; i < c->n_pids; i++) /* each in range, none twice */
		for (int j = 0; j <= i; j++)
			if (c->pids[i] < 1 || c->pids[i] > 4194304 ||
			    (j < i && c->pids[j] == c->pids[i]))
				abort();
	if (!(c->duration_s == 0 || in(c->duration_s, 0.001, 31536000)) || !in(c->sample, 0, 1) ||
	    !in(c->queue_size, 1, 1048576) || !in(c->batch_max, 1, c->queue_size) ||
	    !in(c->flush_interval_s, 0.001, 60) || !in(c->interval_s, 0.1, 3600) ||
	    !in(c->window_minutes, 1, 1440) || !in(c->max_errors, 1, 100000) ||
	    !in(c->sample_hz, 0, 1000) || !in(c->max_depth, 1, 128) || c->n_exclude < 0 ||
	    c->n_exclude > CLI_EXCLUDE_MAX)
		abort();
	if (c->ringbuf_bytes < (1u << 20) || c->ringbuf_bytes > (1024u << 20) ||
	    (c->ringbuf_bytes & (c->ringbuf_bytes - 1)))
		abort();
	if (c->rotate_bytes < 0 || c->rotate_secs < 0 ||
	    ((c->rotate_bytes || c->rotate_secs || c->filename_template) && !c->output_is_dir))
		abort();
	if (c->output_is_dir && rotfile_check_template(c->filename_template, msg, sizeof(msg)))
		abort();
	if (c->console == CONSOLE_AUTO || (c->table && c->console != CONSOLE_OFF))
		abort();
	for (int i = 0; i < c->n_exclude; i++)
		if (!c->exclude[i][0])
			abort(); /* an empty prefix drops every request */
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static char dir[] = "/tmp/fuzz-cli-XXXXXX";

	/* -o paths are relative to here: the probe file check_dir_writable
	 * makes lands in an empty scratch directory. */
	if (!mkdtemp(dir) || chdir(dir) ||
	    !__sanitizer_install_malloc_and_free_hooks(on_malloc, on_free))
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static FILE *devnull;
	char *buf = malloc(size + 1), *args[MAX_ARGS + 2];
	FILE *saved_out = stdout, *saved_err = stderr;
	volatile int rc = -1;
	struct config cfg;
	int argc = 1;

	/* Unbuffered: a buffer stdio allocates at the first write inside argp
	 * would be freed with argp's blocks at a usage error, and later writes
	 * went into freed memory (a SEGV inside libFuzzer, 1 run in 4). */
	if (!devnull && (!(devnull = fopen("/dev/null", "w")) || setvbuf(devnull, NULL, _IONBF, 0)))
		abort();
	memcpy(buf, data, size);
	buf[size] = 0;
	args[0] = "profilis-bpf";
	for (char *p = buf; p < buf + size && argc <= MAX_ARGS; p += strlen(p) + 1) {
		if (known_env(p))
			putenv(p); /* the string stays ours: no copy left behind */
		else if (argp_debug_option(p) || regex_may_explode(p))
			goto out;
		else
			args[argc++] = p;
	}
	args[argc] = NULL;
	stdout = devnull;
	stderr = devnull;
	in_cli = 1;
	if (setjmp(usage_exit) == 0)
		rc = cli_parse(argc, args, &cfg);
	else
		rc = EXIT_USAGE;
	in_cli = 0;
	stdout = saved_out;
	stderr = saved_err;
	if (rc != 0 && rc != EXIT_USAGE)
		abort();
	if (rc == 0)
		check_config(&cfg);
out:
	for (size_t i = 0; i < sizeof(env_names) / sizeof(env_names[0]); i++)
		unsetenv(env_names[i]);
	free(buf);
	return 0;
}
