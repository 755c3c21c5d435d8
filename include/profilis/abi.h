/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/*
 * The one header shared by the BPF programs (bpf/) and the userspace loader
 * (src/): record layouts, size limits and the interpreter-offset table that
 * userspace measures and writes into the programs' rodata before load.
 * Everything here is plain fixed-width data so both compilers agree on it.
 */
#ifndef PROFILIS_ABI_H
#define PROFILIS_ABI_H

#ifdef __bpf__
/* vmlinux.h provides the __u8..__u64 types in BPF builds. */
#else
#include <linux/types.h>
#endif

/* Bytes of each string a request record carries; a longer one is cut there
 * and marked (its str header says how long it really was).  PATH_INFO of
 * 2 KiB covers what proxies pass (gunicorn's request line is 4 KiB at most). */
#define PBPF_METHOD_MAX 32
#define PBPF_PATH_MAX 2048
#define PBPF_ROUTE_MAX 2048
#define PBPF_ENDPOINT_MAX 128
#define PBPF_EXC_MAX 128 /* tp_name bytes kept */
#define PBPF_TRACEPARENT_MAX 64

/* Names the BPF side compares Python str objects against.  Userspace packs
 * the bytes into rodata so no string literal has to live in BPF code. */
enum pbpf_name {
	PBPF_NAME_REQUEST_CTX, /* "flask.request_ctx": the ContextVar's name */
	PBPF_NAME_WSGI_APP,    /* "wsgi_app": co_name of Flask.wsgi_app */
	PBPF_NAME_ENVIRON,     /* locals of Flask.wsgi_app ... */
	PBPF_NAME_CTX,
	PBPF_NAME_ERROR,
	PBPF_NAME_RESPONSE,
	PBPF_NAME_REQUEST_METHOD, /* WSGI environ keys ... */
	PBPF_NAME_PATH_INFO,
	PBPF_NAME_HTTP_TRACEPARENT,
	PBPF_NAME_REQUEST,     /* attributes: RequestContext.request */
	PBPF_NAME_URL_RULE,    /* Request.url_rule */
	PBPF_NAME_RULE,	       /* Rule.rule */
	PBPF_NAME_ENDPOINT,    /* Rule.endpoint */
	PBPF_NAME_STATUS_CODE, /* Response._status_code */
	PBPF_NAME__COUNT,
};

#define PBPF_NAME_BYTES 24

struct pbpf_name_key {
	__u64 len;
	__u64 w[PBPF_NAME_BYTES / 8]; /* bytes, zero padded */
};

/* "This version has no such field / layer" in the offsets table. */
#define PBPF_NONE 0xffffffffu

/* How a version lays out what the BPF side and the symbolizer read.  Each
 * enum is one concern; the code that branches on it lives in one place. */
enum pbpf_keys_layout {
	PBPF_KEYS_LOG2 = 0, /* 3.11+: dk_log2_index_bytes, dk_kind */
	PBPF_KEYS_SIZE = 1, /* 3.9/3.10: dk_size, {hash, key, value} only */
};

enum pbpf_attr_layout {
	PBPF_ATTR_DICTOFFSET = 0, /* 3.9/3.10: tp_dictoffset only */
	PBPF_ATTR_311 = 1,	  /* values pointer at -4 words, dict at -3 */
	PBPF_ATTR_312 = 2,	  /* tagged dict-or-values word at -3 words */
	PBPF_ATTR_313 = 3,	  /* inline values after the object, dict at -3 */
};

enum pbpf_long_layout {
	PBPF_LONG_SIZE = 0, /* ob_size is the signed digit count */
	PBPF_LONG_TAG = 1,  /* 3.12+: lv_tag = ndigits << 3 | sign */
};

enum pbpf_lines_format {
	PBPF_LINES_LNOTAB = 0,	  /* 3.9: co_lnotab byte pairs */
	PBPF_LINES_310 = 1,	  /* 3.10: co_linetable (PEP 626) */
	PBPF_LINES_LOCATIONS = 2, /* 3.11+: location table */
};

