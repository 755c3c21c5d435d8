// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * NSpid lists the PID in every namespace from the reader's down to the
 * process's own ("NSpid:\t31095\t1"); the last one is the process's view.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "nspid.h"

pid_t nspid_parse(const char *status)
{
	const char *line = strstr(status, "\nNSpid:");
	long last = 0;
	char *end;

	if (!line)
		return 0;
	line += strlen("\nNSpid:");
	for (;;) {
		long v;

		while (*line == ' ' || *line == '\t')
			line++;
		if (*line == '\n' || *line == 0)
			break;
		v = strtol(line, &end, 10);
		if (end == line || v <= 0 || v > 4194304)
			return 0;
		last = v;
		line = end;
	}
	return (pid_t)last;
}

pid_t nspid_read(pid_t pid)
{
	char path[64], buf[4096];
	size_t n;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "re");
	if (!f)
		return 0;
	/* A leading newline lets the parser find NSpid as a whole line. */
	buf[0] = '\n';
	n = fread(buf + 1, 1, sizeof(buf) - 2, f);
	fclose(f);
	buf[1 + n] = 0;
	return nspid_parse(buf);
}
