// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The fields after comm are space-separated numbers; comm itself is any 15
 * bytes inside parentheses, ")" and spaces included, so parsing resumes
 * after the last ')' of the line.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "procstat.h"

int procstat_parse(const char *text, struct procstat *out)
{
	const char *p = strrchr(text, ')');
	unsigned long long start;
	char state;
	int ppid;

	if (!p || sscanf(p + 1,
			 " %c %d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d "
			 "%*d %*d %*d %llu",
			 &state, &ppid, &start) != 3)
		return -EINVAL;
	out->state = state;
	out->ppid = ppid;
	out->start_ticks = start;
	return 0;
}

int procstat_read(pid_t pid, struct procstat *out)
{
	char path[64], buf[1024];
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (!(f = fopen(path, "re")))
		return -errno;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	return procstat_parse(buf, out);
}

bool procstat_dead(char state)
{
	return state == 'Z' || state == 'X';
}
