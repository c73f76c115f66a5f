# Switchboard build. GNU make, pkg-config. See README.md for the two entry
# points (`make run`, `make check`); `make bench` runs the benchmarks.

CC      ?= gcc
PKGS    :=
CFLAGS  ?= -O2 -g
WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wformat=2 -Wno-unused-parameter
CPPFLAGS += -Isrc -D_GNU_SOURCE
STD     := -std=c11
LDLIBS  := -lm
SAN     := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

B       := build
ASAN    := build/asan

LIB_SRCS  := $(filter-out src/cli/%,$(wildcard src/*/*.c))
CLI_SRCS  := $(filter-out src/cli/toml_decode.c,$(wildcard src/cli/*.c))
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
BENCH_SRCS := $(wildcard bench/*.c)

obj = $(patsubst %.c,$(1)/obj/%.o,$(2))

.PHONY: all build asan run check unit e2e bench clean deps format

all: build
build: $(B)/switchboard $(B)/toml-decode
asan: $(ASAN)/switchboard $(ASAN)/toml-decode $(patsubst tests/unit/%.c,$(ASAN)/unit/%,$(UNIT_SRCS))

deps:
	@scripts/install-deps

$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(STD) $(WARN) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

$(ASAN)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(STD) $(WARN) $(CPPFLAGS) -O1 -g $(SAN) -MMD -MP -c $< -o $@

$(B)/libswitchboard.a: $(call obj,$(B),$(LIB_SRCS))
	ar rcs $@ $^
$(ASAN)/libswitchboard.a: $(call obj,$(ASAN),$(LIB_SRCS))
	ar rcs $@ $^

$(B)/switchboard: $(call obj,$(B),$(CLI_SRCS)) $(B)/libswitchboard.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)
$(B)/toml-decode: $(B)/obj/src/cli/toml_decode.o $(B)/libswitchboard.a
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)
$(ASAN)/switchboard: $(call obj,$(ASAN),$(CLI_SRCS)) $(ASAN)/libswitchboard.a
	$(CC) $(SAN) -o $@ $^ $(LDLIBS)
$(ASAN)/toml-decode: $(ASAN)/obj/src/cli/toml_decode.o $(ASAN)/libswitchboard.a
	$(CC) $(SAN) -o $@ $^ $(LDLIBS)

$(ASAN)/unit/%: $(ASAN)/obj/tests/unit/%.o $(ASAN)/libswitchboard.a
	@mkdir -p $(dir $@)
	$(CC) $(SAN) -o $@ $^ -lcriterion $(LDLIBS)

$(B)/bench/%: $(B)/obj/bench/%.o $(B)/libswitchboard.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

run: deps build
	$(B)/switchboard routes -c examples/revelations

# Unit tests (Criterion) and the readers run under ASan+UBSan; the CLI tests
# drive the sanitized binary too, so a memory error anywhere fails the run.
unit: asan
	@set -e; for t in $(patsubst tests/unit/%.c,$(ASAN)/unit/%,$(UNIT_SRCS)); do \
		echo "== $$t"; ASAN_OPTIONS=detect_leaks=1 $$t --jobs 2; done

e2e: build asan
	SB_BIN=$(CURDIR)/$(ASAN)/switchboard SB_TOML_DECODE=$(CURDIR)/$(ASAN)/toml-decode \
		/usr/bin/python3 -m pytest -q tests/e2e

check: deps
	$(MAKE) build asan
	$(MAKE) unit
	$(MAKE) e2e

bench: build $(patsubst bench/%.c,$(B)/bench/%,$(BENCH_SRCS))
	@set -e; for s in bench/*.sh; do [ -x "$$s" ] && "$$s"; done; true

format:
	clang-format -i $(wildcard src/*/*.c src/*/*.h tests/unit/*.c bench/*.c)

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