/* What a frame's instruction word (pbpf_stack_event.instr) holds. */
enum pbpf_instr_kind {
	PBPF_INSTR_LASTI_BYTES = 0, /* 3.9: int f_lasti, a byte offset */
	PBPF_INSTR_LASTI_UNITS = 1, /* 3.10: int f_lasti, in code units */
	PBPF_INSTR_PREV_PTR = 2,    /* 3.11/3.12: prev_instr, a pointer */
	PBPF_INSTR_PTR = 3,	    /* 3.13+: instr_ptr, the current one */
};

/*
 * Byte offsets inside one CPython build.  Filled in by src/python/pyruntime.c from
 * a per-version table checked against the debug builds (tools/gen-offsets)
 * and, for 3.13+, the target's own _Py_DebugOffsets.
 */
struct pbpf_py_offsets {
	__u64 runtime_addr;	  /* &_PyRuntime in the target */
	__u64 none_addr;	  /* &_Py_NoneStruct in the target */
	__u64 unicode_type_addr;  /* &PyUnicode_Type: what is exactly a str */
	__u64 long_type_addr;	  /* &PyLong_Type: what is exactly an int */
	__u64 holder_addr;	  /* word holding the GIL holder's tstate */
	__u64 holder_locked_addr; /* int "GIL locked", 0: holder is exact */
	/* 3.14+: frames hold tagged _PyStackRefs (f_executable, localsplus); the
	 * low bits to clear before use (0 before 3.14).  A local whose tag bits
	 * are all set is a tagged int, not an object. */
	__u64 stackref_tag_mask;
	__u32 runtime_tstate_current; /* _PyRuntime.gilstate.tstate_current
					 * (3.9-3.11), else PBPF_NONE */
	__u32 runtime_interp_main;    /* _PyRuntime.interpreters.main, PBPF_NONE:
					 * find the interpreter with id 0 */
	__u32 interp_ceval_gil;	      /* PyInterpreterState.ceval.gil (3.12+) */
	__u32 gil_last_holder;	      /* struct _gil_runtime_state.last_holder */
	__u32 gil_locked;	      /* struct _gil_runtime_state.locked */
	__u32 tstate_frame;	      /* PyThreadState: the frame or cframe ptr */
	__u32 cframe_current_frame;   /* _PyCFrame.current_frame, PBPF_NONE
					 * when tstate_frame is the frame itself */
	__u32 frame_code;	      /* f_code / f_executable */
	__u32 frame_previous;	      /* previous / f_back */
	__u32 frame_localsplus;
	__u32 frame_owner;	    /* char owner, PBPF_NONE: no such field */
	__u32 frame_owner_cstack;   /* owners from this up are not Python code:
				     * 3.12's C-stack entry frame, 3.14's
				     * interpreter-owned frames (skipped) */
	__u32 code_name;	    /* PyCodeObject.co_name */
	__u32 code_localsplusnames; /* co_localsplusnames (3.9/3.10: co_varnames) */
	__u32 code_nlocalsplus;	    /* co_nlocalsplus (3.9/3.10: co_nlocals) */
	__u32 str_length;	    /* PyASCIIObject.length */
	__u32 str_state;	    /* PyASCIIObject.state (bitfield word) */
	__u32 str_ascii_data;	    /* sizeof(PyASCIIObject) */
	__u32 str_compact_data;	    /* sizeof(PyCompactUnicodeObject) */
	__u32 str_kind_shift;	    /* bit position of state.kind (3 bits) */
	__u32 str_compact_bit;
	__u32 str_ascii_bit;
	__u32 type_name; /* PyTypeObject.tp_name (const char *) */
	__u32 type_flags;
	__u32 type_dictoffset;
	__u32 heaptype_cached_keys;  /* PyHeapTypeObject.ht_cached_keys */
	__u32 attr_layout;	     /* enum pbpf_attr_layout */
	__u32 managed_dict_flag;     /* Py_TPFLAGS_MANAGED_DICT (0: none) */
	__u32 inline_values_flag;    /* Py_TPFLAGS_INLINE_VALUES (3.13+) */
	__s32 managed_dict_ptr;	     /* dict pointer, relative to the object */
	__s32 managed_values_ptr;    /* inline values pointer, relative (3.11) */
	__u32 inline_values_at;	     /* 3.13+: PyDictValues after the header */
	__u32 values_items;	     /* PyDictValues.values[] */
	__u32 values_valid;	     /* PyDictValues.valid (3.13+) */
	__u32 dict_keys;	     /* PyDictObject.ma_keys */
	__u32 dict_values;	     /* PyDictObject.ma_values */
	__u32 keys_layout;	     /* enum pbpf_keys_layout */
	__u32 keys_size;	     /* PyDictKeysObject.dk_size (3.9/3.10) */
	__u32 keys_log2_index_bytes; /* PyDictKeysObject.dk_log2_index_bytes */
	__u32 keys_kind;	     /* .dk_kind (0 = general, else unicode) */
	__u32 keys_nentries;
	__u32 keys_indices;    /* start of dk_indices */
	__u32 tuple_items;     /* PyTupleObject.ob_item */
	__u32 long_layout;     /* enum pbpf_long_layout */
	__u32 long_size;       /* ob_size or lv_tag */
	__u32 long_digits;     /* PyLongObject.ob_digit */
	__u32 contextvar_name; /* PyContextVar.var_name */
	/* the stack sampler and symbolization */
	__u32 tstate_native_thread_id; /* PyThreadState.native_thread_id
					 * (PBPF_NONE before 3.11) */
	__u32 tstate_thread_id;	       /* PyThreadState.thread_id: pthread_self() */
	__u32 frame_prev_instr;	       /* prev_instr / instr_ptr / f_lasti */
	__u32 frame_window;	       /* bytes of a frame the sampler reads */
	__u32 instr_kind;	       /* enum pbpf_instr_kind */
	__u32 lines_format;	       /* enum pbpf_lines_format */
	__u32 code_code_adaptive;      /* PyCodeObject.co_code_adaptive (3.11+) */
	__u32 code_linetable;	       /* co_linetable (3.9: co_lnotab) */
	__u32 code_firstlineno;
	__u32 code_filename;
	__u32 code_qualname;  /* co_qualname (3.9/3.10: co_name) */
	__u32 code_flags;     /* co_flags */
	__u32 code_shim_flag; /* 3.13+ CO_NO_MONITORING_EVENTS: a shim's code */
	__u32 bytes_size;     /* PyBytesObject.ob_size */
	__u32 bytes_data;     /* PyBytesObject.ob_sval */
	/* --list (userspace only) */
	__u32 runtime_interpreters_head; /* _PyRuntime.interpreters.head */
	__u32 interp_modules;		 /* PyInterpreterState.modules (sys.modules) */
	__u32 interp_id;		 /* PyInterpreterState.id (main: 0) */
	__u32 interp_next;		 /* PyInterpreterState.next */
};

