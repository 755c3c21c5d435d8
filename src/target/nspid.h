/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The PID a process has in its own PID namespace (a container's gunicorn
 * master is 1 there).  Records keep host PIDs, which the BPF programs see;
 * this is what a user inside the container knows the process by.  It is
 * read with the rest of a process's metadata, once per process
 * (k8smeta_read and its cache).
 */
#ifndef PROFILIS_NSPID_H
#define PROFILIS_NSPID_H

#include <stdint.h>
#include <sys/types.h>

/* Pure: the last (innermost) field of the NSpid line of a /proc/PID/status
 * text; 0 when there is none or it is malformed. */
pid_t nspid_parse(const char *status);

/* nspid_parse of /proc/PID/status; 0 when it cannot be read. */
pid_t nspid_read(pid_t pid);

#endif
