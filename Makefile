# wisp — one plain Makefile.
#
#   make                      build ./wisp
#   make test                 build, then run the whole suite (unit + end-to-end)
#   make check SANITIZE=address|undefined|thread
#                             the suite under a sanitizer (separate build dir)
#   make bench                benchmarks against native code and peers
#   make install PREFIX=/usr/local
#
# Objects go to build/<variant>/, so sanitizer builds never mix with the
# default one. The binary of the default build is ./wisp; sanitizer builds
# produce build/<variant>/wisp.

CC       ?= cc
PREFIX   ?= /usr/local
SANITIZE ?=
# The suite imports pytest and prometheus_client, which scripts/setup.sh
# installs as Debian packages for Debian's python3; a python3 earlier on PATH
# (pyenv, a venv) may lack them, so it is used only when it has both.
ifeq ($(origin PYTHON),undefined)
PYTHON := $(shell python3 -c 'import pytest, prometheus_client' >/dev/null 2>&1 && echo python3 || echo /usr/bin/python3)
endif

ifeq ($(SANITIZE),)
VARIANT  := default
SANFLAGS :=
else
VARIANT  := san-$(SANITIZE)
ifeq ($(SANITIZE),address)
SANFLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined
else
SANFLAGS := -fsanitize=$(SANITIZE) -fno-sanitize-recover=all
endif
endif

# STATS=0: the runtime's counters compiled out, in build/<variant>-nostats
# (the baseline bench/metrics_run.py measures counting against).
STATS ?= 1
STATSFLAGS :=
ifeq ($(STATS),0)
VARIANT  := $(VARIANT)-nostats
STATSFLAGS := -DWISP_NO_STATS
endif

B := build/$(VARIANT)

# The generated code and the host must agree on wasm-rt.h's configuration:
# explicit bounds checks, no global call-depth counter (the reduction hook
# checks the native stack instead).
RTDEFS   := -DWASM_RT_MEMCHECK_SIGNAL_HANDLER=0 -DWASM_RT_USE_STACK_DEPTH_COUNT=0

CFLAGS   ?= -O2 -g
# -Wno-format-truncation: paths are length-checked where they enter (cache
# directory, guest paths); gcc's heuristic cannot see that.
CFLAGS   += -std=c17 -Wall -Wextra -Werror -Wno-unused-parameter -Wno-format-truncation \
            -fno-omit-frame-pointer -D_GNU_SOURCE $(RTDEFS) $(SANFLAGS) $(STATSFLAGS) \
            -Iinclude -Isrc -MMD -MP
LDFLAGS  += $(SANFLAGS)
# The host exports exactly the functions generated code calls (wasm-rt.h's
# runtime, the reduction hook, the guest ABI), nothing else.
LDEXPORT := -Wl,--dynamic-list=src/engine/exports.list
LDLIBS   += -ldl -lpthread -lxxhash -ldw -lelf -Wl,-Bstatic -lssl -lcrypto -Wl,-Bdynamic -lm

