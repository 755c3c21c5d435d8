// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * k8smeta: the cgroup parser on a table of real-world /proc/PID/cgroup
 * lines (containerd, CRI-O, Docker, Podman; systemd and cgroupfs drivers;
 * cgroup v1 and v2; kind; another cgroup namespace) and hostile ones; the
 * DNS and printable checks; the service-name ladder; and the readers on real
 * child processes: a huge environment, a chroot whose /var/run is an
 * absolute symlink (the namespace file must be found inside the target's
 * root, not ours), hostile namespace files, and the pid + start-time cache.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sched.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include "k8smeta.h"
#include "procstat.h"

#define ID "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define ID2 "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
#define UID "5f8b1c7e-9d2a-4b6e-8f3c-1a2b3c4d5e6f"
#define UID_ "5f8b1c7e_9d2a_4b6e_8f3c_1a2b3c4d5e6f"
#define STATIC_UID "9a3e7b1c4d5f60718293a4b5c6d7e8f9"

struct cg_case {
	const char *what, *text, *id, *uid;
};

static const struct cg_case cg_cases[] = {
	{ "containerd, systemd driver, v2",
	  "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" UID_
	  ".slice/cri-containerd-" ID ".scope\n",
	  ID, UID },
	{ "containerd, systemd driver, v1 (every controller the same)",
	  "12:memory:/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" UID_
	  ".slice/cri-containerd-" ID ".scope\n"
	  "3:cpu,cpuacct:/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" UID_
	  ".slice/cri-containerd-" ID ".scope\n"
	  "1:name=systemd:/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" UID_
	  ".slice/cri-containerd-" ID ".scope\n0::/\n",
	  ID, UID },
	{ "guaranteed QoS (no QoS slice), systemd",
	  "0::/kubepods.slice/kubepods-pod" UID_ ".slice/cri-containerd-" ID ".scope", ID, UID },
	{ "CRI-O, systemd driver, v2",
	  "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" UID_
	  ".slice/crio-" ID ".scope\n",
	  ID, UID },
	{ "CRI-O, cgroupfs driver", "0::/kubepods/burstable/pod" UID "/crio-" ID "\n", ID, UID },
	{ "cri-dockerd, systemd driver",
	  "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" UID_
	  ".slice/docker-" ID ".scope\n",
	  ID, UID },
	{ "containerd/cri-dockerd, cgroupfs driver, v1 besteffort (as runc makes it here)",
	  "11:pids:/kubepods/besteffort/pod" UID "/" ID "\n4:memory:/kubepods/besteffort/pod" UID
	  "/" ID "\n0::/\n",
	  ID, UID },
	{ "cgroupfs, guaranteed QoS", "5:cpuset:/kubepods/pod" UID "/" ID "\n", ID, UID },
	{ "static pod: its uid is a 32-hex config hash",
	  "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" STATIC_UID
	  ".slice/cri-containerd-" ID ".scope\n",
	  ID, STATIC_UID },
	{ "kind: a pod inside a node container, kubelet- slices: the innermost wins",
	  "0::/system.slice/docker-" ID2 ".scope/kubelet.slice/kubelet-kubepods.slice/"
	  "kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod" UID_
	  ".slice/cri-containerd-" ID ".scope\n",
	  ID, UID },
	{ "read from another cgroup namespace (leading ..)",
	  "0::/../../kubepods-besteffort-pod" UID_ ".slice/cri-containerd-" ID ".scope\n", ID,
	  UID },
	{ "containerd's systemd cgroup driver without systemd (colon form)",
	  "0::/system.slice/containerd.service/kubepods-burstable-pod" UID_
	  ".slice:cri-containerd:" ID "\n",
	  ID, UID },
	{ "plain Docker, cgroupfs, v1", "12:cpu,cpuacct:/docker/" ID "\n10:memory:/docker/" ID "\n",
	  ID, "" },
	{ "plain Docker, systemd, v2", "0::/system.slice/docker-" ID ".scope\n", ID, "" },
	{ "Podman: the process sits in a sub-cgroup of its scope",
	  "0::/machine.slice/libpod-" ID ".scope/container\n", ID, "" },
	{ "a process in the pod cgroup itself: the pod, no container",
	  "0::/kubepods/besteffort/pod" UID "\n", "", UID },
	{ "a container scope outside any pod: no pod uid",
	  "0::/kubepods.slice/kubepods-besteffort.slice/cri-containerd-" ID ".scope\n", ID, "" },
	{ "no trailing newline, CRLF-free last line", "0::/system.slice/docker-" ID ".scope", ID,
	  "" },
};

