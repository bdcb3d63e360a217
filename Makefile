# flipd: one non-recursive Makefile, out-of-tree build into build/.
#
#   make run          install missing packages, build, start a local 3-node cluster
#   make test         install missing packages, build, run every test
#   make check        the fast tier: unit + `# tier: check` scripts (~2 min)
#   make mutants      mutation testing (tests/mutants/); make mutants-list
#   make SANITIZE=1   ASan+UBSan build (CI uses it)
#   make bench        flipd against etcd and the disk (bench/README.md)
#   make bench-build  only build the benchmark programs (not part of `all`)
#   make bench-snapshot  loop stall and leader changes of a 420 MB snapshot
#   make coverage     line and branch coverage of the test tiers (HTML report)
#   make format / format-check / check-layers / clean

BUILD    ?= build
SANITIZE ?=
CC       ?= cc

STD      := -std=c11 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE
WARN     := -Wall -Wextra -Wpedantic -Wshadow -Wconversion \
            -Wstrict-prototypes -Wmissing-prototypes -Wmissing-declarations \
            -Wold-style-definition -Wnested-externs -Wcast-align -Wpointer-arith \
            -Wwrite-strings -Wformat=2 -Wimplicit-fallthrough=5 -Wundef -Wvla \
            -Wlogical-op -Wduplicated-cond -Wduplicated-branches -Wrestrict \
            -Wnull-dereference -Wjump-misses-init -Wbad-function-cast -Winit-self \
            -Wfloat-equal -Wdate-time -Wmissing-include-dirs -Wno-format-truncation \
            -Werror=implicit-function-declaration -Werror=return-type \
            -Werror=incompatible-pointer-types -Werror=int-conversion
WERROR   ?= -Werror
# Generated protobuf-c code trips -Wconversion/-Wcast-align only inside
# macros we do not own; everything else in the strict set stays on.
GEN_WARN := $(filter-out -Wconversion -Wmissing-prototypes -Wmissing-declarations,$(WARN))
TEST_WARN:= $(filter-out -Wconversion -Wwrite-strings,$(WARN))

OPT      ?= -O2 -g -fno-omit-frame-pointer
ifneq ($(SANITIZE),)
OPT      := -O1 -g -fno-omit-frame-pointer
SAN      := -fsanitize=address,undefined -fno-sanitize-recover=all
endif

PKGS     := raft libuv libprotobuf-c
DEP_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
DEP_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lraft -luv -lprotobuf-c) -llmdb -lpthread -lm

# Refuse libraft 0.15 (Debian 12's own): it diverges replicas under faults.
RAFT_VERSION := $(shell pkg-config --modversion raft 2>/dev/null)
ifneq ($(filter deps clean format format-check check-layers,$(MAKECMDGOALS)),$(MAKECMDGOALS))
ifeq ($(RAFT_VERSION),)
ifneq ($(MAKECMDGOALS),run)
ifneq ($(MAKECMDGOALS),test)
$(warning libraft not found: run `make deps` (or `make run` / `make test`))
endif
endif
else ifneq ($(filter 0.1%,$(RAFT_VERSION)),)
$(error libraft $(RAFT_VERSION) is unsafe (commits without a majority); install 0.22.1 from <codename>-backports: deploy/install-deps.sh)
endif
endif

GEN      := $(BUILD)/gen/proto
INC      := -I. -I$(GEN)
CFLAGS_ALL = $(STD) $(OPT) $(SAN) $(INC) $(DEP_CFLAGS) -MMD -MP
LDFLAGS_ALL = $(SAN)

PROTOS      := flip command
GEN_C       := $(PROTOS:%=$(GEN)/%.pb-c.c)
GEN_H       := $(PROTOS:%=$(GEN)/%.pb-c.h)