/* What a traced process is to the BPF programs (enum pbpf_proc_flags). */
enum pbpf_proc_flags {
	/* In the tree and followed at fork, but not a CPython of ours (a shell
	 * between gunicorn and its workers, or an unsupported build): its
	 * children are traced, its own memory is never read. */
	PBPF_PROC_NOT_PYTHON = 1 << 0,
	/* It called exec after its descriptor was written: the addresses belong
	 * to the old image, so nothing is read until userspace resolves it again. */
	PBPF_PROC_EXECED = 1 << 1,
};

/* A ContextVar the request probe has seen, and whether it is Flask's
 * request context: its address, its var_name str and its var_hash (CPython
 * derives it from the address and the name's hash, so an object freed and
 * another put at the same address with another name no longer matches).
 * `check` is the xor of the others: a torn write (two threads learning at
 * once) does not match either. */
struct pbpf_learned_var {
	__u64 var, name, hash, check;
};

/*
 * What the request probe learns of a process in its first request and
 * re-checks on every use (bpf/requests.bpf.c): which ContextVar is
 * flask.request_ctx, and where Flask.wsgi_app sits and keeps its locals.
 * Written by BPF only; a fork copies it (the child's memory is the same), an
 * exec gets a new descriptor with zeroes.
 */
struct pbpf_learned {
	struct pbpf_learned_var request_var; /* "flask.request_ctx" */
	struct pbpf_learned_var other_var;   /* the last one that is not */
	__u64 wsgi_code;		     /* Flask.wsgi_app's code object */
	__u64 wsgi_names;		     /* its co_localsplusnames tuple */
	__u32 wsgi_depth;		     /* frames from RequestContext.pop up */
	__u8 wsgi_local[4];		     /* environ, ctx, error, response */
	__u64 wsgi_check;		     /* xor of the wsgi fields */
	/* Bytes from header to entries of the last keys object read through
	 * its index: how much the next such read takes at once (a hint, no
	 * fact: what is read is checked against its own header). */
	__u32 keys_span;
	__u32 unused;
};

