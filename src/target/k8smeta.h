/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Who a process is on a Kubernetes node, read from the node alone (no API
 * server): container id and pod uid from /proc/PID/cgroup, pod name from the
 * target's HOSTNAME, namespace from the service-account file inside the
 * target's root, a service name, and the node's name.  A field that cannot
 * be read or does not pass its check is absent (an empty string here, null
 * in records), never a guess.
 *
 * Sources and rules, exactly:
 *
 *  container_id   64 lowercase hex digits, the last (innermost) container
 *                 component of a /proc/PID/cgroup path, one of
 *                   cri-containerd-ID.scope  crio-ID.scope  docker-ID.scope
 *                   libpod-ID.scope                        (systemd driver)
 *                   POD/ID  POD/crio-ID  docker/ID          (cgroupfs driver)
 *                   PODSLICE:cri-containerd:ID (also :crio:, :docker:), the
 *                   form containerd writes when its systemd cgroup driver is
 *                   on without systemd
 *                 where POD is a cgroupfs pod directory (below).  Anything
 *                 else (a host process's 0::/user.slice/..., an id of the
 *                 wrong length or case, a bare id outside a pod) gives none.
 *  k8s_pod_uid    from the pod component directly above the container (or
 *                 the last component when the process sits in the pod
 *                 itself): systemd "[PREFIX-]kubepods[-besteffort|-burstable]
 *                 -pod<UID>.slice" (UID with '_' for '-'; PREFIX as kind's
 *                 "kubelet-"), cgroupfs "kubepods/[besteffort|burstable/]
 *                 pod<UID>".  UID is a lowercase UUID, written back with
 *                 dashes, or 32 lowercase hex digits (static pods' config
 *                 hash).  cgroup v2 ("0::") and v1 lines alike; leading
 *                 "/.." components (a reader in another cgroup namespace)
 *                 are skipped; lines that disagree give nothing.
 *  k8s_pod_name   HOSTNAME from /proc/PID/environ, when it is a DNS-1123
 *                 subdomain (<= 253) AND the process is in a pod (a pod uid
 *                 was found): a plain Docker container's HOSTNAME is its id,
 *                 a host shell's is the node.  Kubernetes sets the hostname
 *                 to the pod name cut to 63 characters, to spec.hostname
 *                 when set, and to the node's for hostNetwork pods: then
 *                 this is that hostname, not the pod name.
 *  k8s_namespace  the first line of var/run/secrets/kubernetes.io/
 *                 serviceaccount/namespace, else of run/secrets/..., opened
 *                 with openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS) under
 *                 /proc/PID/root (/var/run is an absolute symlink: through
 *                 /proc/PID/root/var/run the kernel would follow it in OUR
 *                 root).  A regular file of at most 256 bytes whose trimmed
 *                 content is a DNS-1123 label (<= 63); only for a process in
 *                 a pod.  Linux >= 5.6 (openat2); older kernels: absent.
 *  service_name   the first of these that passes (printable ASCII, no
 *                 control characters, no leading or trailing space, <= 128
 *                 bytes; identifiers where a module is meant):
 *                   1. OTEL_SERVICE_NAME in the target's environment;
 *                   2. service.name in its OTEL_RESOURCE_ATTRIBUTES
 *                      (key=value,..., values percent-decoded);
 *                   3. gunicorn's proc_name: "-n NAME", "--name NAME" or
 *                      "--name=NAME" on a gunicorn command line, or the
 *                      [NAME] of a setproctitle "gunicorn: master [NAME]"
 *                      (its module part when NAME is module:callable);
 *                   4. the WSGI/ASGI app module: the last argument of the
 *                      form module[.sub...]:callable[(...)] (gunicorn,
 *                      waitress-serve, uwsgi --module, uvicorn, hypercorn)
 *                      that is not the value of -b/--bind, -c/--config,
 *                      -e/--env, --paste, --statsd-host, -n/--name,
 *                      --app, giving "module"
 *                      ("shop:app" -> "shop", "api.wsgi:app" -> "api.wsgi");
 *                   5. FLASK_APP in the environment, else "--app X" or
 *                      "--app=X": module part of X (a "path/x.py" -> "x");
 *                   6. the main module of a python command line: "python
 *                      [opts] path/shop.py" -> "shop", "python -m shop" ->
 *                      "shop" (not for -c, nor -m of a server: gunicorn,
 *                      flask, waitress, uwsgi, uvicorn, hypercorn, werkzeug);
 *                   7. the comm (/proc/PID/comm).
 *                 gunicorn settings from a config file (-c) are not read.
 *  host_name      PROFILIS_HOST_NAME in OUR environment when it is a DNS-1123
 *                 subdomain (a DaemonSet sets it from spec.nodeName: a pod
 *                 has its own UTS namespace, so its uname is the pod's
 *                 name), else uname's nodename; read once.
 */
