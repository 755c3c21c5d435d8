// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Per-target offsets.  The table is measured on the pyenv debug builds; from
 * 3.13 on, CPython publishes the offsets debuggers need at the start of
 * _PyRuntime (_Py_DebugOffsets, cookie "xdebugpy"), so for those versions
 * the fields it covers come from the target itself and a patch release
 * that moves them still works.  Dict internals, str bit positions and the
 * managed-dict helpers are not in it and stay in the table.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "pyinspect.h"
#include "pyoffsets.h"
#include "pyruntime.h"

/* CPython 3.13's struct _Py_DebugOffsets (Include/internal/pycore_runtime.h),
 * every member a uint64_t; the layout is fixed within a minor version. */
struct pydebug_313 {
	char cookie[8];
	uint64_t version, free_threaded;
	struct {
		uint64_t size, finalizing, interpreters_head;
	} runtime_state;
	struct {
		uint64_t size, id, next, threads_head, gc, imports_modules, sysdict, builtins,
			ceval_gil, gil_runtime_state, gil_runtime_state_enabled,
			gil_runtime_state_locked, gil_runtime_state_holder;
	} interpreter_state;
	struct {
		uint64_t size, prev, next, interp, current_frame, thread_id, native_thread_id,
			datastack_chunk, status;
	} thread_state;
	struct {
		uint64_t size, previous, executable, instr_ptr, localsplus, owner;
	} interpreter_frame;
	struct {
		uint64_t size, filename, name, qualname, linetable, firstlineno, argcount,
			localsplusnames, localspluskinds, co_code_adaptive;
	} code_object;
	struct {
		uint64_t size, ob_type;
	} pyobject;
	struct {
		uint64_t size, tp_name, tp_repr, tp_flags;
	} type_object;
	struct {
		uint64_t size, ob_item, ob_size;
	} tuple_object;
	struct {
		uint64_t size, ob_item, ob_size;
	} list_object;
	struct {
		uint64_t size, ma_keys, ma_values;
	} dict_object;
	struct {
		uint64_t size, ob_fval;
	} float_object;
	struct {
		uint64_t size, lv_tag, ob_digit;
	} long_object;
	struct {
		uint64_t size, ob_size, ob_sval;
	} bytes_object;
	struct {
		uint64_t size, state, length, asciiobject_size;
	} unicode_object;
	struct {
		uint64_t size, collecting;
	} gc;
};

_Static_assert(sizeof(struct pydebug_313) == PYDEBUG_313_SIZE,
	       "the 3.13 _Py_DebugOffsets layout measured with gdb is 584 bytes");

/* Offsets and sizes stay below a megabyte (_PyRuntimeState is ~280 KiB);
 * anything else means we are not reading what we think. */
static int small(uint64_t v)
{
	return v < 1 << 20;
}

int pydebug_overlay_313(const uint8_t *img, size_t len, unsigned int major, unsigned int minor,
			struct pbpf_py_offsets *off)
{
	struct pydebug_313 d;
	const uint64_t *w;

	if (!img || len < sizeof(d))
		return -EINVAL;
	memcpy(&d, img, sizeof(d));
	if (memcmp(d.cookie, "xdebugpy", 8) != 0 || (d.version >> 24) != major ||
	    ((d.version >> 16) & 0xff) != minor || d.free_threaded)
		return -EINVAL;
	/* Every word after the header is an offset or a size. */
	for (w = &d.runtime_state.size; w < (const uint64_t *)(&d + 1); w++)
		if (!small(*w))
			return -EINVAL;
	if (d.interpreter_state.gil_runtime_state_holder < d.interpreter_state.gil_runtime_state ||
	    d.interpreter_state.gil_runtime_state_locked < d.interpreter_state.gil_runtime_state)
		return -EINVAL;
	/* No `main` here: the main interpreter is the one with id 0 on the list
	 * (sub-interpreters, as mod_wsgi makes, come before it). */
	off->runtime_interp_main = PBPF_NONE;
	off->runtime_interpreters_head = d.runtime_state.interpreters_head;
	off->interp_id = d.interpreter_state.id;
	off->interp_next = d.interpreter_state.next;
	off->interp_modules = d.interpreter_state.imports_modules;
	off->interp_ceval_gil = d.interpreter_state.ceval_gil;
	off->gil_last_holder = d.interpreter_state.gil_runtime_state_holder -
			       d.interpreter_state.gil_runtime_state;
	off->gil_locked = d.interpreter_state.gil_runtime_state_locked -
			  d.interpreter_state.gil_runtime_state;
	off->tstate_frame = d.thread_state.current_frame;
	off->cframe_current_frame = PBPF_NONE;
	off->tstate_native_thread_id = d.thread_state.native_thread_id;
	off->frame_previous = d.interpreter_frame.previous;
	off->frame_code = d.interpreter_frame.executable;
	off->frame_prev_instr = d.interpreter_frame.instr_ptr;
	off->frame_localsplus = d.interpreter_frame.localsplus;
	off->frame_owner = d.interpreter_frame.owner;
	off->code_filename = d.code_object.filename;
	off->code_name = d.code_object.name;
	off->code_qualname = d.code_object.qualname;
	off->code_linetable = d.code_object.linetable;
	off->code_firstlineno = d.code_object.firstlineno;
	off->code_localsplusnames = d.code_object.localsplusnames;
	off->code_code_adaptive = d.code_object.co_code_adaptive;
	off->type_name = d.type_object.tp_name;
	off->type_flags = d.type_object.tp_flags;
	off->tuple_items = d.tuple_object.ob_item;
	off->dict_keys = d.dict_object.ma_keys;
	off->dict_values = d.dict_object.ma_values;
	off->long_size = d.long_object.lv_tag;
	off->long_digits = d.long_object.ob_digit;
	off->bytes_size = d.bytes_object.ob_size;
	off->bytes_data = d.bytes_object.ob_sval;
	off->str_state = d.unicode_object.state;
	off->str_length = d.unicode_object.length;
	off->str_ascii_data = d.unicode_object.asciiobject_size;
	return 0;
}

