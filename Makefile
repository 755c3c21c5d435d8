# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# profilis-bpf: BPF units -> one linked object -> skeleton -> ./profilis-bpf.  Outputs go under
# .output/; `make V=1` shows the full commands.

OUTPUT    := .output
CLANG     ?= clang
CC        ?= cc
BPFTOOL   ?= $(shell command -v bpftool 2>/dev/null || echo /usr/sbin/bpftool)
ARCH      := $(shell uname -m | sed 's/x86_64/x86/;s/aarch64/arm64/')
VMLINUX   := vmlinux/$(ARCH)/vmlinux.h
PYTHON    ?= /usr/bin/python3.11

CFLAGS    ?= -g -O2
CFLAGS    += -Wall -Wextra -Wno-unused-parameter -std=gnu11 -D_GNU_SOURCE
# One folder per stage (STYLE.md); headers are included by name.
STAGES    := target python kernel pipeline stats profile export ui
SRC_DIRS  := src $(addprefix src/,$(STAGES))
SRC_INC   := $(addprefix -I,$(SRC_DIRS))
CPPFLAGS  += -Iinclude -I$(OUTPUT) $(SRC_INC) -MMD -MP
LDLIBS    += -lbpf -lelf -lz -lcjson -lcurl -lpthread -lm -lmicrohttpd
BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Wall \
	-Iinclude -Ivmlinux/$(ARCH) -Ibpf -MMD -MP

ifeq ($(V),1)
Q :=
msg :=
else
Q := @
msg = @printf '  %-8s %s\n' "$(1)" "$(2)";
endif

