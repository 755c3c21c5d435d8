/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * `profilis-bpf --list`: the Python processes on this machine, with their
 * interpreter, version, server, workers, listening ports and whether Flask
 * is imported, so an SRE can pick the PID to trace.
 */
#ifndef PROFILIS_PROCLIST_H
#define PROFILIS_PROCLIST_H

#include <stdio.h>

/* Prints the table; returns how many Python processes were found. */
int proclist_run(FILE *out);

#endif
