/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * Every map and global variable of the BPF programs, declared once.  The
 * programs are split into units by concern (requests.bpf.c, sampler.bpf.c,
 * proctree.bpf.c) and linked into one object, one skeleton; maps.bpf.c
 * defines what is declared here (PBPF_DEFINE_GLOBALS), every other unit sees
 * extern declarations.  Userspace sizes the maps between open and load
 * (src/kernel/loader.c) and fills the read-only variables.
 */
#ifndef PROFILIS_MAPS_BPF_H
#define PROFILIS_MAPS_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "profilis/abi.h"

#ifdef PBPF_DEFINE_GLOBALS
#define PBPF_GLOBAL
#define PBPF_INIT(...) = __VA_ARGS__
#else
#define PBPF_GLOBAL extern
#define PBPF_INIT(...)
#endif

/* ---- configuration, written by userspace before load ---- */

/* Python names compared in BPF (enum pbpf_name), packed by userspace. */
PBPF_GLOBAL const volatile struct pbpf_name_key names[PBPF_NAME__COUNT] PBPF_INIT({});
/* Sampling and exclusion prefixes (filter.bpf.h). */
PBPF_GLOBAL const volatile struct pbpf_filter_cfg filter PBPF_INIT({ .sample_threshold = 1ULL
											 << 32 });
/* Unread ring-buffer bytes above which a submit wakes the reader. */
PBPF_GLOBAL const volatile __u64 wake_bytes PBPF_INIT(1 << 19);
/* Frames per stack (--max-depth). */
PBPF_GLOBAL const volatile __u32 max_depth PBPF_INIT(64);
/* --all: every exec is reported to userspace, traced or not. */
PBPF_GLOBAL const volatile bool discover_all PBPF_INIT(false);
/* Off (-F 0 --no-offcpu): the request probes skip the per-thread bookkeeping. */
PBPF_GLOBAL const volatile bool stacks_enabled PBPF_INIT(true);

/* Counters, read by userspace through the skeleton's bss. */
PBPF_GLOBAL struct pbpf_stats stats PBPF_INIT({});
/* Blocked stacks waiting in offcpu_stacks for their thread to run again. */
PBPF_GLOBAL __s64 offcpu_pending PBPF_INIT(0);

/* ---- to userspace ---- */

PBPF_GLOBAL struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4 << 20); /* resized by userspace before load */
} events SEC(".maps");

/* ---- processes (proctree.bpf.h) ---- */

/* tgid -> its interpreter descriptor: the traced set (--max-procs). */
PBPF_GLOBAL struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PBPF_MAX_PROCS);
	__type(key, __u32);
	__type(value, struct pbpf_proc_desc);
} traced_procs SEC(".maps");

/* Tgids whose first Flask request was already announced (--max-procs). */
PBPF_GLOBAL struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, PBPF_MAX_PROCS);
	__type(key, __u32);
	__type(value, __u8);
} flask_seen SEC(".maps");

/* ---- requests (requests.bpf.c) ---- */

struct inflight_key {
	__u32 tid;
	__u32 pad;
	__u64 ctx; /* the RequestContext object */
};

struct inflight_val {
	__u64 start_ns; /* CLOCK_MONOTONIC */
	__u32 sampled;
	__u16 depth;   /* pushes of the same context on top of the first */
	__u16 emitted; /* the record went out at wsgi_app's pop */
};

/* Requests in flight beyond the INFLIGHT_SLOTS each thread keeps in its own
 * storage (thread_states): a gevent or eventlet worker keeps many on one OS
 * thread, a view may push request contexts of its own (--max-inflight).
 * LRU: a thread that dies mid-request cannot leak its entry forever. */
PBPF_GLOBAL struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct inflight_key);
	__type(value, struct inflight_val);
} inflight SEC(".maps");

/* Entries put in `inflight` minus entries taken out: while 0 (every thread
 * serving one request at a time) a request not in its thread's slots is not
 * looked for there.  An entry the LRU evicts keeps it above 0, which only
 * costs lookups. */
PBPF_GLOBAL __s64 inflight_in_map PBPF_INIT(0);

/* What BPF keeps of each thread that ran a request or was sampled, in the
 * thread's task storage: found through the task (no hash, no lock), freed
 * with the thread, and a new thread at a reused tid starts empty.  Only the
 * thread itself writes its requests, so the slots need no lock; the sampler
 * reads tstate and req_start from programs on other CPUs (word-sized). */
#define INFLIGHT_SLOTS 4
struct inflight_slot {
	__u64 ctx; /* the RequestContext object; 0: free */
	struct inflight_val v;
};
struct thread_state {
	__u64 tstate;	 /* its PyThreadState (stacks); 0: not known */
	__u64 req_start; /* start ns of its request in flight (stacks); 0: none */
	struct inflight_slot slot[INFLIGHT_SLOTS];
};
PBPF_GLOBAL struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct thread_state);
} thread_states SEC(".maps");

/* ---- reading Python objects (py*.bpf.h) ---- */

