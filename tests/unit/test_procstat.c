// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * /proc/PID/stat: real-looking lines whose comm holds spaces and
 * parentheses, truncated lines, and real processes: this one (running, its
 * parent, a start time that does not change), an unreaped child (a zombie)
 * and a pid that no longer exists.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
#include "procstat.h"

/* A real line (a gunicorn worker), fields 1 to 52. */
#define TAIL                                                                                 \
	" 4123 4100 4100 0 -1 4194560 2841 0 0 0 12 3 0 0 20 0 1 0 987654321 31232000 5120 " \
	"18446744073709551615 1 1 0 0 0 0 0 16781312 17922 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n"

/* The fields of TAIL, whatever came before it. */
static void parses_tail(const char *line, char state)
{
	struct procstat st;

	cr_assert_eq(procstat_parse(line, &st), 0, "%s", line);
	cr_assert_eq(st.state, state, "%s", line);
	cr_assert_eq(st.ppid, 4123);
	cr_assert_eq(st.start_ticks, 987654321ULL);
}

Test(procstat, fields_after_a_plain_comm)
{
	parses_tail("4150 (gunicorn) S" TAIL, 'S');
}

/* A process may name itself anything (prctl PR_SET_NAME): the fields start
 * after the last ')', not the first. */
Test(procstat, comm_with_spaces_and_parentheses)
{
	parses_tail("4150 (a) R 1 (b c)) Z" TAIL, 'Z');
}

Test(procstat, malformed_lines_are_refused)
{
	struct procstat st = { .state = '?', .ppid = 7, .start_ticks = 9 };

	cr_assert_eq(procstat_parse("", &st), -EINVAL);
	cr_assert_eq(procstat_parse("4150 gunicorn S 4123", &st), -EINVAL, "no ')'");
	cr_assert_eq(procstat_parse("4150 (gunicorn) S 4123 4100 4100 0\n", &st), -EINVAL,
		     "cut before the start time");
	cr_assert_eq(st.state, '?', "a refused line writes nothing");
	cr_assert_eq(st.ppid, 7);
	cr_assert_eq(st.start_ticks, 9);
}

Test(procstat, this_process)
{
	struct procstat a, b;

	cr_assert_eq(procstat_read(getpid(), &a), 0);
	cr_assert_eq(a.state, 'R', "reading its own stat, a process runs");
	cr_assert_eq(a.ppid, getppid());
	cr_assert_gt(a.start_ticks, 0);
	cr_assert_eq(procstat_read(getpid(), &b), 0);
	cr_assert_eq(b.start_ticks, a.start_ticks, "the start time is the process's, not a clock");
	cr_assert_not(procstat_dead(a.state));
}

Test(procstat, zombie_then_gone)
{
	struct procstat st;
	pid_t pid = fork();

	cr_assert_geq(pid, 0);
	if (pid == 0)
		_exit(0);
	/* Unreaped, it stays a zombie until waitpid. */
	for (int i = 0; i < 500; i++) {
		cr_assert_eq(procstat_read(pid, &st), 0);
		if (st.state == 'Z')
			break;
		usleep(2000);
	}
	cr_assert_eq(st.state, 'Z');
	cr_assert_eq(st.ppid, getpid());
	cr_assert(procstat_dead(st.state));
	cr_assert_eq(waitpid(pid, NULL, 0), pid);
	cr_assert_eq(procstat_read(pid, &st), -ENOENT, "a reaped pid has no /proc entry");
}