struct cg_bad {
	const char *what, *text;
};

static const struct cg_bad cg_none[] = {
	{ "host process, v2", "0::/user.slice/user-1000.slice/session-3.scope\n" },
	{ "host init and root", "0::/init.scope\n" },
	{ "root cgroup", "0::/\n" },
	{ "this VM's sandbox cgroup (32 hex, not a container)",
	  "4:memory:/process_api/e5294bb198d50c90b20bd8301df8e806\n0::/\n" },
	{ "a runtime's own service", "0::/system.slice/containerd.service\n" },
	{ "Podman's conmon, not the container", "0::/machine.slice/libpod-conmon-" ID ".scope\n" },
	{ "overlong id", "0::/system.slice/docker-" ID "0.scope\n" },
	{ "short id", "0::/system.slice/docker-0123456789ab.scope\n" },
	{ "non-hex id", "0::/system.slice/docker-"
			"g123456789abcdef0123456789abcdef0123456789"
			"abcdef0123456789abcdef"
			".scope\n" },
	{ "upper-case hex", "0::/system.slice/docker-0123456789ABCDEF0123456789abcdef0123456789"
			    "abcdef0123456789abcdef.scope\n" },
	{ "a bare id outside a pod", "0::/system.slice/" ID "\n" },
	{ "a bare id below a QoS class but no pod", "0::/kubepods/besteffort/" ID "\n" },
	{ "pod uid in the wrong place: not below kubepods", "0::/user.slice/pod" UID "/" ID "\n" },
	{ "pod uid in the wrong place: below the container",
	  "0::/kubepods/besteffort/" ID "/pod" UID "\n" },
	{ "pod directory below a pod directory", "0::/kubepods/pod" UID "/pod" UID "\n" },
	{ "a pod slice not named after kubepods",
	  "0::/mykubepods-besteffort-pod" UID_ ".slice/x\n" },
	{ "mixed uid separators",
	  "0::/kubepods/besteffort/pod5f8b1c7e-9d2a_4b6e-8f3c-1a2b3c4d5e6f\n" },
	{ "a uid one digit short",
	  "0::/kubepods/besteffort/pod5f8b1c7e-9d2a-4b6e-8f3c-1a2b3c4d5e6\n" },
	{ ".. inside the path", "0::/kubepods/../kubepods/besteffort/pod" UID "/" ID "\n" },
	{ "not a cgroup line", "docker-" ID ".scope\n" },
	{ "hierarchy id not a number", "x:cpu:/docker/" ID "\n" },
	{ "relative path", "0::docker/" ID "\n" },
	{ "empty", "" },
};

Test(k8smeta, cgroup_real_world_forms)
{
	for (size_t i = 0; i < sizeof(cg_cases) / sizeof(cg_cases[0]); i++) {
		const struct cg_case *c = &cg_cases[i];
		char id[K8SMETA_CONTAINER_ID_LEN + 1], uid[K8SMETA_POD_UID_MAX + 1];

		cr_expect_eq(k8smeta_parse_cgroup(c->text, id, uid), 0, "%s", c->what);
		cr_expect_str_eq(id, c->id, "%s: container id", c->what);
		cr_expect_str_eq(uid, c->uid, "%s: pod uid", c->what);
	}
}