# BPF units by concern (requests, sampler, process tree, the maps), linked
# into one object so they share maps and one skeleton.
BPF_SRCS  := $(wildcard bpf/*.bpf.c)
BPF_UNITS := $(patsubst bpf/%.bpf.c,$(OUTPUT)/bpf/%.unit.o,$(BPF_SRCS))
BPF_OBJ   := $(OUTPUT)/bpf/profilis.bpf.o
SKELS     := $(OUTPUT)/profilis.skel.h
LIB_SRCS  := $(filter-out src/main.c,$(foreach d,$(SRC_DIRS),$(wildcard $(d)/*.c)))
LIB_OBJS  := $(patsubst src/%.c,$(OUTPUT)/src/%.o,$(LIB_SRCS))
UNIT_SRCS := $(wildcard tests/unit/*.c)
UNIT_BIN  := $(OUTPUT)/unit-tests
BENCH_BIN := $(OUTPUT)/bench-pipeline

.DELETE_ON_ERROR:
# The BPF object and skeleton are inputs of every build, not throw-away
# intermediates: keep them so a second `make` has nothing to do.
.SECONDARY: $(SKELS) $(BPF_OBJ) $(BPF_UNITS)
.PHONY: all deps deps-host test unit integration demo bench soak fmt check-fmt vmlinux clean offsets-check fuzz fuzz-smoke

all: profilis-bpf

$(OUTPUT) $(OUTPUT)/bpf $(OUTPUT)/tests:
	$(Q)mkdir -p $@

$(OUTPUT)/bpf/%.unit.o: bpf/%.bpf.c | $(OUTPUT)/bpf
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BPF_OBJ): $(BPF_UNITS)
	$(call msg,BPF-LINK,$@)
	$(Q)$(BPFTOOL) gen object $@ $^

$(SKELS): $(BPF_OBJ) | $(OUTPUT)
	$(call msg,GEN-SKEL,$@)
	$(Q)$(BPFTOOL) gen skeleton $< > $@

# Every userspace object may include a skeleton through loader.c.
$(OUTPUT)/src/%.o: src/%.c $(SKELS)
	$(call msg,CC,$@)
	$(Q)mkdir -p $(@D)
	$(Q)$(CC) $(CFLAGS) $(CPPFLAGS) -c $< -o $@

# The web page of --http, embedded in the binary as a C array (no files to
# install, nothing fetched at run time).
WEB_INC   := $(OUTPUT)/web_index.inc
$(WEB_INC): src/ui/web/index.html | $(OUTPUT)
	$(call msg,EMBED,$@)
	$(Q){ echo 'static const unsigned char web_index_html[] = {'; xxd -i < $<; echo '};'; } > $@

$(OUTPUT)/src/export/http.o: $(WEB_INC)

profilis-bpf: $(OUTPUT)/src/main.o $(LIB_OBJS)
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(CFLAGS) $^ $(LDLIBS) -o $@

$(UNIT_BIN): $(UNIT_SRCS) $(LIB_OBJS) | $(OUTPUT)/tests
	$(call msg,TEST-CC,$@)
	$(Q)$(CC) $(CFLAGS) -Iinclude -I$(OUTPUT) $(SRC_INC) $(UNIT_SRCS) $(LIB_OBJS) \
		$(LDLIBS) -lcriterion -lcjson -o $@

# The pipeline replay benchmark that tools/bench runs: the program's stages
# without main.c, driven by synthetic events instead of BPF.
$(BENCH_BIN): tools/bench_pipeline.c $(LIB_OBJS) | $(OUTPUT)
	$(call msg,BINARY,$@)
	$(Q)$(CC) $(CFLAGS) $(CPPFLAGS) $< $(LIB_OBJS) $(LDLIBS) -o $@

# deps-host installs the Debian packages the build, the demo and the
# benchmarks need; deps adds the cached root file systems the tests run
# CPython 3.14/3.15 (Debian sid) and 3.11 (bookworm) containers from, and the
# agent image's (deploy/Dockerfile's stages, built without docker).
deps-host:
	$(Q)tools/install-deps

deps: deps-host
	$(Q)$(MAKE) --no-print-directory rootfs deploy-rootfs

unit: $(UNIT_BIN)
	$(Q)$(UNIT_BIN) --jobs 2

integration: profilis-bpf
	$(Q)$(PYTHON) tests/integration/run.py

test: deps
	$(Q)$(MAKE) --no-print-directory all $(UNIT_BIN)
	$(Q)$(MAKE) --no-print-directory check-fmt offsets-check unit integration fuzz-smoke

offsets-check:
	$(Q)tools/gen-offsets --check

demo: deps-host
	$(Q)$(MAKE) --no-print-directory all
	$(Q)tools/demo

bench: deps-host
	$(Q)$(MAKE) --no-print-directory all $(BENCH_BIN)
	$(Q)tools/bench

# Not part of `make test`: 10 minutes of load with worker churn, a full disk
# and a stopped tracer, then an exact account (SOAK_SECONDS=N for another length).
soak: deps-host
	$(Q)$(MAKE) --no-print-directory all
	$(Q)tools/soak

FMT_FILES = $(wildcard src/*.c src/*.h src/*/*.c src/*/*.h bpf/*.c bpf/*.h include/profilis/*.h \
	tests/unit/*.c \
	tests/unit/*.h tests/fuzz/*.c tools/*.c)

fmt:
	$(Q)clang-format -i $(FMT_FILES)

# Part of `make test`: the tree stays as .clang-format lays it out.
check-fmt:
	$(call msg,FMT,check)
	$(Q)clang-format --dry-run --Werror $(FMT_FILES)

vmlinux:
	$(Q)mkdir -p vmlinux/$(ARCH)
	$(Q)$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $(VMLINUX)

clean:
	$(Q)rm -rf $(OUTPUT) profilis-bpf

include tests/fuzz/fuzz.mk
include tests/containers.mk
include deploy/deploy.mk

-include $(wildcard $(OUTPUT)/src/*.d $(OUTPUT)/src/*/*.d $(OUTPUT)/bpf/*.d \
	$(OUTPUT)/bench-pipeline.d)
