# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# libFuzzer targets, included from the Makefile.  Each tests/fuzz/fuzz_NAME.c
# is linked with only the library sources it needs, compiled again with clang
# and ASan+UBSan into .output/fuzz/ (never the normal objects).  `make fuzz`
# runs every target FUZZ_SECONDS (corpus kept in .output/fuzz/corpus/NAME
# across runs); `make fuzz-smoke` (part of `make test`) runs each 20 s from
# the committed seeds only.  The committed corpus is read, never written: new
# inputs land in .output.  Any crash, leak or sanitizer report fails make.

FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_SMOKE_SECONDS ?= 20
FUZZ_OUT     := $(OUTPUT)/fuzz
FUZZ_NAMES   := procmaps elfsym pydebug cli traceparent jsonl rotfile
FUZZ_CFLAGS  := -g -O1 -fno-omit-frame-pointer -std=gnu11 -D_GNU_SOURCE -Wall \
	-Wno-unused-parameter -fsanitize=address,undefined -fno-sanitize-recover=all \
	-Iinclude $(SRC_INC) -MMD -MP

# What each target links besides its harness.
K8SMETA_SRCS          := src/target/k8smeta.c src/target/k8sparse.c src/target/k8sservice.c \
	src/target/procstat.c src/target/nspid.c
fuzz_procmaps_SRCS    := src/target/procmaps.c
fuzz_elfsym_SRCS      := src/target/elfsym.c
fuzz_pydebug_SRCS     := src/python/pyruntime.c src/python/pyinspect.c src/python/pyoffsets.c \
	src/python/pystr.c
fuzz_cli_SRCS         := src/cli.c src/export/jsonl.c src/export/rotfile.c \
	src/export/safefile.c src/log.c src/target/selector.c $(K8SMETA_SRCS) \
	src/export/http_auth.c src/export/http_route.c src/export/otlp_config.c
fuzz_cli_LDFLAGS      := -Wl,--wrap=exit -Wl,--wrap=argp_error -Wl,--wrap=argp_parse -Wl,--wrap=fork
fuzz_traceparent_SRCS := src/pipeline/traceparent.c
fuzz_jsonl_SRCS       := src/export/jsonl.c src/export/rotfile.c src/export/safefile.c \
	src/log.c src/pipeline/request.c src/python/pystr.c \
	src/pipeline/traceparent.c $(K8SMETA_SRCS)
fuzz_jsonl_LDLIBS     := -lcjson
fuzz_rotfile_SRCS     := src/export/rotfile.c src/export/safefile.c src/log.c

FUZZ_BINS := $(patsubst %,$(FUZZ_OUT)/fuzz_%,$(FUZZ_NAMES))
# ELF seeds are built, not committed: a tiny shared object, with and without
# .symtab, and a tiny non-PIE executable.
FUZZ_ELF_SEEDS := $(patsubst %,$(FUZZ_OUT)/seeds/elfsym/%,tiny.so tiny-stripped.so tiny-exec)

.PHONY: fuzz-build
fuzz-build: $(FUZZ_BINS) $(FUZZ_ELF_SEEDS)

$(FUZZ_OUT)/obj $(FUZZ_OUT)/seeds/elfsym:
	$(Q)mkdir -p $@

vpath %.c $(SRC_DIRS)
$(FUZZ_OUT)/obj/%.o: %.c | $(FUZZ_OUT)/obj
	$(call msg,FUZZ-CC,$@)
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

define fuzz_target
$(FUZZ_OUT)/fuzz_$(1): tests/fuzz/fuzz_$(1).c $(patsubst %.c,$(FUZZ_OUT)/obj/%.o,$(notdir $(fuzz_$(1)_SRCS))) | $(FUZZ_OUT)/obj
	$$(call msg,FUZZ-LD,$$@)
	$$(Q)$$(FUZZ_CC) $$(FUZZ_CFLAGS) -fsanitize=fuzzer $(fuzz_$(1)_LDFLAGS) $$(filter %.c %.o,$$^) $(fuzz_$(1)_LDLIBS) -o $$@
endef
$(foreach n,$(FUZZ_NAMES),$(eval $(call fuzz_target,$(n))))

FUZZ_ELF_CFLAGS := -Os -nostdlib -fno-asynchronous-unwind-tables -Wl,--build-id=none \
	-Wl,-z,noseparate-code -Wl,-z,norelro

$(FUZZ_OUT)/seeds/elfsym/tiny.so: tests/fuzz/tiny_elf.c | $(FUZZ_OUT)/seeds/elfsym
	$(call msg,FUZZ-ELF,$@)
	$(Q)$(FUZZ_CC) $(FUZZ_ELF_CFLAGS) -shared -fPIC $< -o $@

$(FUZZ_OUT)/seeds/elfsym/tiny-stripped.so: $(FUZZ_OUT)/seeds/elfsym/tiny.so
	$(call msg,FUZZ-ELF,$@)
	$(Q)llvm-strip --strip-all $< -o $@

$(FUZZ_OUT)/seeds/elfsym/tiny-exec: tests/fuzz/tiny_elf.c | $(FUZZ_OUT)/seeds/elfsym
	$(call msg,FUZZ-ELF,$@)
	$(Q)$(FUZZ_CC) $(FUZZ_ELF_CFLAGS) -static -fno-pic -Wl,-e,tiny_start $< -o $@

# One make target per fuzz target, so that `make -j2 fuzz` runs two at once.
# fuzz-NAME keeps its corpus across runs; fuzz-smoke-NAME starts afresh.
fuzz: $(patsubst %,fuzz-run-%,$(FUZZ_NAMES))
fuzz-smoke: $(patsubst %,fuzz-smoke-%,$(FUZZ_NAMES))

define fuzz_run
fuzz-run-$(1): $(FUZZ_OUT)/fuzz_$(1) fuzz-build
	$$(Q)tests/fuzz/run $(1) $$(FUZZ_SECONDS) $(FUZZ_OUT) keep
fuzz-smoke-$(1): $(FUZZ_OUT)/fuzz_$(1) fuzz-build
	$$(Q)tests/fuzz/run $(1) $$(FUZZ_SMOKE_SECONDS) $(FUZZ_OUT) fresh
.PHONY: fuzz-run-$(1) fuzz-smoke-$(1)
endef
$(foreach n,$(FUZZ_NAMES),$(eval $(call fuzz_run,$(n))))

-include $(wildcard $(FUZZ_OUT)/*.d $(FUZZ_OUT)/obj/*.d)