/*
 * One traced process: the interpreter descriptor userspace resolved for it,
 * the offsets of its build and the addresses in its address space.  The value
 * of the traced set, keyed by tgid; a fork copies the parent's (same image,
 * same addresses), so one loaded object serves any mix of versions.
 */
struct pbpf_proc_desc {
	__u32 desc_id; /* userspace's descriptor (stack events carry it) */
	__u32 flags;   /* enum pbpf_proc_flags */
	struct pbpf_py_offsets py;
	/* hash() in this process of each name (enum pbpf_name): dicts are looked
	 * up through their hash index (bpf/pyindex.bpf.h).  Computed by userspace
	 * from its _Py_HashSecret (src/python/pyhash.c); a fork keeps the secret,
	 * an exec gets a new descriptor.  0 in hashes_known: dicts are scanned. */
	__s64 name_hash[PBPF_NAME__COUNT];
	__u32 hashes_known;
	/* BPF sets it once a key was found with the hash we computed: the hash
	 * function and secret are then proven this process's, and a key a dict
	 * lacks is believed absent in any dict. */
	__u32 hashes_proven;
	struct pbpf_learned learned; /* userspace writes zeroes */
};

/*
 * Version rules both sides apply, written once here so the unit tests check
 * the code the BPF programs run.
 */
#define PBPF_RULE static inline __attribute__((always_inline))

/* A frame's _PyStackRef (3.14+ f_executable and locals) as an object
 * address: the tag bits cleared; 0 for a NULL reference (the tag alone) or a
 * tagged int (all tag bits set), which is not an object.  Before 3.14 the
 * mask is 0 and the word is the object pointer itself. */
PBPF_RULE __u64 pbpf_stackref_obj(__u64 tag_mask, __u64 ref)
{
	if (tag_mask && (ref & tag_mask) == tag_mask)
		return 0;
	return ref & ~tag_mask;
}

/* Whether a frame is not Python code and is skipped in a stack: owned by the
 * C stack (3.12/3.13 entry frames) or the interpreter (3.14+, 3.15's base
 * frame), every owner from frame_owner_cstack up, as CPython's own walkers
 * decide; never before 3.12 (frame_owner_cstack is PBPF_NONE). */
PBPF_RULE int pbpf_frame_is_shim(const struct pbpf_py_offsets *py, __u8 owner)
{
	return py->frame_owner != PBPF_NONE && py->frame_owner_cstack != PBPF_NONE &&
	       owner >= py->frame_owner_cstack;
}

