# Switchboard build. GNU make, pkg-config. See README.md for the two entry
# points (`make run`, `make check`); `make bench` runs the benchmarks.

CC      ?= gcc
PKGS    := libuv openssl sqlite3 jansson libknot libpsl
CFLAGS  ?= -O2 -g
WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wformat=2 -Wno-unused-parameter
# llhttp: Debian's node-llhttp ships the C sources; we compile them, never copy them.
LLHTTP_INC := /usr/share/include/llhttp
LLHTTP_SRC := /usr/share/llhttp
CPPFLAGS += -Isrc -I$(LLHTTP_INC) -D_GNU_SOURCE $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
STD     := -std=c11
LDLIBS  := $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lpthread -lm
SAN     := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

B       := build
ASAN    := build/asan

LIB_SRCS  := $(filter-out src/cli/%,$(wildcard src/*/*.c))
CLI_SRCS  := $(filter-out src/cli/toml_decode.c,$(wildcard src/cli/*.c))
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
BENCH_SRCS := $(wildcard bench/*.c)
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_NAMES := $(patsubst tests/fuzz/%.c,%,$(FUZZ_SRCS))

obj = $(patsubst %.c,$(1)/obj/%.o,$(2))
LLHTTP_OBJS = $(patsubst $(LLHTTP_SRC)/%.c,$(1)/obj/llhttp/%.o,$(wildcard $(LLHTTP_SRC)/*.c))

.PHONY: all build asan tsan run check unit e2e e2e-tsan bench fuzz clean deps format lint

all: build
DEMO_SRCS := $(wildcard examples/demo/*.c)

build: $(B)/switchboard $(B)/toml-decode $(if $(DEMO_SRCS),$(B)/demo-service)
asan: $(ASAN)/switchboard $(ASAN)/toml-decode $(patsubst tests/unit/%.c,$(ASAN)/unit/%,$(UNIT_SRCS)) \
	$(patsubst %,$(ASAN)/fuzz/%,$(FUZZ_NAMES))

deps:
	@scripts/install-deps

$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(STD) $(WARN) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

$(ASAN)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(STD) $(WARN) $(CPPFLAGS) -O1 -g $(SAN) -MMD -MP -c $< -o $@

$(B)/obj/llhttp/%.o: $(LLHTTP_SRC)/%.c
	@mkdir -p $(dir $@)
	$(CC) $(STD) -I$(LLHTTP_INC) $(CFLAGS) -c $< -o $@
$(ASAN)/obj/llhttp/%.o: $(LLHTTP_SRC)/%.c
	@mkdir -p $(dir $@)
	$(CC) $(STD) -I$(LLHTTP_INC) -O1 -g $(SAN) -c $< -o $@

$(B)/libswitchboard.a: $(call obj,$(B),$(LIB_SRCS)) $(call LLHTTP_OBJS,$(B))
	ar rcs $@ $^
$(ASAN)/libswitchboard.a: $(call obj,$(ASAN),$(LIB_SRCS)) $(call LLHTTP_OBJS,$(ASAN))
	ar rcs $@ $^

$(B)/switchboard: $(call obj,$(B),$(CLI_SRCS)) $(B)/libswitchboard.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)
$(B)/toml-decode: $(B)/obj/src/cli/toml_decode.o $(B)/libswitchboard.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)
$(ASAN)/switchboard: $(call obj,$(ASAN),$(CLI_SRCS)) $(ASAN)/libswitchboard.a
	$(CC) $(SAN) -o $@ $^ $(LDLIBS)
$(ASAN)/toml-decode: $(ASAN)/obj/src/cli/toml_decode.o $(ASAN)/libswitchboard.a
	$(CC) $(SAN) -o $@ $^ $(LDLIBS)

$(B)/demo-service: $(call obj,$(B),$(DEMO_SRCS)) $(B)/libswitchboard.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(ASAN)/unit/%: $(ASAN)/obj/tests/unit/%.o $(ASAN)/libswitchboard.a
	@mkdir -p $(dir $@)
	$(CC) $(SAN) -o $@ $^ -lcriterion $(LDLIBS)

# A fuzz target with a main that replays files (tests/fuzz/replay.c).
$(ASAN)/fuzz/%: $(ASAN)/obj/tests/fuzz/%.o $(ASAN)/obj/tests/fuzz/replay.o $(ASAN)/libswitchboard.a
	@mkdir -p $(dir $@)
	$(CC) $(SAN) -o $@ $^ $(LDLIBS)

$(B)/bench/%: $(B)/obj/bench/%.o $(B)/libswitchboard.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

# ThreadSanitizer build of the server (never part of `make check`: the e2e
# suite under TSan takes far longer than CI allows). `make e2e-tsan` runs the
# e2e suite (or E2E_TSAN_TESTS) against it, collects every report in
# build/tsan/reports/ and fails if there is any that tsan.supp does not
# suppress (each suppression there says why it is safe).
TSAN     := build/tsan
TSAN_SAN := -fsanitize=thread -fno-omit-frame-pointer
E2E_TSAN_TESTS ?= tests/e2e

$(TSAN)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(STD) $(WARN) $(CPPFLAGS) -O1 -g $(TSAN_SAN) -MMD -MP -c $< -o $@
$(TSAN)/obj/llhttp/%.o: $(LLHTTP_SRC)/%.c
	@mkdir -p $(dir $@)
	$(CC) $(STD) -I$(LLHTTP_INC) -O1 -g $(TSAN_SAN) -c $< -o $@
$(TSAN)/libswitchboard.a: $(call obj,$(TSAN),$(LIB_SRCS)) $(call LLHTTP_OBJS,$(TSAN))
	ar rcs $@ $^
$(TSAN)/switchboard: $(call obj,$(TSAN),$(CLI_SRCS)) $(TSAN)/libswitchboard.a
	$(CC) $(TSAN_SAN) -o $@ $^ $(LDLIBS)
$(TSAN)/toml-decode: $(TSAN)/obj/src/cli/toml_decode.o $(TSAN)/libswitchboard.a
	$(CC) $(TSAN_SAN) -o $@ $^ $(LDLIBS)

tsan: $(TSAN)/switchboard $(TSAN)/toml-decode

e2e-tsan: build tsan $(SHIMS)
	@rm -rf $(TSAN)/reports && mkdir -p $(TSAN)/reports
	-TSAN_OPTIONS="halt_on_error=0 exitcode=0 second_deadlock_stack=1 suppressions=$(CURDIR)/tsan.supp log_path=$(CURDIR)/$(TSAN)/reports/tsan" \
		SB_BIN=$(CURDIR)/$(TSAN)/switchboard SB_TOML_DECODE=$(CURDIR)/$(TSAN)/toml-decode \
		SB_SERVE_BIN=$(CURDIR)/$(TSAN)/switchboard SB_DEMO=$(CURDIR)/$(B)/demo-service \
		SB_SHIM_DIR=$(CURDIR)/$(B)/shim /usr/bin/python3 -m pytest -q $(E2E_TSAN_TESTS); \
		echo $$? > $(TSAN)/reports/pytest.rc
	@if ls $(TSAN)/reports/tsan.* >/dev/null 2>&1; then \
		grep -h '^SUMMARY: ThreadSanitizer' $(TSAN)/reports/tsan.* | sort | uniq -c; \
		echo "e2e-tsan: ThreadSanitizer reports in $(TSAN)/reports/"; exit 1; fi
	@rc=$$(cat $(TSAN)/reports/pytest.rc); [ "$$rc" = 0 ] || { echo "e2e-tsan: pytest failed ($$rc)"; exit 1; }
	@echo "e2e-tsan: no ThreadSanitizer reports"

run:
	@scripts/install-deps --run
	$(MAKE) build
	scripts/run-example

# Unit tests (Criterion) and the readers run under ASan+UBSan; the CLI tests
# drive the sanitized binary too, so a memory error anywhere fails the run.
unit: asan
	@set -e; for t in $(patsubst tests/unit/%.c,$(ASAN)/unit/%,$(UNIT_SRCS)); do \
		echo "== $$t"; ASAN_OPTIONS=detect_leaks=1 $$t --jobs 2; done
	@set -e; for t in $(FUZZ_NAMES); do \
		echo "== $(ASAN)/fuzz/$$t (corpus replay)"; \
		ASAN_OPTIONS=detect_leaks=1 $(ASAN)/fuzz/$$t tests/fuzz/corpus/$$t/*; done

# Test-only shared objects the end-to-end tests preload (tests/e2e/shim/).
SHIM_SRCS := $(wildcard tests/e2e/shim/*.c)
SHIMS     := $(patsubst tests/e2e/shim/%.c,$(B)/shim/%.so,$(SHIM_SRCS))
$(B)/shim/%.so: tests/e2e/shim/%.c
	@mkdir -p $(dir $@)
	$(CC) $(STD) $(WARN) $(CPPFLAGS) $(CFLAGS) -shared -fPIC -o $@ $< -ldl

e2e: build asan $(SHIMS)
	SB_BIN=$(CURDIR)/$(ASAN)/switchboard SB_TOML_DECODE=$(CURDIR)/$(ASAN)/toml-decode \
		SB_SERVE_BIN=$(CURDIR)/$(ASAN)/switchboard SB_DEMO=$(CURDIR)/$(B)/demo-service \
		SB_SHIM_DIR=$(CURDIR)/$(B)/shim /usr/bin/python3 -m pytest -q tests/e2e

check: deps
	$(MAKE) lint
	$(MAKE) build asan
	$(MAKE) unit
	$(MAKE) e2e

bench:
	@scripts/install-deps --bench
	$(MAKE) build $(patsubst bench/%.c,$(B)/bench/%,$(BENCH_SRCS))
	@set -e; for s in bench/*.sh; do if [ -x "$$s" ]; then "$$s"; fi; done

# libFuzzer (clang): every target for FUZZ_TIME seconds, from the committed
# corpus; what it finds new goes to build/fuzz/corpus/<target>, a crash to
# build/fuzz/crash-* (copy it into tests/fuzz/corpus/<target>/ once fixed).
FZ        := build/fuzz
FUZZ_TIME ?= 60
FUZZ_SAN  := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer

$(FZ)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	clang $(STD) $(WARN) $(CPPFLAGS) -O1 -g $(FUZZ_SAN) -fsanitize=fuzzer-no-link -c $< -o $@
$(FZ)/obj/llhttp/%.o: $(LLHTTP_SRC)/%.c
	@mkdir -p $(dir $@)
	clang $(STD) -I$(LLHTTP_INC) -O1 -g $(FUZZ_SAN) -c $< -o $@
$(FZ)/libswitchboard.a: $(call obj,$(FZ),$(LIB_SRCS)) $(call LLHTTP_OBJS,$(FZ))
	ar rcs $@ $^
$(FZ)/bin/%: $(FZ)/obj/tests/fuzz/%.o $(FZ)/libswitchboard.a
	@mkdir -p $(dir $@)
	clang $(FUZZ_SAN) -fsanitize=fuzzer -o $@ $^ $(LDLIBS)

fuzz:
	@scripts/install-deps --fuzz
	$(MAKE) $(patsubst %,$(FZ)/bin/%,$(FUZZ_NAMES))
	@set -e; for t in $(FUZZ_NAMES); do mkdir -p $(FZ)/corpus/$$t; \
		echo "== $$t ($(FUZZ_TIME) s)"; \
		$(FZ)/bin/$$t -max_total_time=$(FUZZ_TIME) -artifact_prefix=$(FZ)/crash-$$t- \
			-print_final_stats=1 $(FZ)/corpus/$$t tests/fuzz/corpus/$$t; done

# Every C file of the project, formatted by the repository's .clang-format.
FMT_SRCS := $(wildcard src/*/*.c src/*/*.h tests/unit/*.c tests/fuzz/*.c tests/fuzz/*.h \
	tests/e2e/shim/*.c bench/*.c examples/demo/*.c examples/demo/*.h)

format:
	clang-format -i $(FMT_SRCS)

# make check's first step: the formatting, and none of the unbounded string
# functions the code style forbids (snprintf and friends are fine).
lint:
	@clang-format --dry-run -Werror $(FMT_SRCS) || \
		{ echo "lint: run 'make format' to format the files above" >&2; exit 1; }
	@! grep -nE '(^|[^_[:alnum:]])(sprintf|vsprintf|strcpy|strcat|atoi|atol|atoll|gets)[[:space:]]*\(' \
		$(FMT_SRCS) || { echo "lint: an unbounded string function, above" >&2; exit 1; }

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