/* A dict lookup scans at most this many entries; WSGI environs hold ~30. */
#define PY_DICT_SCAN_MAX 256
#define PY_LOCALS_MAX 32
#define PY_FRAME_WALK_MAX 8
#define PY_WANT_MAX 4
/* wsgi_app's locals read at once once learned (it has 7). */
#define PY_LEARNED_LOCALS 16

/* Entries, values and str headers are copied in bulk: on this VM each
 * bpf_probe_read_user costs ~100 ns, so one read per 16 dict entries instead
 * of two per entry is most of the request-end cost.  Per-CPU is safe: a
 * tracing program never nests with another on the same CPU. */
#define PY_CHUNK 16
#define PY_KEYBUF 96
/* Dicts looked up through their hash index (pyindex.bpf.h) are read whole,
 * header, index and entries in one read, when they fit: a WSGI environ has
 * ~30 keys, 64 slots, ~850 bytes.  A read costs the same up to 1 KiB here
 * (~85 ns for 8 bytes or 1,024), so one large read beats three exact ones. */
#define PY_INDEX_BYTES 512
#define PY_TABLE_WORDS 256
#define PY_KEYS_BYTES 4096
_Static_assert(PY_KEYS_BYTES >= 64 + PY_INDEX_BYTES + PY_TABLE_WORDS * 8,
	       "a keys object of the largest index and table fits the buffer");
/* A frame read whole from its start through PY_LEARNED_LOCALS locals, only
 * where they start under PY_FRAME_SMALL bytes in (3.11+: 72-80; 3.9/3.10's
 * PyFrameObject keeps them ~360 bytes in and is read in two pieces). */
#define PY_FRAME_SMALL 128
#define PY_FRAME_WIN (PY_FRAME_SMALL + PY_LEARNED_LOCALS * 8)
_Static_assert((PY_FRAME_WIN / 8 & (PY_FRAME_WIN / 8 - 1)) == 0,
	       "frame_word masks a word index: the window is a power of two words");
/* getattrs reads an object from 32 bytes before it through its first ~26
 * inline values (3.13+), or PY_OBJ_WIN_MIN bytes where that runs off its
 * mapping or holds nothing we use. */
#define PY_OBJ_WIN 256
#define PY_OBJ_WIN_MIN 64
_Static_assert((PY_OBJ_WIN & (PY_OBJ_WIN - 1)) == 0, "the window is masked: a power of two");

struct py_scratch {
	__u64 entries[PY_CHUNK * 3];   /* up to 16 {hash, key, value} entries */
	__u64 values[PY_CHUNK];	       /* split-table values for those entries */
	__u64 names[PY_LOCALS_MAX];    /* co_localsplusnames items */
	__u64 slots[PY_LOCALS_MAX];    /* frame localsplus */
	__u8 keybuf[PY_KEYBUF];	       /* str header + first bytes */
	__u64 pathbuf[8];	       /* a path's first 64 bytes, for filters */
	__u64 keys[PY_KEYS_BYTES / 8]; /* a dict's keys object, header to entries */
	__u64 frame[PY_FRAME_WIN / 8]; /* a frame, through some locals */
	/* getattrs: the object from PY_PRE_HEADER bytes before it (its
	 * managed pointers, header and 3.13+'s inline values); objwin_len 0
	 * when none was read for the object now looked up. */
	__u64 objwin[PY_OBJ_WIN / 8];
	__u64 objwin_addr;
	__u64 objwin_len;
};

PBPF_GLOBAL struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct py_scratch);
} py_scratch SEC(".maps");

/*
 * Where attribute `name` of the instances of `type` was found in this
 * process: the type's shared keys object, the address of that entry's key
 * word, the key str it held, and the slot in the instances' value arrays.
 * Instances of one class share one keys object whose entries only grow, so
 * after one scan a lookup is three reads (the type's keys, the key word, the
 * value) instead of a scan of ~20 keys.  The keys object and the key pointer
 * are re-read on every hit: a type or keys object freed and another put at
 * the same address fails the check and is scanned again.  Keyed by tgid too:
 * equal addresses in two processes say nothing about each other's memory.
 */
struct attr_cache_key {
	__u64 type;
	__u32 tgid;
	__u32 name;
};

struct attr_cache_val {
	__u64 keys;
	__u64 key_at;
	__u64 key;
	__u64 slot;
	__u64 flags; /* the type's tp_flags; 3.9/3.10: its tp_dictoffset */
};

PBPF_GLOBAL struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct attr_cache_key);
	__type(value, struct attr_cache_val);
} attr_cache SEC(".maps");

/* ---- stacks (sampler.bpf.c) ---- */

/* tid -> the stack of a blocked thread, until it runs again.  Entries put
 * in minus entries taken out in offcpu_pending (an entry the LRU evicts
 * keeps it above 0, which only costs a lookup per switch). */
PBPF_GLOBAL struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct pbpf_stack_event);
} offcpu_stacks SEC(".maps");

PBPF_GLOBAL struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pbpf_stack_event);
} stack_scratch SEC(".maps");

#endif /* PROFILIS_MAPS_BPF_H */
