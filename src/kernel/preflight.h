/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Checks made before anything is loaded: privileges and kernel BTF.
 */
#ifndef PROFILIS_PREFLIGHT_H
#define PROFILIS_PREFLIGHT_H

#include <stddef.h>

/* 0, or -EPERM with the missing capabilities named in msg. */
int preflight_capabilities(char *msg, size_t msglen);
/* 0, or -EACCES/-EPERM when the kernel refuses to create a uprobe for us
 * (it wants CAP_SYS_ADMIN, whatever else is held), -ENOENT without the
 * uprobe PMU; the cause and remedy in msg. */
int preflight_uprobe(char *msg, size_t msglen);
/* 0, or -ENOENT when the kernel exposes no BTF (path in msg). */
int preflight_btf(const char *path, char *msg, size_t msglen);

#endif