LIB_SRC     := $(wildcard lib/*.c)
PROTO_SRC   := $(wildcard proto/*.c)
STORAGE_SRC := $(wildcard storage/*.c)
RAFT_SRC    := $(wildcard raft/*.c)
SERVER_SRC  := $(filter-out server/main.c,$(wildcard server/*.c))
CLIENT_SRC  := $(wildcard client/*.c)
FLIPCTL_SRC := $(wildcard tools/flipctl/*.c)
TESTLIB_SRC := $(wildcard tests/lib/*.c)
UNIT_SRC    := $(wildcard tests/unit/*.c)
STRESS_SRC  := $(wildcard tests/stress/*.c)

obj = $(patsubst %.c,$(BUILD)/obj/%.o,$(1))
GEN_OBJ     := $(patsubst $(GEN)/%.c,$(BUILD)/obj/gen/%.o,$(GEN_C))
BASE_OBJ    := $(call obj,$(LIB_SRC) $(PROTO_SRC)) $(GEN_OBJ)
CORE_OBJ    := $(BASE_OBJ) $(call obj,$(STORAGE_SRC) $(RAFT_SRC))
SERVER_OBJ  := $(CORE_OBJ) $(call obj,$(SERVER_SRC))
CLIENT_OBJ  := $(BASE_OBJ) $(call obj,$(CLIENT_SRC))
API_OBJ     := $(BUILD)/obj/tests/api/flip_h_alone.o

BENCH_SRC   := $(wildcard bench/*.c)
BENCH_BINS  := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))
BENCH_LIB   := $(call obj,$(wildcard bench/lib/*.c))

CHAOS_SRC   := $(wildcard tests/chaos/*.c)
CHAOS_BINS  := $(patsubst tests/chaos/%.c,$(BUILD)/tests/chaos/%,$(CHAOS_SRC))
# The chaos suite's NFQUEUE delay helper (netns mode, tests/chaos/nfq/) links
# libnetfilter_queue, not the client library; it is built only where that
# library is installed (deploy/install-deps.sh adds it), and without it the
# network-quality scenario injects loss only.
NFQ_LIBS    := $(shell pkg-config --libs libnetfilter_queue 2>/dev/null)
NFQ_BINS    := $(if $(NFQ_LIBS),$(BUILD)/tests/chaos/nfq/nfqdelay)

# bench/bigstore is also a test tool (test_snapshot_resend fills a store
# with it, in the check tier), so `all` builds it; the other bench programs
# only bench-build.
BINS := $(BUILD)/flipd $(BUILD)/flipctl $(BUILD)/tests/unit \
        $(BUILD)/bench/bigstore \
        $(BUILD)/tests/fixture_stress \
        $(CHAOS_BINS) $(NFQ_BINS)

.PHONY: all deps run test test-unit test-integration valgrind format \
        format-check check-layers clean chaos stress soak
all: $(BINS)

deps:
	@deploy/install-deps.sh

# Rebuild everything when the flags change (redis's .make-settings idea).
FLAGS_STAMP := $(BUILD)/.flags
$(FLAGS_STAMP): FORCE
	@mkdir -p $(BUILD)
	@echo '$(CC) $(CFLAGS_ALL) $(WARN) $(WERROR) $(LDFLAGS_ALL)' > $@.new
	@cmp -s $@.new $@ || mv $@.new $@; rm -f $@.new
FORCE:

# Generated code is kept, not treated as an intermediate file.
.SECONDARY: $(GEN_C) $(GEN_H)
.PRECIOUS: $(BUILD)/obj/bench/%.o $(BENCH_LIB)

$(GEN)/%.pb-c.c $(GEN)/%.pb-c.h: proto/%.proto
	@mkdir -p $(GEN)
	protoc-c --c_out=$(GEN) -Iproto $<

$(BUILD)/obj/gen/%.o: $(GEN)/%.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	@echo "  CC $<"; $(CC) $(CFLAGS_ALL) $(GEN_WARN) $(WERROR) -c $< -o $@

$(BUILD)/obj/tests/%.o: tests/%.c $(GEN_H) $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	@echo "  CC $<"; $(CC) $(CFLAGS_ALL) $(TEST_WARN) $(WERROR) -c $< -o $@

$(BUILD)/obj/%.o: %.c $(GEN_H) $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	@echo "  CC $<"; $(CC) $(CFLAGS_ALL) $(WARN) $(WERROR) -c $< -o $@

$(BUILD)/flipd: $(SERVER_OBJ) $(call obj,server/main.c)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(DEP_LIBS)

$(BUILD)/flipctl: $(CLIENT_OBJ) $(call obj,$(FLIPCTL_SRC))
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(DEP_LIBS)

$(BUILD)/tests/unit: $(SERVER_OBJ) $(call obj,$(CLIENT_SRC)) $(API_OBJ) \
                     $(call obj,$(TESTLIB_SRC) $(UNIT_SRC))
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(DEP_LIBS)

# The public header alone (tests/api/flip_h_alone.c): a copy of
# client/flip.h is the only thing on the include path, so the header must
# stand on its own; strict warnings, as an application might build it.
$(API_OBJ): tests/api/flip_h_alone.c client/flip.h $(FLAGS_STAMP)
	@mkdir -p $(dir $@) $(BUILD)/api-include
	@cp client/flip.h $(BUILD)/api-include/flip.h
	@echo "  CC $< (client/flip.h alone)"; $(CC) -std=c11 -Wall -Wextra \
	    -Wpedantic -Werror $(OPT) $(SAN) -I$(BUILD)/api-include -c $< -o $@

# The raft_fixture stress over the real FSM, LMDB and proposal code
# (raft/propose.c, linked from CORE_OBJ; tests/stress). It has
# its own main() (forked workers per seed batch), so no tests/lib runner.
$(BUILD)/tests/fixture_stress: $(CORE_OBJ) $(call obj,$(STRESS_SRC))
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(DEP_LIBS)

# tests/chaos/NAME.c: helper programs of the chaos suite, over the client
# library.
.PRECIOUS: $(BUILD)/obj/tests/chaos/%.o

$(BUILD)/tests/chaos/%: $(CLIENT_OBJ) $(BUILD)/obj/tests/chaos/%.o
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(DEP_LIBS)

$(BUILD)/tests/chaos/nfq/nfqdelay: $(BUILD)/obj/tests/chaos/nfq/nfqdelay.o
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(NFQ_LIBS)

# Each bench/NAME.c is one program over the client library and bench/lib.
$(BUILD)/bench/%: $(CLIENT_OBJ) $(BENCH_LIB) $(BUILD)/obj/bench/%.o
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS_ALL) -o $@ $^ $(DEP_LIBS)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# ---- running -------------------------------------------------------------

run: deps
	@$(MAKE) --no-print-directory all
	@deploy/local-cluster.sh $(BUILD)

test: deps
	@$(MAKE) --no-print-directory all bench-build
	@tests/run.sh $(BUILD)

test-unit: all
	@$(BUILD)/tests/unit

test-integration: all
	@tests/run.sh $(BUILD) integration

# ---- fast tier and mutation testing ---------------------------------------
# check: unit tests, then the integration scripts whose header has the line
# `# tier: check` (tests/run.sh), CHECK_JOBS at a time; about 2 minutes on
# 2 cores. `make test` stays the full run.
# mutants: every one-line bug of tests/mutants/catalogue, one at a time in a
# scratch copy under BUILD/mutants (tests/mutants/README.md): build, run
# check (and the fixture stress for raft/ and storage/), killed or survived.
# MUTANT=id runs one. Not part of `make test`.
CHECK_JOBS ?= 2
.PHONY: check mutants mutants-list
check: all
	@tests/run.sh $(BUILD) check -j$(CHECK_JOBS)

mutants:
	@python3 tests/mutants/run.py $(BUILD) $(MUTANT)

mutants-list:
	@python3 tests/mutants/run.py --list

# flipd against etcd and the disk, on this machine (bench/README.md): one
# table, saved under bench/results/. QUICK=1: reduced, under 2 minutes.
# Not part of `make test`: benchmarks never gate on a time. The bench
# programs are not part of `all`: bench-build builds them (`make test` does,
# for tests/integration/test_bench_smoke.sh).
.PHONY: bench bench-build
bench-build: $(BENCH_BINS)

bench: deps
	@bench/run.sh $(BUILD) --prepare
	@$(MAKE) --no-print-directory all bench-build
	@bench/run.sh $(BUILD) $(if $(QUICK),--quick)

# What a snapshot of a 420 MB store costs a 3-node cluster: leader loop
# stall and leadership changes (bench/snapshot.sh), next to the same run
# without snapshots (the machine's own noise). About 90 s.
.PHONY: bench-snapshot
bench-snapshot: all $(BUILD)/bench/snapshot_stall
	@echo "== no snapshot (threshold above the run's entries)"
	@THRESHOLD=100000000 bench/snapshot.sh $(BUILD)
	@echo "== snapshots every 4096 entries (the default)"
	@bench/snapshot.sh $(BUILD)

# Default seed range (sized for `make SANITIZE=1` on 2 cores); pass e.g.
# STRESS_ARGS='--seeds 1..20000' for a longer run.
STRESS_ARGS ?=
stress: $(BUILD)/tests/fixture_stress
	@$(BUILD)/tests/fixture_stress $(STRESS_ARGS)

# Each forked test runs under valgrind; an error or a definite leak fails it.
# Only definite leaks are shown: the fault tests' children abort on purpose
# with LMDB and thread memory still held ("possibly lost"), pages of noise.
VALGRIND_CMD := valgrind -q --error-exitcode=99 --leak-check=full \
                --errors-for-leak-kinds=definite --show-leak-kinds=definite \
                --track-fds=no
# Chaos: real processes, real faults, a history checker (tests/chaos/).
# QUICK=1: the pass `make test` runs (about 2 minutes); SEED=N replays;
# NET=netns|proxy forces the network mode (default auto: netns as root).
chaos: all
	@$(if $(QUICK),,$(BUILD)/tests/fixture_stress --seeds 1..20000 &&) \
	 python3 tests/chaos/run.py $(BUILD) $(if $(QUICK),--quick) $(if $(SEED),--seed $(SEED)) \
	 $(if $(NET),--net $(NET))

# Soak: one 5-node cluster for MINUTES under every fault kind mixed at
# random, checked in epochs (tests/chaos/soak.py). Not part of make test.
MINUTES ?= 60
soak: all
	@python3 tests/chaos/run.py $(BUILD) --soak $(MINUTES) $(if $(SEED),--seed $(SEED)) \
	 $(if $(EPOCHS),--epochs $(EPOCHS))

valgrind: all
	@if [ -n "$(SANITIZE)" ]; then echo "valgrind needs a build without SANITIZE" >&2; exit 2; fi
	@$(VALGRIND_CMD) $(BUILD)/tests/unit

# ---- coverage (tests/coverage.sh) -----------------------------------------
# An instrumented tree (gcc --coverage, -O0) in COV_BUILD runs the tiers of
# make test (chaos only with COVERAGE_CHAOS=1); the HTML report goes to
# COV_OUT/index.html and the output ends with one line per folder:
# "coverage FOLDER lines L% branches B%". Installs lcov when missing.
COV_BUILD ?= build/coverage-build
COV_OUT   ?= build/coverage
.PHONY: coverage
coverage:
	@deploy/install-deps.sh --coverage
	@$(MAKE) --no-print-directory BUILD=$(COV_BUILD) SANITIZE= \
	    OPT="-O0 -g" SAN="--coverage -DFLIP_COVERAGE" all bench-build
	@tests/coverage.sh $(COV_BUILD) $(COV_OUT)

# ---- fuzzing (tests/fuzz/README.md) ---------------------------------------
# libFuzzer harnesses, one per decoder of untrusted bytes, built with clang,
# ASan and UBSan into BUILD/fuzz/ (compiled from source: the sanitizer and
# coverage flags differ from the main build). Seeds are generated at build
# time (seedgen); tests/fuzz/regress/ holds inputs that once found a bug.
#   make fuzz            every harness for FUZZ_SECONDS (default 300) each
#   make fuzz-smoke      the same for FUZZ_SMOKE_SECONDS (20); make test runs
#                        it (tests/integration/test_fuzz_smoke.sh) when clang
#                        with libFuzzer is installed
FUZZ_CC            ?= clang
FUZZ_SECONDS       ?= 300
FUZZ_SMOKE_SECONDS ?= 20
FUZZ_DIR           := $(BUILD)/fuzz
FUZZ_NAMES         := $(patsubst tests/fuzz/fuzz_%.c,%,$(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BINS          := $(FUZZ_NAMES:%=$(FUZZ_DIR)/fuzz_%)
FUZZ_SRC           := $(LIB_SRC) $(PROTO_SRC) $(CLIENT_SRC) $(GEN_C)
FUZZ_CFLAGS         = $(STD) -g -O1 -fno-omit-frame-pointer $(INC) $(DEP_CFLAGS) \
                      -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all

.PHONY: fuzz fuzz-build fuzz-smoke
fuzz-build: $(FUZZ_BINS) $(FUZZ_DIR)/seedgen

$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz.h $(FUZZ_SRC) $(GEN_H)
	@mkdir -p $(dir $@)
	@echo "  FUZZ $<"; $(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_SRC) $(DEP_LIBS)

# Built like the harnesses (from source, FUZZ_CC) so that fuzzing never
# touches the objects of the BUILD it runs in (e.g. a SANITIZE=1 build).
$(FUZZ_DIR)/seedgen: tests/fuzz/seedgen.c $(FUZZ_SRC) $(GEN_H)
	@mkdir -p $(dir $@)
	@echo "  FUZZ $<"; $(FUZZ_CC) $(STD) -g -O1 $(INC) $(DEP_CFLAGS) \
	    -fsanitize=address,undefined -o $@ $< $(FUZZ_SRC) $(DEP_LIBS)

fuzz: fuzz-build
	@tests/fuzz/run.sh $(BUILD) $(FUZZ_SECONDS)

fuzz-smoke: fuzz-build
	@tests/fuzz/run.sh $(BUILD) $(FUZZ_SMOKE_SECONDS)

# ---- hygiene -------------------------------------------------------------

SRC_ALL = $(shell find lib proto storage raft server client tools tests bench -name '*.[ch]' 2>/dev/null)

format:
	clang-format -i $(SRC_ALL)

format-check:
	clang-format --dry-run -Werror $(SRC_ALL)

check-layers:
	@tests/check-layers.sh

clean:
	rm -rf $(BUILD)