Test(k8smeta, cgroup_unrecognized_gives_nothing)
{
	for (size_t i = 0; i < sizeof(cg_none) / sizeof(cg_none[0]); i++) {
		char id[K8SMETA_CONTAINER_ID_LEN + 1] = "x", uid[K8SMETA_POD_UID_MAX + 1] = "x";

		cr_expect_eq(k8smeta_parse_cgroup(cg_none[i].text, id, uid), -ENOENT, "%s",
			     cg_none[i].what);
		cr_expect_str_empty(id, "%s: %s", cg_none[i].what, id);
		cr_expect_str_empty(uid, "%s: %s", cg_none[i].what, uid);
	}
}

Test(k8smeta, cgroup_lines_that_disagree_give_nothing)
{
	char id[K8SMETA_CONTAINER_ID_LEN + 1], uid[K8SMETA_POD_UID_MAX + 1];

	cr_assert_eq(k8smeta_parse_cgroup("4:memory:/docker/" ID "\n3:cpu:/docker/" ID2 "\n", id,
					  uid),
		     -EINVAL);
	cr_assert_str_empty(id);
	/* A coarser line (the pod only) agrees with a finer one. */
	cr_assert_eq(k8smeta_parse_cgroup("4:memory:/kubepods/pod" UID "/" ID
					  "\n3:cpu:/kubepods/pod" UID "\n",
					  id, uid),
		     0);
	cr_assert_str_eq(id, ID);
	cr_assert_str_eq(uid, UID);
}

Test(k8smeta, cgroup_deep_and_long_paths)
{
	size_t n = 0, cap = 200 * 8 + 200;
	char *text = malloc(cap), id[K8SMETA_CONTAINER_ID_LEN + 1], uid[K8SMETA_POD_UID_MAX + 1];

	n += snprintf(text + n, cap - n, "0::");
	for (int i = 0; i < 200; i++)
		n += snprintf(text + n, cap - n, "/a%d", i);
	snprintf(text + n, cap - n, "/docker-%s.scope\n", ID);
	cr_assert_eq(k8smeta_parse_cgroup(text, id, uid), -ENOENT, "201 components: refused");
	free(text);
	/* A 10,000-character component is just not a container. */
	text = malloc(10100);
	memset(text, 'a', 10100);
	memcpy(text, "0::/", 4);
	text[10099] = 0;
	cr_assert_eq(k8smeta_parse_cgroup(text, id, uid), -ENOENT);
	free(text);
}

Test(k8smeta, dns_checks)
{
	cr_assert(k8smeta_dns_label("default", 7));
	cr_assert(k8smeta_dns_label("kube-system", 11));
	cr_assert(k8smeta_dns_label("a", 1));
	cr_assert_not(k8smeta_dns_label("Default", 7));
	cr_assert_not(k8smeta_dns_label("-a", 2));
	cr_assert_not(k8smeta_dns_label("a-", 2));
	cr_assert_not(k8smeta_dns_label("a.b", 3));
	cr_assert_not(k8smeta_dns_label("", 0));
	cr_assert_not(k8smeta_dns_label("a\nb", 3));
	cr_assert(k8smeta_dns_label(
		"a23456789012345678901234567890123456789012345678901234567890123", 63));
	cr_assert_not(k8smeta_dns_label(
		"a234567890123456789012345678901234567890123456789012345678901234", 64));
	cr_assert(k8smeta_dns_subdomain("shop-7d4b9c6f5-x2x9q", 20));
	cr_assert(k8smeta_dns_subdomain("web-0.web.default", 17));
	cr_assert_not(k8smeta_dns_subdomain("web..x", 6));
	cr_assert_not(k8smeta_dns_subdomain(".web", 4));
	cr_assert_not(k8smeta_dns_subdomain("web.", 4));
	cr_assert_not(k8smeta_dns_subdomain("Web", 3));
	cr_assert_not(k8smeta_dns_subdomain("a b", 3));
	cr_assert(k8smeta_printable("checkout api", 12, 128));
	cr_assert_not(k8smeta_printable(" x", 2, 128));
	cr_assert_not(k8smeta_printable("x\x1b[2J", 5, 128), "an escape sequence");
	cr_assert_not(k8smeta_printable("caf\xc3\xa9", 5, 128), "ASCII only");
	cr_assert_not(k8smeta_printable("abc", 3, 2));
}