#define PBPF_PREFIX_MAX 8    /* exclusion prefixes checked in BPF */
#define PBPF_PREFIX_BYTES 64 /* longer ones are checked in userspace */

/* Request filters applied in BPF, so dropped requests cost no ring-buffer
 * traffic.  Written to rodata by userspace before load. */
struct pbpf_filter_cfg {
	__u64 sample_threshold; /* keep if prandom_u32 < this; 1<<32 = all */
	__u32 keep_errors;	/* 5xx and exceptions bypass sampling */
	__u32 n_prefixes;
	__u32 prefix_len[PBPF_PREFIX_MAX];
	__u64 prefix[PBPF_PREFIX_MAX][PBPF_PREFIX_BYTES / 8]; /* raw path bytes */
};

/* Why a request event was kept (enum pbpf_keep). */
enum pbpf_keep {
	PBPF_KEEP_SAMPLED = 0, /* chosen by the sampling rate */
	PBPF_KEEP_ERROR = 1,   /* a 5xx/exception, kept whatever the coin said */
};

/* Which fields of a request event hold real data. */
enum pbpf_req_flags {
	PBPF_F_HAVE_FRAME = 1 << 0, /* found the Flask.wsgi_app frame */
	PBPF_F_HAVE_METHOD = 1 << 1,
	PBPF_F_HAVE_PATH = 1 << 2,
	PBPF_F_HAVE_TRACEPARENT = 1 << 3,
	PBPF_F_HAVE_RULE = 1 << 4, /* ctx.request.url_rule is a Rule */
	PBPF_F_NO_RULE = 1 << 5,   /* url_rule is None: unmatched URL */
	PBPF_F_HAVE_ENDPOINT = 1 << 6,
	PBPF_F_HAVE_STATUS = 1 << 7,
	PBPF_F_ERROR = 1 << 8, /* wsgi_app's `error` is not None */
	PBPF_F_HAVE_EXC_TYPE = 1 << 9,
	PBPF_F_RULE_OBJ = 1 << 10, /* url_rule is an object, not None: a
					 * rule matched, even if unreadable */
};

/* A copied Python str: `len` is its length in characters from the object's
 * header, `kind` the PEP 393 kind (1 latin-1, 2 UCS-2, 4 UCS-4); the field
 * holds `copied` bytes of raw code units from byte `skip` on, the rest of it
 * is not written.  The str was cut when len * kind > copied.  BPF reads the
 * str's header and its first bytes in one read, straight into the field:
 * `skip` is that header's size, and each field has PBPF_STR_SLACK bytes for
 * it beyond the `size` bytes of text it keeps. */
struct pbpf_str_hdr {
	__u32 len;
	__u16 copied; /* bytes of text, from `skip` on */
	__u8 kind;
	__u8 skip; /* bytes before the text, at most PBPF_STR_SLACK */
};

#define PBPF_STR_SLACK 64

#define PBPF_STR_FIELD(name, size)      \
	struct pbpf_str_hdr name##_hdr; \
	char name[(size) + PBPF_STR_SLACK]

enum pbpf_event_kind {
	PBPF_EV_REQUEST = 1,
	PBPF_EV_FIRST_SEEN = 2, /* first Flask request of a process */
	/* 3 was a fork event: the traced set now grows in the kernel alone. */
	PBPF_EV_SAMPLE = 4, /* an on-CPU stack sample */
	PBPF_EV_OFFCPU = 5, /* a stack that blocked, and for how long */
	PBPF_EV_EXEC = 6,   /* a traced process called exec: resolve it again */
};

#define PBPF_STACK_MAX 128  /* --max-depth cap */
#define PBPF_MAX_PROCS 4096 /* traced processes (the tree) */

/* What a thread was doing when the sampling clock fired. */
enum pbpf_sample_class {
	PBPF_CLASS_PYTHON = 0,	  /* running Python with the GIL: stack valid */
	PBPF_CLASS_NO_GIL = 1,	  /* a Python thread without the GIL (C code, I/O) */
	PBPF_CLASS_NO_PYTHON = 2, /* a thread never seen running Python */
};