LIB_SRCS := $(sort $(wildcard src/common/*.c src/compile/*.c src/engine/*.c src/host/*.c \
                              src/dist/*.c src/sched/*.c src/proc/*.c src/io/*.c))
LIB_ASMS := $(sort $(wildcard src/compile/*.S src/engine/*.S src/sched/*.S))
LIB_OBJS := $(LIB_SRCS:%.c=$(B)/%.o) $(LIB_ASMS:%.S=$(B)/%.o)
CLI_OBJS := $(B)/src/cli/main.o $(B)/src/cli/new.o $(B)/src/cli/node.o $(B)/src/cli/control.o \
            $(B)/src/cli/tierwatch.o $(B)/src/cli/serve.o $(B)/src/cli/idle.o $(B)/src/cli/listen.o \
            $(B)/src/cli/metrics.o $(B)/src/cli/stats.o $(B)/src/cli/observe.o \
            $(B)/src/cli/listing.o $(B)/src/cli/json.o $(B)/src/cli/ps.o \
            $(B)/src/cli/dashboard.o $(B)/src/cli/dashboard_blob.o

UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(B)/tests/%)

ifeq ($(VARIANT),default)
WISP_BIN := wisp
else
WISP_BIN := $(B)/wisp
endif

.PHONY: all test check unit bench install clean guests fuzz soak
all: $(WISP_BIN)

# Linked from the objects, not the archive: the exported functions are used
# only by generated code, so the linker would drop them from an archive.
$(WISP_BIN): $(CLI_OBJS) $(LIB_OBJS) src/engine/exports.list
	$(CC) $(LDFLAGS) $(LDEXPORT) -o $@ $(CLI_OBJS) $(LIB_OBJS) $(LDLIBS)

$(B)/libwisp.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(B)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

# Assembly files may .incbin text files (the prelude); rebuild when they change.
$(B)/%.o: %.S
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(B)/src/compile/prelude_blob.o: src/compile/prelude.c.in src/engine/vmctx.h
$(B)/src/cli/dashboard_blob.o: src/cli/dashboard.html src/cli/dashboard.css src/cli/dashboard.js

# Tests that run modules link the whole library: the modules call host
# functions that nothing in the test binary itself references.
UNIT_LIB = $(B)/libwisp.a
$(B)/tests/test_runtime: UNIT_LIB = -Wl,--whole-archive $(B)/libwisp.a -Wl,--no-whole-archive
# The guest SDK's term codec is plain C; its test compiles it natively.
$(B)/tests/test_term: UNIT_SRC = sdk/c/term.c
$(B)/tests/test_term: sdk/c/term.c include/wisp/term.h include/wisp/guest.h
# `wisp serve`'s idle sweep is the CLI's (not in the library).
$(B)/tests/test_idle: UNIT_SRC = src/cli/idle.c
$(B)/tests/test_idle: src/cli/idle.c src/cli/idle.h
$(B)/tests/%: tests/unit/%.c $(B)/libwisp.a tests/unit/unit.h tests/unit/unit_module.h
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) $(LDEXPORT) -o $@ $< $(UNIT_SRC) $(UNIT_LIB) $(LDLIBS) -lcmocka

# The distribution tests' node (tests/e2e/test_dist_handshake.py drives it
# against erl): the library plus libei (erlang-dev) to answer net_adm:ping.
EI_DIR ?= $(firstword $(wildcard /usr/lib/erlang/lib/erl_interface-*))
$(B)/tests/dist_node: tests/dist/dist_node.c $(B)/libwisp.a
	@test -n "$(EI_DIR)" || { echo "$@ needs libei: apt-get install erlang-dev" >&2; exit 1; }
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -I$(EI_DIR)/include $(LDFLAGS) -o $@ $< $(B)/libwisp.a \
	  -L$(EI_DIR)/lib -lei $(LDLIBS)

unit: $(UNIT_BINS) $(B)/tests/dist_node

# The suite: unit tests (cmocka binaries) and end-to-end tests (real guests
# through the real binary), one pytest run, one summary line.
# TESTS narrows the run (pytest paths or -k expressions), e.g.
#   make check SANITIZE=thread TESTS="tests/test_unit.py tests/e2e/test_links.py"
TESTS ?= tests
test: $(WISP_BIN) unit
	WISP_BIN=$(abspath $(WISP_BIN)) WISP_UNIT_DIR=$(abspath $(B)/tests) WISP_SANITIZE=$(SANITIZE) \
	  $(PYTHON) -m pytest -q -ra $(TESTS)

check: test

# Benchmarks print tables with ratios against native code, BEAM and Go;
# they measure, they do not fail on missed targets (see bench/README.md).
bench: $(WISP_BIN)
	$(PYTHON) bench/run.py
	$(PYTHON) bench/proc_run.py
	$(PYTHON) bench/net_run.py

# The SDKs go to $(PREFIX)/share/wisp in the repository's layout, which is
# where `wisp new` looks for them beside an installed wisp (src/cli/new.c).
SHARE := $(DESTDIR)$(PREFIX)/share/wisp
install: wisp
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 wisp $(DESTDIR)$(PREFIX)/bin/wisp
	rm -rf $(SHARE)
	install -d $(SHARE)/sdk/rust $(SHARE)/sdk/c $(SHARE)/include/wisp $(SHARE)/scripts
	cp -R sdk/templates $(SHARE)/sdk/templates
	for c in wisp wisp-macros; do \
	  install -d $(SHARE)/sdk/rust/$$c && cp -R sdk/rust/$$c/Cargo.toml sdk/rust/$$c/src $(SHARE)/sdk/rust/$$c/; done
	install -m 0644 sdk/c/wisp.c sdk/c/term.c $(SHARE)/sdk/c/
	install -m 0644 include/wisp/*.h $(SHARE)/include/wisp/
	install -m 0755 scripts/wisp-rustc $(SHARE)/scripts/wisp-rustc
	ln -sf wisp-rustc $(SHARE)/scripts/wisp-rustdoc
	chmod -R a+rX $(SHARE)

clean:
	rm -rf build wisp

-include $(shell find build/$(VARIANT) -name '*.d' 2>/dev/null)

# ---- Reliability harness (issue 7): fuzzers and fault injection ---------------
#
#   make fuzz [FUZZ_SECONDS=60]   both libFuzzer targets on module loading, each
#                                 for FUZZ_SECONDS (tests/fuzz/README.md), then
#                                 the ABI fuzzer for 1000 rounds of a random seed
#   make fuzz-build               just build them (build/fuzz/)
#
# The fuzz build compiles the library again with clang under ASan+UBSan and
# libFuzzer's coverage instrumentation; it never mixes with build/<variant>/.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FZ           := build/fuzz
FZ_CFLAGS    := -g -O1 -std=c17 -D_GNU_SOURCE $(RTDEFS) -Iinclude -Isrc \
                -fno-omit-frame-pointer -fsanitize=address,undefined \
                -fno-sanitize-recover=undefined -fsanitize=fuzzer-no-link -MMD -MP
FZ_OBJS      := $(LIB_SRCS:%.c=$(FZ)/%.o) $(LIB_ASMS:%.S=$(FZ)/%.o)
FZ_LIBS      := -ldl -lpthread -lxxhash -ldw -lelf -Wl,-Bstatic -lcrypto -Wl,-Bdynamic -lm

.PHONY: fuzz-build fault-build
fuzz-build: $(FZ)/fuzz_read $(FZ)/fuzz_codegen

$(FZ)/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FZ_CFLAGS) -c -o $@ $<

$(FZ)/%.o: %.S
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FZ_CFLAGS) -c -o $@ $<

$(FZ)/src/compile/prelude_blob.o: src/compile/prelude.c.in src/engine/vmctx.h

# clang 14 refuses proc.c (C11 atomics on plain uint64_t fields, which gcc
# accepts); the fuzzers never run a process, so it is compiled by $(CC)
# without instrumentation.
$(FZ)/src/proc/proc.o: src/proc/proc.c
	@mkdir -p $(dir $@)
	$(CC) -g -O1 -std=c17 -D_GNU_SOURCE $(RTDEFS) -Iinclude -Isrc -c -o $@ $<

$(FZ)/libwisp.a: $(FZ_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(FZ)/fuzz_read: tests/fuzz/fuzz_module.c $(FZ)/libwisp.a
	$(FUZZ_CC) $(FZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FZ)/libwisp.a $(FZ_LIBS)

$(FZ)/fuzz_codegen: tests/fuzz/fuzz_module.c $(FZ)/libwisp.a
	$(FUZZ_CC) $(FZ_CFLAGS) -DFUZZ_CODEGEN -fsanitize=fuzzer -o $@ $< $(FZ)/libwisp.a $(FZ_LIBS)

# (Header changes rebuild the fuzzers too: a stale object with an old
# struct layout made the seed corpus look rejected.)
-include $(shell find $(FZ) -name '*.d' 2>/dev/null)

fuzz: fuzz-build $(WISP_BIN)
	tests/fuzz/run.sh $(FUZZ_SECONDS)
	@echo "== ABI fuzzer: a random seed, 1000 rounds, under a watcher"
	WISP_BIN=$(abspath $(WISP_BIN)) WISP_ABI_FUZZ_ROUNDS=1000 \
	  $(PYTHON) -m pytest -q -s tests/e2e/test_fuzz_abi.py -k random_seed

# Fault injection (tests/fault/inject.c), preloaded by tests/e2e/test_fault.py.
fault-build: build/fault/inject.so
build/fault/inject.so: tests/fault/inject.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -g -Wall -Wextra -Werror -fPIC -shared -o $@ $< -ldl

# The churn soak (issue 7): a supervisor tree under churn for DURATION seconds,
# exact message accounting, RSS sampled (bench/soak.py).
soak: $(WISP_BIN)
	$(PYTHON) bench/soak.py --duration $(or $(DURATION),60)