#define ENV(s) s, sizeof(s) - 1

Test(k8smeta, env_find_first_whole_entry)
{
	size_t vl = 99;
	const char *v;

	v = k8smeta_env_find(ENV("PATH=/bin\0HOSTNAME=shop-1\0HOSTNAME=other\0"), "HOSTNAME", &vl);
	cr_assert(v && vl == 6 && !memcmp(v, "shop-1", 6));
	cr_assert_null(k8smeta_env_find(ENV("XHOSTNAME=a\0HOSTNAMEX=b\0"), "HOSTNAME", &vl));
	v = k8smeta_env_find(ENV("HOSTNAME=\0"), "HOSTNAME", &vl);
	cr_assert(v && vl == 0);
	/* The last entry of a cut read has no NUL: it is not trusted. */
	cr_assert_null(k8smeta_env_find(ENV("A=1\0HOSTNAME=shop-1"), "HOSTNAME", &vl));
}

struct svc_case {
	const char *what;
	const char *env;
	size_t envlen;
	const char *cmd;
	size_t cmdlen;
	const char *comm, *want;
	enum k8smeta_service_source src;
};

#define C(s) s, sizeof(s) - 1
static const struct svc_case svc_cases[] = {
	{ "OTEL_SERVICE_NAME first", C("OTEL_SERVICE_NAME=checkout\0"),
	  C("/usr/bin/python3 -m gunicorn -n other shop:app\0"), "python3", "checkout",
	  K8SMETA_SVC_OTEL_SERVICE_NAME },
	{ "OTEL_RESOURCE_ATTRIBUTES, percent-decoded, spaces trimmed",
	  C("OTEL_RESOURCE_ATTRIBUTES=deployment.environment=prod, service.name = pay%20api ,x=y\0"),
	  C("gunicorn\0shop:app\0"), "gunicorn", "pay api", K8SMETA_SVC_OTEL_RESOURCE },
	{ "an empty OTEL_SERVICE_NAME is passed over", C("OTEL_SERVICE_NAME=\0"),
	  C("/usr/bin/gunicorn\0-w\0002\0shop:app\0"), "gunicorn", "shop", K8SMETA_SVC_APP_MODULE },
	{ "an OTEL_SERVICE_NAME with an escape sequence is passed over",
	  C("OTEL_SERVICE_NAME=\x1b]0;pwned\x07\0"), C("/usr/bin/gunicorn\0shop:app\0"), "gunicorn",
	  "shop", K8SMETA_SVC_APP_MODULE },
	{ "a bad percent escape is passed over", C("OTEL_RESOURCE_ATTRIBUTES=service.name=a%2\0"),
	  C("python3\0shop.py\0"), "python3", "shop", K8SMETA_SVC_MAIN_MODULE },
	{ "gunicorn --name", C(""), C("/usr/bin/gunicorn\0--name\0orders\0-w\0004\0shop:app\0"),
	  "gunicorn", "orders", K8SMETA_SVC_GUNICORN_NAME },
	{ "gunicorn -n via python -m", C(""),
	  C("/usr/bin/python3.14\0-m\0gunicorn\0-nweb\0shop:app\0"), "python3.14", "web",
	  K8SMETA_SVC_GUNICORN_NAME },
	{ "gunicorn --name=", C(""), C("gunicorn\0--name=api\0shop:app\0"), "gunicorn", "api",
	  K8SMETA_SVC_GUNICORN_NAME },
	{ "setproctitle's title, default proc_name", C(""), C("gunicorn: worker [shop:app]\0\0\0"),
	  "gunicorn", "shop", K8SMETA_SVC_GUNICORN_NAME },
	{ "the app module, as the containers here run it", C(""),
	  C("/usr/bin/python3.14\0-m\0gunicorn\0-w\0002\0-b\000127.0.0.1:8000\0"
	    "--graceful-timeout\0002\0--worker-tmp-dir\0/tmp\0shop:app\0"),
	  "python3.14", "shop", K8SMETA_SVC_APP_MODULE },
	{ "a dotted module and a factory call", C(""), C("gunicorn\0api.wsgi:create_app('prod')\0"),
	  "gunicorn", "api.wsgi", K8SMETA_SVC_APP_MODULE },
	{ "bind values are not modules", C(""), C("gunicorn\0-b\0myhost:http\0"), "gunicorn",
	  "gunicorn", K8SMETA_SVC_COMM },
	{ "a python: config is not the app", C(""),
	  C("gunicorn\0shop:app\0-c\0python:conf.gunicorn\0"), "gunicorn", "shop",
	  K8SMETA_SVC_APP_MODULE },
	{ "uwsgi --module", C(""), C("uwsgi\0--http\0:8000\0--module\0blog:app\0"), "uwsgi", "blog",
	  K8SMETA_SVC_APP_MODULE },
	{ "waitress-serve", C(""),
	  C("/usr/bin/python3\0/usr/bin/waitress-serve\0--port=8080\0"
	    "inventory:app\0"),
	  "waitress-serve", "inventory", K8SMETA_SVC_APP_MODULE },
	{ "FLASK_APP", C("FLASK_APP=src/blog.py\0"), C("/usr/bin/python3\0-m\0flask\0run\0"),
	  "python3", "blog", K8SMETA_SVC_FLASK_APP },
	{ "flask --app", C(""), C("/usr/bin/python3\0-m\0flask\0--app\0hello:create_app()\0run\0"),
	  "python3", "hello", K8SMETA_SVC_FLASK_APP },
	{ "a script", C(""), C("/usr/bin/python3.14\0-u\0/app/shop.py\0008000\0"), "python3.14",
	  "shop", K8SMETA_SVC_MAIN_MODULE },
	{ "python -m module", C(""), C("python3.11\0-X\0dev\0-m\0billing.server\0"), "python3.11",
	  "billing.server", K8SMETA_SVC_MAIN_MODULE },
	{ "python -c: the comm", C(""), C("python3\0-c\0import time; time.sleep(9)\0"), "python3",
	  "python3", K8SMETA_SVC_COMM },
	{ "a server module alone: the comm", C(""), C("python3\0-m\0gunicorn\0"), "python3",
	  "python3", K8SMETA_SVC_COMM },
	{ "a cmdline that is not a python one", C(""), C("sleep\0009\0"), "sleep", "sleep",
	  K8SMETA_SVC_COMM },
	{ "nothing readable", C(""), C(""), "", "", K8SMETA_SVC_NONE },
	{ "a comm with a control character", C(""), C(""), "a\tb", "", K8SMETA_SVC_NONE },
};

