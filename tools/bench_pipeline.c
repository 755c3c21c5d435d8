// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * bench-pipeline: how many request events per second the userspace pipeline
 * sustains from ring buffer to JSONL on disk.  A replay stands in for BPF:
 * synthetic struct pbpf_req_event records, shaped like the ones the probes
 * emit for GET /users/<int:uid>, are pushed as fast as one thread can into
 * the same stages profilis-bpf wires in main.c (collector -> pipeline_sink:
 * decode -> JSONL exporter in a directory -> aggregator), with its default
 * queue, batch and flush settings, once blocking the producer and once
 * dropping the oldest event.  A run is timed from the first push to
 * collector__stop returning (every record handed to write(2)); the fsync and
 * rename of jsonl__finish are timed separately.  A second part times the
 * per-event CPU work alone, without locks or I/O: request_decode,
 * jsonl_encode_request and aggregator__push.  Results are Markdown tables on stdout,
 * medians of the repetitions; progress goes to stderr.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <linux/magic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>
#include "aggregator.h"
#include "collector.h"
#include "jsonl.h"
#include "log.h"
#include "pipeline.h"
#include "request.h"

#define EXIT_USAGE 64
/* Distinct events replayed in a cycle: 4096 x 816 bytes is about what the
 * default 4 MiB ring buffer holds, so the producer reads about as much
 * memory as it would from a full ring. */
#define POOL 4096
#define QUEUE_SIZE 2048 /* the defaults of --queue-size, --batch-max, */
#define BATCH_MAX 128	/* --flush-interval */
#define FLUSH_NS 100000000ULL
#define MAX_REPS 99

struct bench_opts {
	unsigned long long events; /* per run */
	int reps;
	const char *base; /* temp directories are made in here */
};

/* One end-to-end run. */
struct run {
	double secs;	    /* first push -> collector__stop returned */
	double finish_secs; /* jsonl__finish: fsync + rename */
	double cpu_secs;    /* user + system, both threads, same span as secs */
	unsigned long long pushed, written, dropped, bytes, batches, high_water;
};

/* The CPU work per event, no I/O. */
struct cpu_cost {
	double decode_ns, both_ns, agg_ns; /* both: decode + encode */
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: bench-pipeline [-n EVENTS] [-r REPS] [-d DIR]\n"
		"  -n EVENTS  events per run, 1000..100000000 (default 1000000)\n"
		"  -r REPS    repetitions per configuration, 1..%d (default 3)\n"
		"  -d DIR     where the temporary JSONL directories go; on disk, not tmpfs\n"
		"             (default /var/tmp)\n",
		MAX_REPS);
}

static void die_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

static void die_usage(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "bench-pipeline: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	usage(stderr);
	exit(EXIT_USAGE);
}

static unsigned long long parse_num(const char *opt, const char *s, unsigned long long lo,
				    unsigned long long hi)
{
	unsigned long long v;
	char *end;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v < lo || v > hi)
		die_usage("%s: '%s' is not an integer in %llu..%llu", opt, s, lo, hi);
	return v;
}

