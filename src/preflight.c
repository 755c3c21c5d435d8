// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Privilege and kernel checks, so a missing capability or BTF gets a message
 * that names it instead of a bare EPERM from deep inside libbpf.  CAP_SYS_ADMIN
 * stands in for CAP_BPF and CAP_PERFMON, as it does in the kernel.
 */
#include <errno.h>
#include <linux/capability.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "preflight.h"

#ifndef CAP_PERFMON
#define CAP_PERFMON 38
#endif
#ifndef CAP_BPF
#define CAP_BPF 39
#endif

static int has_cap(const struct __user_cap_data_struct *d, int cap)
{
	return (d[cap / 32].effective >> (cap % 32)) & 1;
}

int preflight_capabilities(char *msg, size_t msglen)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2] = {};
	static const struct { int cap; const char *name; } need[] = {
		{ CAP_BPF, "CAP_BPF" },
		{ CAP_PERFMON, "CAP_PERFMON" },
		{ CAP_SYS_PTRACE, "CAP_SYS_PTRACE" },
	};
	size_t n = 0;
	int admin;

	if (syscall(SYS_capget, &hdr, data))
		return 0; /* cannot tell: let the real operations report */
	admin = has_cap(data, CAP_SYS_ADMIN);
	msg[0] = 0;
	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
		if (has_cap(data, need[i].cap) || (admin && need[i].cap != CAP_SYS_PTRACE))
			continue;
		n += snprintf(msg + n, n < msglen ? msglen - n : 0, "%s%s",
			      n ? ", " : "missing capabilities: ", need[i].name);
	}
	if (!n)
		return 0;
	snprintf(msg + n, n < msglen ? msglen - n : 0,
		 "; run as root (sudo profilis-bpf ...) or grant them with "
		 "setcap cap_bpf,cap_perfmon,cap_sys_ptrace+ep");
	return -EPERM;
}

int preflight_btf(const char *path, char *msg, size_t msglen)
{
	if (access(path, R_OK) == 0)
		return 0;
	snprintf(msg, msglen,
		 "this kernel exposes no BTF (%s: %s); profilis-bpf needs a kernel built "
		 "with CONFIG_DEBUG_INFO_BTF=y",
		 path, strerror(errno));
	return -ENOENT;
}
