// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* The one definition of every map and global variable (maps.bpf.h). */
#define PBPF_DEFINE_GLOBALS
#include "maps.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";