static void parse_args(int argc, char **argv, struct bench_opts *o)
{
	int c;

	*o = (struct bench_opts){ .events = 1000000, .reps = 3, .base = "/var/tmp" };
	while ((c = getopt(argc, argv, "n:r:d:h")) != -1) {
		switch (c) {
		case 'n': o->events = parse_num("-n", optarg, 1000, 100000000); break;
		case 'r': o->reps = parse_num("-r", optarg, 1, MAX_REPS); break;
		case 'd': o->base = optarg; break;
		case 'h': usage(stdout); exit(0);
		default: /* getopt said what was wrong */ usage(stderr); exit(EXIT_USAGE);
		}
	}
	if (optind != argc)
		die_usage("unexpected argument '%s'", argv[optind]);
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

/* User + system time of the whole process: unlike wall time, it does not
 * grow when other work on a shared VM takes the CPUs away. */
static double cpu_secs(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static int64_t realtime_offset_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec - (int64_t)mono_ns();
}

/* A latin-1 (PEP 393 kind 1) Python str as the probes copy it. */
static void put_str(struct pbpf_str_hdr *h, char *data, size_t size, const char *s)
{
	size_t n = strlen(s);

	h->len = n;
	h->copied = n < size ? n : size;
	h->kind = 1;
	memcpy(data, s, h->copied);
}

/* Event i of the pool: a Flask GET /users/<uid> answered 200 by one of two
 * sync workers in 80-400 µs.  Timestamps are set when it is pushed. */
static void make_event(unsigned i, uint64_t *rng, struct pbpf_req_event *e)
{
	char path[32];

	*rng = *rng * 6364136223846793005ULL + 1442695040888963407ULL;
	memset(e, 0, sizeof(*e));
	e->kind = PBPF_EV_REQUEST;
	e->flags = PBPF_F_HAVE_FRAME | PBPF_F_HAVE_METHOD | PBPF_F_HAVE_PATH | PBPF_F_HAVE_RULE |
		   PBPF_F_HAVE_ENDPOINT | PBPF_F_HAVE_STATUS;
	e->keep = PBPF_KEEP_SAMPLED;
	e->pid = e->tid = 41230 + (i & 1);
	e->start_ns = 0;
	e->end_ns = 80000 + (*rng >> 33) % 320000;
	e->status = 200;
	snprintf(path, sizeof(path), "/users/%u", (unsigned)((*rng >> 20) % 100000));
	put_str(&e->method_hdr, e->method, sizeof(e->method), "GET");
	put_str(&e->path_hdr, e->path, sizeof(e->path), path);
	put_str(&e->route_hdr, e->route, sizeof(e->route), "/users/<int:uid>");
	put_str(&e->endpoint_hdr, e->endpoint, sizeof(e->endpoint), "get_user");
}

static struct pbpf_req_event *make_pool(void)
{
	struct pbpf_req_event *pool = calloc(POOL, sizeof(*pool));
	uint64_t rng = 42;

	if (!pool)
		return NULL;
	for (unsigned i = 0; i < POOL; i++)
		make_event(i, &rng, &pool[i]);
	return pool;
}

/* Removes the run's directory; returns the bytes its files held, or -1. */
static long long remove_dir(const char *dir)
{
	long long bytes = 0;
	struct dirent *d;
	struct stat st;
	DIR *dp = opendir(dir);
	int fd;

	if (!dp)
		return -1;
	fd = dirfd(dp);
	while ((d = readdir(dp))) {
		if (!strcmp(d->d_name, ".") || !strcmp(d->d_name, ".."))
			continue;
		if (fstatat(fd, d->d_name, &st, 0) == 0)
			bytes += st.st_size;
		unlinkat(fd, d->d_name, 0);
	}
	closedir(dp);
	return rmdir(dir) ? -1 : bytes;
}

/* The stages of main.c's open_exporters(), minus the console and profile. */
struct rig {
	char dir[PATH_MAX];
	struct jsonl_exporter *jsonl;
	struct aggregator *agg;
	struct pipeline pipe;
	struct collector *collector;
};

static int rig_open(struct rig *r, const char *base, bool drop_oldest)
{
	int err;

	memset(r, 0, sizeof(*r));
	snprintf(r->dir, sizeof(r->dir), "%s/profilis-bench-pipeline.XXXXXX", base);
	if (!mkdtemp(r->dir)) {
		err = errno;
		fprintf(stderr,
			"bench-pipeline: cannot create a directory in %s: %s; -d names "
			"an existing, writable directory\n",
			base, strerror(err));
		r->dir[0] = 0;
		return -err;
	}
	r->jsonl = jsonl__new(&(struct jsonl_opts){ .dir = r->dir });
	if (!r->jsonl) {
		err = errno;
		fprintf(stderr, "bench-pipeline: cannot write JSONL to %s: %s\n", r->dir,
			strerror(err));
		return -err;
	}
	r->agg = aggregator__new(&(struct agg_opts){
		.window_minutes = 15, .max_errors = 100, .start_ns = mono_ns() });
	if (!r->agg)
		return -errno;
	r->pipe = (struct pipeline){ .realtime_offset_ns = realtime_offset_ns(),
				     .sample_rate = 1.0,
				     .jsonl = r->jsonl,
				     .agg = r->agg };
	r->collector =
		collector__new(&(struct collector_opts){ .item_size = sizeof(struct pbpf_req_event),
							 .copy = request_event_copy,
							 .queue_size = QUEUE_SIZE,
							 .batch_max = BATCH_MAX,
							 .flush_interval_ns = FLUSH_NS,
							 .drop_oldest = drop_oldest,
							 .sink = pipeline_sink,
							 .tick = pipeline_tick,
							 .ctx = &r->pipe });
	return r->collector ? 0 : -errno;
}

/* Frees the stages; returns the bytes left on disk (-1: unknown). */
static long long rig_close(struct rig *r)
{
	long long bytes = -1;

	collector__free(r->collector);
	jsonl__free(r->jsonl);
	aggregator__free(r->agg);
	if (r->dir[0])
		bytes = remove_dir(r->dir);
	return bytes;
}

/* The replay: events 1 µs apart, as from a service at 1M requests/s. */
static int push_all(struct collector *c, struct pbpf_req_event *pool, unsigned long long n)
{
	uint64_t t = mono_ns();

	for (unsigned long long i = 0; i < n; i++) {
		struct pbpf_req_event *e = &pool[i % POOL];
		uint64_t dur = e->end_ns - e->start_ns;
		int err;

		e->end_ns = t + i * 1000;
		e->start_ns = e->end_ns - dur;
		err = collector__push(c, e);
		if (err)
			return err;
	}
	return 0;
}

/* Everything pushed must be accounted for, and every byte counted on disk. */
static int check_run(const struct run *r, const struct pipeline *p, long long on_disk)
{
	if (r->written + r->dropped != r->pushed || p->malformed || p->decoded != r->written ||
	    on_disk != (long long)r->bytes) {
		fprintf(stderr,
			"bench-pipeline: accounting mismatch: pushed %llu, written %llu, "
			"dropped %llu, decoded %llu, malformed %llu, %llu bytes counted, %lld on "
			"disk\n",
			r->pushed, r->written, r->dropped, (unsigned long long)p->decoded,
			(unsigned long long)p->malformed, r->bytes, on_disk);
		return -EPROTO;
	}
	return 0;
}

static int one_run(const struct bench_opts *o, struct pbpf_req_event *pool, bool drop_oldest,
		   struct run *out)
{
	struct collector_stats cs;
	struct jsonl_stats js;
	struct rig rig;
	uint64_t t0, t1, t2;
	double cpu0, cpu1;
	long long on_disk;
	int err;

	err = rig_open(&rig, o->base, drop_oldest);
	if (err)
		goto cleanup;
	cpu0 = cpu_secs();
	t0 = mono_ns();
	err = push_all(rig.collector, pool, o->events);
	collector__stop(rig.collector);
	t1 = mono_ns();
	cpu1 = cpu_secs();
	jsonl__finish(rig.jsonl);
	t2 = mono_ns();
	if (err)
		goto cleanup;
	collector__stats(rig.collector, &cs);
	jsonl__stats(rig.jsonl, &js);
	*out = (struct run){ .secs = (t1 - t0) / 1e9,
			     .finish_secs = (t2 - t1) / 1e9,
			     .cpu_secs = cpu1 - cpu0,
			     .pushed = cs.enqueued,
			     .written = js.written,
			     .dropped = cs.dropped,
			     .bytes = js.bytes,
			     .batches = cs.batches,
			     .high_water = cs.high_water };
	if (js.write_errors)
		err = -EIO;
cleanup:
	on_disk = rig_close(&rig);
	if (!err)
		err = check_run(out, &rig.pipe, on_disk);
	return err;
}

/* Per-event CPU cost, measured the way pipeline_sink runs it: one record
 * reused for every event (hot in cache), events cycled from the pool.
 * Encoding alone is the difference of two loops, so it pays no extra copy. */
static int cpu_costs(struct pbpf_req_event *pool, unsigned long long n, struct cpu_cost *out)
{
	static struct request_record r, recs[POOL];
	static char line[JSONL_LINE_MAX];
	int64_t off = realtime_offset_ns();
	struct aggregator *agg;
	uint64_t t0, t1, t2, t3;
	long long sink = 0;

	agg = aggregator__new(&(struct agg_opts){ .window_minutes = 15, .start_ns = mono_ns() });
	if (!agg)
		return -errno;
	for (unsigned i = 0; i < POOL; i++) /* also faults the arrays in, untimed */
		request_decode(&pool[i], off, &recs[i]);
	t0 = mono_ns();
	for (unsigned long long i = 0; i < n; i++)
		sink += request_decode(&pool[i % POOL], off, &r);
	t1 = mono_ns();
	for (unsigned long long i = 0; i < n; i++) {
		sink += request_decode(&pool[i % POOL], off, &r);
		sink += jsonl_encode_request(&r, line, sizeof(line));
	}
	t2 = mono_ns();
	for (unsigned long long i = 0; i < n; i++)
		aggregator__push(agg, &recs[i % POOL]);
	t3 = mono_ns();
	aggregator__free(agg);
	*out = (struct cpu_cost){ .decode_ns = (double)(t1 - t0) / n,
				  .both_ns = (double)(t2 - t1) / n,
				  .agg_ns = (double)(t3 - t2) / n };
	return sink > 0 ? 0 : -EPROTO; /* every encode returns a length > 0 */
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Median of field `get` over n results (sorts a copy). */
static double median(const void *base, size_t stride, size_t n, double (*get)(const void *))
{
	double v[MAX_REPS];

	for (size_t i = 0; i < n; i++)
		v[i] = get((const char *)base + i * stride);
	qsort(v, n, sizeof(v[0]), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static double pushed_rate(const void *p)
{
	const struct run *r = p;
	return r->pushed / r->secs;
}

static double written_rate(const void *p)
{
	const struct run *r = p;
	return r->written / r->secs;
}

static double mb_rate(const void *p)
{
	const struct run *r = p;
	return r->bytes / r->secs / 1e6;
}

static double synced_rate(const void *p)
{
	const struct run *r = p;
	return r->written / (r->secs + r->finish_secs);
}

static double cpu_per_push(const void *p)
{
	const struct run *r = p;
	return r->cpu_secs / r->pushed * 1e9;
}

static double dropped_share(const void *p)
{
	const struct run *r = p;
	return 100.0 * r->dropped / r->pushed;
}

static double bytes_per_line(const void *p)
{
	const struct run *r = p;
	return (double)r->bytes / r->written;
}

static double decode_ns(const void *p)
{
	return ((const struct cpu_cost *)p)->decode_ns;
}
static double both_ns(const void *p)
{
	return ((const struct cpu_cost *)p)->both_ns;
}
static double agg_ns(const void *p)
{
	return ((const struct cpu_cost *)p)->agg_ns;
}

static double encode_ns(const void *p)
{
	return both_ns(p) - decode_ns(p);
}

/* 1234567.8 -> "1,234,568", like the tables of tools/bench. */
static const char *thousands(double v, char *buf, size_t size)
{
	char digits[32];
	int n = snprintf(digits, sizeof(digits), "%.0f", v), o = 0;

	for (int i = 0; i < n && o + 2 < (int)size; i++) {
		if (i && digits[i - 1] != '-' && (n - i) % 3 == 0)
			buf[o++] = ',';
		buf[o++] = digits[i];
	}
	buf[o] = 0;
	return buf;
}

static double dropped_count(const void *p)
{
	return ((const struct run *)p)->dropped;
}

static double best(const void *base, size_t stride, size_t n, double (*get)(const void *))
{
	double v = 0;

	for (size_t i = 0; i < n; i++)
		if (get((const char *)base + i * stride) > v)
			v = get((const char *)base + i * stride);
	return v;
}

static void print_runs_row(bool drop_oldest, const struct run *runs, int n)
{
	char a[32], b[32], c[32], d[32], e[32];
	size_t sz = sizeof(*runs);

	printf("| %s | %s | %s | %s | %.1f | %s (%.1f %%) | %s | %.0f | %.0f |\n",
	       drop_oldest ? "true" : "false", thousands(median(runs, sz, n, pushed_rate), a, 32),
	       thousands(median(runs, sz, n, written_rate), b, 32),
	       thousands(best(runs, sz, n, written_rate), e, 32), median(runs, sz, n, mb_rate),
	       thousands(median(runs, sz, n, dropped_count), c, 32),
	       median(runs, sz, n, dropped_share),
	       thousands(median(runs, sz, n, synced_rate), d, 32),
	       median(runs, sz, n, cpu_per_push), median(runs, sz, n, bytes_per_line));
}

static void print_cpu_table(const struct cpu_cost *c, int n)
{
	size_t sz = sizeof(*c);

	printf("\n| per event, one thread, no locks or I/O | ns/event |\n|---|---:|\n");
	printf("| request_decode | %.0f |\n", median(c, sz, n, decode_ns));
	printf("| jsonl_encode_request (the difference) | %.0f |\n", median(c, sz, n, encode_ns));
	printf("| **decode + encode** | **%.0f** |\n", median(c, sz, n, both_ns));
	printf("| aggregator__push (aggregator, for comparison) | %.0f |\n",
	       median(c, sz, n, agg_ns));
}

static const char *fs_name(const char *dir)
{
	static char other[32];
	struct statfs sf;

	if (statfs(dir, &sf))
		return "unknown";
	switch ((unsigned long)sf.f_type) {
	case TMPFS_MAGIC: return "tmpfs";
	case EXT4_SUPER_MAGIC: return "ext4";
	case XFS_SUPER_MAGIC: return "xfs";
	case BTRFS_SUPER_MAGIC: return "btrfs";
	case OVERLAYFS_SUPER_MAGIC: return "overlayfs";
	}
	snprintf(other, sizeof(other), "fs 0x%lx", (unsigned long)sf.f_type);
	return other;
}

static int bench_config(const struct bench_opts *o, struct pbpf_req_event *pool, bool drop_oldest,
			struct run *runs)
{
	for (int i = 0; i < o->reps; i++) {
		struct run *r = &runs[i];
		int err = one_run(o, pool, drop_oldest, r);

		if (err) {
			fprintf(stderr, "bench-pipeline: run failed: %s\n", strerror(-err));
			return err;
		}
		fprintf(stderr,
			"  drop_oldest=%-5s run %d/%d: %.2f s (CPU %.2f s), %.0f events/s "
			"written, %llu dropped, %.1f MB, %llu batches, queue high water %llu; "
			"finish (fsync) %.2f s\n",
			drop_oldest ? "true" : "false", i + 1, o->reps, r->secs, r->cpu_secs,
			written_rate(r), r->dropped, r->bytes / 1e6, r->batches, r->high_water,
			r->finish_secs);
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct run runs[2][MAX_REPS];
	struct cpu_cost cost[MAX_REPS];
	struct pbpf_req_event *pool;
	struct bench_opts o;
	const char *fs;
	int err = 0;

	parse_args(argc, argv, &o);
	log_set_level(LOG_WARN);
	fs = fs_name(o.base);
	if (!strcmp(fs, "tmpfs"))
		fprintf(stderr,
			"bench-pipeline: warning: %s is tmpfs: this measures memory, not "
			"a disk; use -d DIR\n",
			o.base);
	pool = make_pool();
	if (!pool)
		return perror("bench-pipeline: pool"), 1;
	for (int d = 0; d < 2 && !err; d++)
		err = bench_config(&o, pool, d, runs[d]);
	for (int i = 0; i < o.reps && !err; i++)
		err = cpu_costs(pool, o.events, &cost[i]);
	if (!err) {
		printf("Userspace pipeline, replayed: %llu synthetic GET /users/<int:uid> events "
		       "(%zu bytes each) per run, median of %d runs; collector queue %d, batch "
		       "%d, flush 0.1 s; JSONL to a directory in %s (%s); MB = 10^6 bytes.\n\n",
		       o.events, sizeof(struct pbpf_req_event), o.reps, QUEUE_SIZE, BATCH_MAX,
		       o.base, fs);
		printf("| drop_oldest | events/s pushed | events/s written | best run | "
		       "MB/s written | dropped | events/s incl. fsync | CPU ns/event pushed | "
		       "bytes/line |\n"
		       "|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
		print_runs_row(false, runs[0], o.reps);
		print_runs_row(true, runs[1], o.reps);
		print_cpu_table(cost, o.reps);
	}
	free(pool);
	return err ? 1 : 0;
}