Test(k8smeta, service_name_ladder)
{
	for (size_t i = 0; i < sizeof(svc_cases) / sizeof(svc_cases[0]); i++) {
		const struct svc_case *c = &svc_cases[i];
		char out[K8SMETA_SERVICE_MAX + 1];
		enum k8smeta_service_source s =
			k8smeta_service_name(c->env, c->envlen, c->cmd, c->cmdlen, c->comm, out);

		cr_expect_str_eq(out, c->want, "%s", c->what);
		cr_expect_eq(s, c->src, "%s: source %s", c->what, k8smeta_service_source_name(s));
	}
}

Test(k8smeta, service_name_bounded)
{
	char env[300], out[K8SMETA_SERVICE_MAX + 1];
	int n = snprintf(env, sizeof(env), "OTEL_SERVICE_NAME=");

	memset(env + n, 'a', 129);
	env[n + 129] = 0;
	cr_assert_eq(k8smeta_service_name(env, n + 130, C("x\0"), "x", out), K8SMETA_SVC_COMM,
		     "129 bytes: too long, passed over");
	env[n + 128] = 0;
	cr_assert_eq(k8smeta_service_name(env, n + 129, C("x\0"), "x", out),
		     K8SMETA_SVC_OTEL_SERVICE_NAME);
	cr_assert_eq(strlen(out), 128);
}