#ifndef PROFILIS_K8SMETA_H
#define PROFILIS_K8SMETA_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define K8SMETA_CONTAINER_ID_LEN 64
#define K8SMETA_POD_UID_MAX 36
#define K8SMETA_DNS_SUBDOMAIN_MAX 253
#define K8SMETA_DNS_LABEL_MAX 63
#define K8SMETA_SERVICE_MAX 128
/* Reads are bounded: a hostile target cannot make us read or keep more. */
#define K8SMETA_ENVIRON_MAX (1u << 20) /* a variable past 1 MiB is not seen */
#define K8SMETA_CMDLINE_MAX (64u << 10)
#define K8SMETA_CGROUP_MAX (64u << 10)

enum k8smeta_service_source {
	K8SMETA_SVC_NONE,
	K8SMETA_SVC_OTEL_SERVICE_NAME,
	K8SMETA_SVC_OTEL_RESOURCE,
	K8SMETA_SVC_GUNICORN_NAME,
	K8SMETA_SVC_APP_MODULE,
	K8SMETA_SVC_FLASK_APP,
	K8SMETA_SVC_MAIN_MODULE,
	K8SMETA_SVC_COMM,
};

/* Every string field is NUL-terminated, "" when absent (k8smeta_str
 * turns that into NULL).  Plain data: copy it freely. */
struct k8smeta {
	pid_t ns_pid; /* its PID in its own PID namespace (nspid.h), 0: unknown */
	char container_id[K8SMETA_CONTAINER_ID_LEN + 1];
	char pod_uid[K8SMETA_POD_UID_MAX + 1];
	char pod_name[K8SMETA_DNS_SUBDOMAIN_MAX + 1];
	char namespace[K8SMETA_DNS_LABEL_MAX + 1];
	char service_name[K8SMETA_SERVICE_MAX + 1];
	enum k8smeta_service_source service_source;
};

static inline const char *k8smeta_str(const char *field)
{
	return field[0] ? field : NULL;
}

/* "OTEL_SERVICE_NAME", "gunicorn proc_name", ... for messages and docs. */
const char *k8smeta_service_source_name(enum k8smeta_service_source s);

/* --- Pure parsers (no I/O), the rules above. --- */

/* The container id and pod uid of a /proc/PID/cgroup text.  Both outputs
 * are always written ("" when absent).  0 when either was found, -ENOENT
 * when nothing was recognized, -EINVAL when lines disagree. */
int k8smeta_parse_cgroup(const char *text, char container_id[K8SMETA_CONTAINER_ID_LEN + 1],
			 char pod_uid[K8SMETA_POD_UID_MAX + 1]);

/* The value of the first KEY=... entry of a NUL-separated environment block
 * of `len` bytes (entries past the last NUL are ignored: a cut read), or
 * NULL; *vlen gets its length. */
const char *k8smeta_env_find(const char *env, size_t len, const char *key, size_t *vlen);

/* The service-name ladder (rules 1-7) over an environment block, a
 * NUL-separated command line and the comm; writes the name ("" if none)
 * and returns its source. */
enum k8smeta_service_source k8smeta_service_name(const char *env, size_t envlen,
						 const char *cmdline, size_t cmdlen,
						 const char *comm,
						 char out[K8SMETA_SERVICE_MAX + 1]);

/* Checks: a DNS-1123 label (namespaces), a DNS-1123 subdomain (pod and node
 * names), and printable ASCII of 1..max bytes without leading or trailing
 * space (service names).  Each takes a length: the input need not be a C
 * string.  1 when valid. */
int k8smeta_dns_label(const char *s, size_t len);
int k8smeta_dns_subdomain(const char *s, size_t len);
int k8smeta_printable(const char *s, size_t len, size_t max);

/* --- Readers of a live process. --- */

/* All fields of `pid`.  0, or -ESRCH when the process is gone (m is then
 * all absent); a field that cannot be read is absent. */
int k8smeta_read(pid_t pid, struct k8smeta *m);

/* The namespace file inside pid's root (see above); 0 or -errno. */
int k8smeta_read_namespace(pid_t pid, char out[K8SMETA_DNS_LABEL_MAX + 1]);

/* The node's name, read once (thread-safe); NULL when it fails its check. */
const char *k8smeta_host_name(void);

/* --- A per-process cache, keyed by pid and start time. ---
 * Thread-safe (one mutex; /proc is read outside it).  A hit older than
 * K8SMETA_RECHECK_NS re-reads the start time: a recycled pid reads afresh,
 * while a process that has exited keeps its last entry, so records drained
 * after its exit still get its metadata.  `forget` drops an entry early. */
#define K8SMETA_RECHECK_NS 1000000000ULL

struct k8smeta_cache;

struct k8smeta_cache *k8smeta_cache__new(unsigned int slots);
/* Copies pid's metadata into *out: 0, or -ESRCH (out all absent) when the
 * process was never seen and is gone.  now_ns: CLOCK_MONOTONIC. */
int k8smeta_cache__get(struct k8smeta_cache *c, pid_t pid, uint64_t now_ns, struct k8smeta *out);
void k8smeta_cache__forget(struct k8smeta_cache *c, pid_t pid);
/* Lookups so far and how many of them read /proc. */
void k8smeta_cache__stats(struct k8smeta_cache *c, uint64_t *lookups, uint64_t *reads);
void k8smeta_cache__free(struct k8smeta_cache *c);

#endif
