/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * `profilis-bpf --check`: can this machine run profilis-bpf?  Kernel, BTF,
 * capabilities and each BPF feature the programs use, probed for real.
 */
#ifndef PROFILIS_CHECKS_H
#define PROFILIS_CHECKS_H

#include <stdio.h>

/* Prints one line per check; returns 0 when everything needed is there,
 * 1 otherwise. */
int checks_run(FILE *out);

#endif
