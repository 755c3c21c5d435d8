// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The namespace PID from /proc/PID/status: the parser on texts as the kernel
 * writes them, and the reader (alone and as part of a process's metadata)
 * on this process and a child in a new PID namespace (unshare), where it
 * is 1.
 */
#include <criterion/criterion.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include "k8smeta.h"
#include "nspid.h"

Test(nspid, parse_the_innermost)
{
	cr_assert_eq(nspid_parse("\nName:\tgunicorn\nNSpid:\t31095\t1\nNSpgid:\t31095\t1\n"), 1);
	cr_assert_eq(nspid_parse("\nNSpid:\t4123\n"), 4123);
	cr_assert_eq(nspid_parse("\nNSpid:\t900\t77\t5\n"), 5, "nested namespaces: the last");
	cr_assert_eq(nspid_parse("\nNSpid:\t900\t77"), 77, "no final newline");
}

Test(nspid, parse_refuses_what_is_not_a_pid_list)
{
	cr_assert_eq(nspid_parse("\nName:\tx\n"), 0, "no NSpid line (kernels before 4.1)");
	cr_assert_eq(nspid_parse("\nNSpid:\t12\tx\n"), 0);
	cr_assert_eq(nspid_parse("\nNSpid:\t-3\n"), 0);
	cr_assert_eq(nspid_parse("\nNSpid:\t99999999999\n"), 0);
	cr_assert_eq(nspid_parse("\nNSpid:\n"), 0);
	cr_assert_eq(nspid_parse("\nXNSpid:\t5\n"), 0, "only the NSpid line");
}

Test(nspid, read_self_and_a_child_in_a_new_namespace)
{
	struct k8smeta m;
	int ready[2], go[2];
	pid_t child;
	char b;

	cr_assert_eq(nspid_read(getpid()), getpid(), "not in a namespace of its own");
	cr_assert_eq(nspid_read(4194300), 0, "no such process");
	cr_assert_eq(pipe(ready), 0);
	cr_assert_eq(pipe(go), 0);
	cr_assert_eq(unshare(CLONE_NEWPID), 0, "unshare: needs root");
	child = fork(); /* the first child of the new namespace: its PID 1 */
	cr_assert_geq(child, 0);
	if (child == 0) {
		if (write(ready[1], "r", 1) != 1 || read(go[0], &b, 1) != 1)
			_exit(1);
		_exit(0);
	}
	cr_assert_eq(read(ready[0], &b, 1), 1);
	cr_assert_eq(nspid_read(child), 1);
	/* Read with the rest of a process's metadata, as records get it. */
	cr_assert_eq(k8smeta_read(child, &m), 0);
	cr_assert_eq(m.ns_pid, 1);
	cr_assert_eq(k8smeta_read(getpid(), &m), 0);
	cr_assert_eq(m.ns_pid, getpid());
	cr_assert_eq(write(go[1], "g", 1), 1);
	cr_assert_eq(waitpid(child, NULL, 0), child);
}