uint32_t pyruntime_frame_window(const struct pbpf_py_offsets *off)
{
	uint32_t fields[] = { off->frame_code, off->frame_previous, off->frame_prev_instr,
			      off->frame_owner };
	uint32_t end = 0;

	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if (fields[i] != PBPF_NONE && fields[i] + 8 > end)
			end = fields[i] + 8;
	end = (end + 7) & ~7u;
	return end <= 128 ? end : 0;
}

#define MAX_INTERPRETERS 256

/* The main interpreter: _PyRuntime.interpreters.main, or (3.13+, where the
 * debug offsets only name the list) the one with id 0. */
static int main_interpreter(const struct target *t, const struct pbpf_py_offsets *o,
			    uint64_t *interp)
{
	uint64_t id = 1;
	int err;

	if (o->runtime_interp_main != PBPF_NONE)
		return pyinspect_read_u64(t->pid, t->runtime_addr + o->runtime_interp_main, interp);
	err = pyinspect_read_u64(t->pid, t->runtime_addr + o->runtime_interpreters_head, interp);
	for (int i = 0; !err && *interp && i < MAX_INTERPRETERS; i++) {
		err = pyinspect_read_u64(t->pid, *interp + o->interp_id, &id);
		if (err || id == 0)
			break;
		err = pyinspect_read_u64(t->pid, *interp + o->interp_next, interp);
	}
	if (!err && id != 0)
		*interp = 0; /* not found: no initialized interpreter */
	return err;
}

/* 3.9-3.11 keep the GIL holder's thread state in _PyRuntime; 3.12+ only in
 * the GIL itself (last_holder, valid while `locked`). */
static int find_gil_holder(const struct target *t, struct pbpf_py_offsets *o, char *msg,
			   size_t msglen)
{
	uint64_t interp = 0, gil = 0;
	int err;

	if (o->runtime_tstate_current != PBPF_NONE) {
		o->holder_addr = t->runtime_addr + o->runtime_tstate_current;
		o->holder_locked_addr = 0;
		return 0;
	}
	err = main_interpreter(t, o, &interp);
	if (!err && interp)
		err = pyinspect_read_u64(t->pid, interp + o->interp_ceval_gil, &gil);
	if (err) {
		snprintf(msg, msglen, "cannot read the interpreter state of PID %d: %s", t->pid,
			 strerror(-err));
		return -EFAULT;
	}
	if (!interp || !gil) {
		snprintf(msg, msglen,
			 "PID %d has no initialized interpreter yet (no GIL); "
			 "try again once it serves requests",
			 t->pid);
		return -EAGAIN;
	}
	o->holder_addr = gil + o->gil_last_holder;
	o->holder_locked_addr = gil + o->gil_locked;
	return 0;
}

int pyruntime_offsets(const struct target *t, struct pbpf_py_offsets *out, char *msg, size_t msglen)
{
	const struct py_version_offsets *row = pyoffsets_find(t->py_major, t->py_minor);
	uint8_t img[PYDEBUG_313_SIZE];
	int err;

	if (!row) {
		snprintf(msg, msglen,
			 "PID %d (%s) runs CPython %s (%s), which is not "
			 "supported; supported: CPython %s",
			 t->pid, t->comm, t->py_version[0] ? t->py_version : "of unknown version",
			 t->interp, pyoffsets_supported());
		return -ENOTSUP;
	}
	*out = row->off;
	out->runtime_addr = t->runtime_addr;
	out->none_addr = t->none_addr;
	out->unicode_type_addr = t->unicode_type_addr;
	out->long_type_addr = t->long_type_addr;
	if (t->py_major == 3 && t->py_minor >= 13) {
		if ((err = pyinspect_read(t->pid, t->runtime_addr, img, sizeof(img)))) {
			snprintf(msg, msglen, "cannot read _PyRuntime of PID %d: %s", t->pid,
				 strerror(-err));
			return -EFAULT;
		}
		if (pydebug_overlay_313(img, sizeof(img), t->py_major, t->py_minor, out)) {
			snprintf(msg, msglen,
				 "PID %d: the _Py_DebugOffsets at the start of "
				 "_PyRuntime do not describe a CPython %u.%u with a GIL "
				 "(bad cookie or version, or a free-threaded build, which "
				 "is not supported)",
				 t->pid, t->py_major, t->py_minor);
			return -EINVAL;
		}
	}
	out->frame_window = pyruntime_frame_window(out);
	if (!out->frame_window) {
		snprintf(msg, msglen, "PID %d: frame fields beyond 128 bytes", t->pid);
		return -EINVAL;
	}
	return find_gil_holder(t, out, msg, msglen);
}