/* A child that execs argv with envp and waits; returns once exec is done. */
static pid_t spawn(char *const argv[], char *const envp[])
{
	int p[2];
	char b;
	pid_t pid;

	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		close(p[0]);
		execve(argv[0], argv, envp);
		_exit(127);
	}
	close(p[1]);
	cr_assert_eq(read(p[0], &b, 1), 0, "exec done: the pipe closed");
	close(p[0]);
	return pid;
}

static void reap(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

Test(k8smeta, read_a_host_process)
{
	char *argv[] = { "/bin/sleep", "30", NULL };
	char *envp[] = { "HOSTNAME=web-0", "OTEL_SERVICE_NAME=sleeper", NULL };
	pid_t pid = spawn(argv, envp);
	struct k8smeta m;

	cr_assert_eq(k8smeta_read(pid, &m), 0);
	cr_assert_str_eq(m.service_name, "sleeper");
	cr_assert_eq(m.service_source, K8SMETA_SVC_OTEL_SERVICE_NAME);
	/* Not in a pod: HOSTNAME is no pod name, and no namespace is read. */
	cr_assert_null(k8smeta_str(m.pod_name));
	cr_assert_null(k8smeta_str(m.pod_uid));
	cr_assert_null(k8smeta_str(m.namespace));
	cr_assert_null(k8smeta_str(m.container_id));
	reap(pid);
	cr_assert_eq(k8smeta_read(pid, &m), -ESRCH);
}

/* An environment of about 1.4 MiB with OTEL_SERVICE_NAME first or last. */
static pid_t spawn_huge_env(int last)
{
	static char filler[14][100 * 1024];
	char *envp[17], *argv[] = { "/bin/sleep", "30", NULL };
	int n = 0;

	if (!last)
		envp[n++] = "OTEL_SERVICE_NAME=early";
	for (int i = 0; i < 14; i++) {
		memset(filler[i], 'x', sizeof(filler[i]) - 1);
		memcpy(filler[i], "F=", 2);
		envp[n++] = filler[i];
	}
	if (last)
		envp[n++] = "OTEL_SERVICE_NAME=late";
	envp[n] = NULL;
	return spawn(argv, envp);
}

Test(k8smeta, huge_environment_is_read_only_to_its_cap)
{
	struct k8smeta m;
	pid_t pid = spawn_huge_env(0);

	cr_assert_eq(k8smeta_read(pid, &m), 0);
	cr_assert_str_eq(m.service_name, "early");
	reap(pid);
	pid = spawn_huge_env(1);
	cr_assert_eq(k8smeta_read(pid, &m), 0);
	cr_assert_str_eq(m.service_name, "sleep", "past 1 MiB: not seen, the comm");
	cr_assert_eq(m.service_source, K8SMETA_SVC_COMM);
	reap(pid);
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	fputs(text, f);
	fclose(f);
}

/* A root whose /var/run is an ABSOLUTE symlink to /alt/run (not /run, which
 * the host may have): through /proc/PID/root/var/run the kernel would follow
 * it in our root and find nothing. */
static void make_root(char *dir, const char *ns_content)
{
	char p[512];

	cr_assert_not_null(mkdtemp(dir));
	snprintf(p, sizeof(p), "%s/var", dir);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/var/run", dir);
	cr_assert_eq(symlink("/alt/run", p), 0);
	snprintf(p, sizeof(p), "mkdir -p %s/alt/run/secrets/kubernetes.io/serviceaccount", dir);
	cr_assert_eq(system(p), 0);
	snprintf(p, sizeof(p), "%s/alt/run/secrets/kubernetes.io/serviceaccount/namespace", dir);
	if (ns_content)
		write_file(p, ns_content);
}

/* A child chrooted into dir, sleeping. */
static pid_t chrooted(const char *dir)
{
	int p[2];
	char b;
	pid_t pid;

	cr_assert_eq(pipe(p), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		if (chroot(dir) || chdir("/"))
			_exit(1);
		close(p[1]);
		pause();
		_exit(0);
	}
	close(p[1]);
	cr_assert_eq(read(p[0], &b, 1), 0);
	close(p[0]);
	usleep(10000);
	return pid;
}

static void remove_tree(const char *dir)
{
	char cmd[512];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

Test(k8smeta, namespace_inside_the_targets_root)
{
	char dir[] = "/tmp/k8smeta-root-XXXXXX", ns[K8SMETA_DNS_LABEL_MAX + 1], naive[600];
	pid_t pid;

	make_root(dir, "payments\n");
	pid = chrooted(dir);
	snprintf(naive, sizeof(naive),
		 "/proc/%d/root/var/run/secrets/kubernetes.io/serviceaccount/namespace", pid);
	cr_assert_eq(access(naive, F_OK), -1, "the naive path resolves /alt/run in OUR root");
	cr_assert_eq(k8smeta_read_namespace(pid, ns), 0);
	cr_assert_str_eq(ns, "payments", "trimmed");
	reap(pid);
	remove_tree(dir);
}

struct ns_case {
	const char *what, *content;
	int err;
};

Test(k8smeta, namespace_hostile_files)
{
	static const struct ns_case cases[] = {
		{ "upper case", "Default", -EINVAL },	       { "two lines", "a\nb", -EINVAL },
		{ "an escape sequence", "\x1b[2Jx", -EINVAL }, { "empty", "", -EINVAL },
		{ "spaces around", "  kube-system \n", 0 },
	};
	char big[400];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char dir[] = "/tmp/k8smeta-root-XXXXXX", ns[K8SMETA_DNS_LABEL_MAX + 1] = "x";
		pid_t pid;

		make_root(dir, cases[i].content);
		pid = chrooted(dir);
		cr_expect_eq(k8smeta_read_namespace(pid, ns), cases[i].err, "%s", cases[i].what);
		cr_expect(cases[i].err ? !ns[0] : !strcmp(ns, "kube-system"), "%s: %s",
			  cases[i].what, ns);
		reap(pid);
		remove_tree(dir);
	}
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	{
		char dir[] = "/tmp/k8smeta-root-XXXXXX", ns[K8SMETA_DNS_LABEL_MAX + 1], p[512];
		pid_t pid;

		make_root(dir, big);
		pid = chrooted(dir);
		cr_expect_eq(k8smeta_read_namespace(pid, ns), -EFBIG, "a 399-byte file");
		/* A FIFO must not hang the reader; a symlink out of the root stays in it. */
		snprintf(p, sizeof(p), "%s/alt/run/secrets/kubernetes.io/serviceaccount/namespace",
			 dir);
		unlink(p);
		cr_assert_eq(mkfifo(p, 0644), 0);
		cr_expect_eq(k8smeta_read_namespace(pid, ns), -EINVAL, "a FIFO");
		unlink(p);
		cr_assert_eq(symlink("../../../../../../../../etc/k8smeta-test-ns", p), 0);
		write_file("/etc/k8smeta-test-ns", "escaped");
		cr_expect_eq(k8smeta_read_namespace(pid, ns), -ENOENT,
			     "the host's /etc is out of reach");
		unlink("/etc/k8smeta-test-ns");
		reap(pid);
		remove_tree(dir);
	}
}

Test(k8smeta, cache_by_pid_and_start_time)
{
	char *argv[] = { "/bin/sleep", "30", NULL };
	char *env_a[] = { "OTEL_SERVICE_NAME=first", NULL };
	struct k8smeta_cache *c = k8smeta_cache__new(64);
	struct k8smeta m;
	uint64_t lookups, reads, t = 1000;
	pid_t pid = spawn(argv, env_a);

	cr_assert_not_null(c);
	cr_assert_null(k8smeta_cache__new(0));
	cr_assert_eq(k8smeta_cache__get(c, pid, t, &m), 0);
	cr_assert_str_eq(m.service_name, "first");
	cr_assert_eq(k8smeta_cache__get(c, pid, t + 10, &m), 0);
	k8smeta_cache__stats(c, &lookups, &reads);
	cr_assert_eq(lookups, 2);
	cr_assert_eq(reads, 1, "the second lookup is a hit");
	reap(pid);
	/* Gone: its late records still get its metadata, past the recheck too. */
	cr_assert_eq(k8smeta_cache__get(c, pid, t + 2 * K8SMETA_RECHECK_NS, &m), 0);
	cr_assert_str_eq(m.service_name, "first");
	k8smeta_cache__forget(c, pid);
	cr_assert_eq(k8smeta_cache__get(c, pid, t + 3 * K8SMETA_RECHECK_NS, &m), -ESRCH);
	cr_assert_null(k8smeta_str(m.service_name));
	cr_assert_eq(k8smeta_cache__get(c, 0, t, &m), -ESRCH);
	k8smeta_cache__free(c);
	k8smeta_cache__free(NULL);
}

/* A child with the given pid (clone3's set_tid, root only) that execs argv. */
static pid_t spawn_as(pid_t want, char *const argv[], char *const envp[])
{
	pid_t tid = want;
	struct clone_args args = { .exit_signal = SIGCHLD,
				   .set_tid = (uintptr_t)&tid,
				   .set_tid_size = 1 };
	int p[2];
	char b;
	long pid;

	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	pid = syscall(SYS_clone3, &args, sizeof(args));
	cr_assert_geq(pid, 0, "clone3 set_tid: %s", strerror(errno));
	if (pid == 0) {
		close(p[0]);
		execve(argv[0], argv, envp);
		_exit(127);
	}
	close(p[1]);
	cr_assert_eq(read(p[0], &b, 1), 0);
	close(p[0]);
	return (pid_t)pid;
}

Test(k8smeta, cache_sees_a_recycled_pid)
{
	char *argv[] = { "/bin/sleep", "30", NULL };
	char *env_a[] = { "OTEL_SERVICE_NAME=first", NULL };
	char *env_b[] = { "OTEL_SERVICE_NAME=second", NULL };
	struct k8smeta_cache *c = k8smeta_cache__new(64);
	struct k8smeta m;
	struct procstat st_a, st_b;
	pid_t a, b;

	a = spawn(argv, env_a);
	cr_assert_eq(procstat_read(a, &st_a), 0);
	cr_assert_eq(k8smeta_cache__get(c, a, 0, &m), 0);
	cr_assert_str_eq(m.service_name, "first");
	reap(a);
	usleep(30000); /* start times count 10 ms ticks: make them differ */
	b = spawn_as(a, argv, env_b);
	cr_assert_eq(b, a, "the same pid, another process");
	cr_assert_eq(procstat_read(b, &st_b), 0);
	cr_assert_neq(st_a.start_ticks, st_b.start_ticks);
	cr_assert_eq(k8smeta_cache__get(c, b, K8SMETA_RECHECK_NS / 2, &m), 0);
	cr_assert_str_eq(m.service_name, "first", "within the recheck interval: the cached one");
	cr_assert_eq(k8smeta_cache__get(c, b, K8SMETA_RECHECK_NS + 1, &m), 0);
	cr_assert_str_eq(m.service_name, "second", "past it: the start time changed");
	k8smeta_cache__free(c);
	reap(b);
}

Test(k8smeta, host_name_once)
{
	const char *h = k8smeta_host_name();
	char want[256];

	cr_assert_eq(gethostname(want, sizeof(want)), 0);
	cr_assert_not_null(h);
	cr_assert_str_eq(h, want);
	cr_assert_eq(k8smeta_host_name(), h, "read once");
}