/* Python frames of one thread, innermost first. */
struct pbpf_stack_event {
	__u32 kind; /* PBPF_EV_SAMPLE or PBPF_EV_OFFCPU */
	__u32 pid;
	__u32 tid;
	__u16 depth;
	__u8 truncated; /* more frames than --max-depth */
	__u8 cls;	/* enum pbpf_sample_class */
	__u32 desc_id;	/* the process's descriptor: how to read code */
	__u32 pad;
	__u64 req_start_ns;	     /* the request in flight (0: none); joins REQ */
	__u64 ts_ns;		     /* when the sample was taken / the thread blocked */
	__u64 offcpu_ns;	     /* OFFCPU: how long it stayed blocked */
	__u64 code[PBPF_STACK_MAX];  /* PyCodeObject * per frame */
	__u64 instr[PBPF_STACK_MAX]; /* instruction word per frame (enum pbpf_instr_kind) */
};

/* Every event starts with its kind; process events are only this. */
struct pbpf_proc_event {
	__u32 kind;
	__u32 pid;
};

struct pbpf_req_event {
	__u32 kind;  /* PBPF_EV_REQUEST */
	__u32 flags; /* enum pbpf_req_flags */
	__u32 keep;  /* enum pbpf_keep */
	__u32 pad;
	__u32 pid;
	__u32 tid;
	__u64 start_ns; /* CLOCK_MONOTONIC */
	__u64 end_ns;
	__s64 status;
	PBPF_STR_FIELD(method, PBPF_METHOD_MAX);
	PBPF_STR_FIELD(path, PBPF_PATH_MAX);
	PBPF_STR_FIELD(route, PBPF_ROUTE_MAX);
	PBPF_STR_FIELD(endpoint, PBPF_ENDPOINT_MAX);
	PBPF_STR_FIELD(traceparent, PBPF_TRACEPARENT_MAX);
	__u32 exc_type_len;		 /* strlen(tp_name), PBPF_EXC_MAX + 1: longer */
	char exc_type[PBPF_EXC_MAX + 8]; /* tp_name, NUL terminated */
};

/* Counters kept by the BPF side, read by userspace at exit. */
struct pbpf_stats {
	__u64 ctxvar_hits; /* all PyContextVar_Set/Reset traps */
	__u64 request_starts;
	__u64 request_ends;
	__u64 ringbuf_drops;  /* reserve failed: record lost */
	__u64 inflight_drops; /* in-flight map full: start lost */
	__u64 no_start;	      /* end without a recorded start */
	__u64 read_failures;  /* a user-memory read failed */
	__u64 frame_missing;  /* no Flask.wsgi_app frame found */
	__u64 forks_tracked;
	__u64 forks_untracked;	 /* traced set full: a child not traced */
	__u64 unsampled;	 /* dropped by --sample */
	__u64 cpu_samples;	 /* stack samples of traced threads */
	__u64 offcpu_stacks;	 /* blocked stacks recorded */
	__u64 stack_truncated;	 /* stacks cut at --max-depth */
	__u64 sample_drops;	 /* stack events lost: ring buffer full */
	__u64 excluded;		 /* dropped by an --exclude-route prefix */
	__u64 nested_pushes;	 /* a context pushed again while in flight */
	__u64 nested_pops;	 /* pops of those that end no request */
	__u64 execs;		 /* traced processes that called exec */
	__u64 exec_report_drops; /* --all: new images not reported (ring buffer full) */
	__u64 attr_cache_hits;	 /* attribute lookups answered by attr_cache */
	__u64 attr_cache_misses; /* ... that scanned a keys table */
	__u64 dict_scans;	 /* dicts scanned, not looked up by hash */
	__u64 facts_learned;	 /* ContextVars and wsgi_app frames learned */
};

#endif /* PROFILIS_ABI_H */
