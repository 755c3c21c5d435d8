// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Privilege and kernel checks, so a missing capability or BTF gets a message
 * that names it instead of a bare EPERM from deep inside libbpf.  What is
 * needed is CAP_SYS_ADMIN (this kernel creates uprobes only for it, and it
 * covers CAP_BPF and CAP_PERFMON, which alone are not enough: measured) and
 * CAP_SYS_PTRACE; the uprobe is also probed for real, on a file no process
 * maps.
 */
#include <errno.h>
#include <linux/capability.h>
#include <linux/perf_event.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#include "preflight.h"

static int has_cap(const struct __user_cap_data_struct *d, int cap)
{
	return (d[cap / 32].effective >> (cap % 32)) & 1;
}

int preflight_capabilities(char *msg, size_t msglen)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2] = {};
	static const struct {
		int cap;
		const char *name;
	} need[] = {
		{ CAP_SYS_ADMIN, "CAP_SYS_ADMIN" },
		{ CAP_SYS_PTRACE, "CAP_SYS_PTRACE" },
	};
	size_t n = 0;

	if (syscall(SYS_capget, &hdr, data))
		return 0; /* cannot tell: let the real operations report */
	msg[0] = 0;
	for (size_t i = 0; i < sizeof(need) / sizeof(need[0]); i++) {
		if (has_cap(data, need[i].cap))
			continue;
		n += snprintf(msg + n, n < msglen ? msglen - n : 0, "%s%s",
			      n ? ", " : "missing capabilities: ", need[i].name);
	}
	if (!n)
		return 0;
	snprintf(msg + n, n < msglen ? msglen - n : 0,
		 "; run as root (sudo profilis-bpf ...) or grant them with "
		 "setcap cap_sys_admin,cap_sys_ptrace+ep (this kernel creates uprobes only "
		 "for CAP_SYS_ADMIN; CAP_BPF and CAP_PERFMON are not enough); for targets of "
		 "other users in private directories also cap_dac_read_search");
	return -EPERM;
}

static int uprobe_pmu_type(void)
{
	FILE *f = fopen("/sys/bus/event_source/devices/uprobe/type", "re");
	int type = -1;

	if (!f)
		return -ENOENT;
	if (fscanf(f, "%d", &type) != 1)
		type = -EINVAL;
	fclose(f);
	return type;
}

int preflight_uprobe(char *msg, size_t msglen)
{
	static const unsigned char nops[16] = { 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90,
						0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90, 0x90 };
	struct perf_event_attr attr = { .size = sizeof(attr) };
	char path[64];
	int type = uprobe_pmu_type(), mfd = -1, fd = -1, err = 0;

	if (type < 0) {
		snprintf(msg, msglen,
			 "this kernel has no uprobe PMU (/sys/bus/event_source/devices/"
			 "uprobe/type: %s); it needs CONFIG_UPROBE_EVENTS=y",
			 strerror(-type));
		return type;
	}
	/* A probe on an unmapped memfd: it inserts no breakpoint anywhere. */
	mfd = memfd_create("profilis-uprobe-probe", MFD_CLOEXEC);
	if (mfd < 0 || write(mfd, nops, sizeof(nops)) != sizeof(nops)) {
		err = 0; /* cannot tell: let the real attach report */
		goto cleanup;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", mfd);
	attr.type = type;
	attr.config1 = (unsigned long)path;
	attr.config2 = 0;
	fd = syscall(__NR_perf_event_open, &attr, -1, 0, -1, PERF_FLAG_FD_CLOEXEC);
	if (fd < 0 && (errno == EACCES || errno == EPERM)) {
		err = -errno;
		snprintf(msg, msglen,
			 "the kernel refused to create a uprobe (%s): creating "
			 "uprobes needs CAP_SYS_ADMIN here, CAP_PERFMON is not enough; run as "
			 "root (sudo profilis-bpf ...) or grant "
			 "cap_sys_admin,cap_sys_ptrace+ep",
			 strerror(errno));
	}
cleanup:
	if (fd >= 0)
		close(fd);
	if (mfd >= 0)
		close(mfd);
	return err;
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
