# Switchboard build. GNU make, pkg-config. See README.md for the two entry
# points (`make run`, `make check`); `make bench` runs the benchmarks.

CC      ?= gcc
PKGS    := libuv openssl sqlite3 jansson libknot
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

obj = $(patsubst %.c,$(1)/obj/%.o,$(2))
LLHTTP_OBJS = $(patsubst $(LLHTTP_SRC)/%.c,$(1)/obj/llhttp/%.o,$(wildcard $(LLHTTP_SRC)/*.c))

.PHONY: all build asan run check unit e2e bench clean deps format

all: build
DEMO_SRCS := $(wildcard examples/demo/*.c)

build: $(B)/switchboard $(B)/toml-decode $(if $(DEMO_SRCS),$(B)/demo-service)
asan: $(ASAN)/switchboard $(ASAN)/toml-decode $(patsubst tests/unit/%.c,$(ASAN)/unit/%,$(UNIT_SRCS))

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

$(B)/bench/%: $(B)/obj/bench/%.o $(B)/libswitchboard.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

run: deps
	$(MAKE) build
	scripts/run-example

# Unit tests (Criterion) and the readers run under ASan+UBSan; the CLI tests
# drive the sanitized binary too, so a memory error anywhere fails the run.
unit: asan
	@set -e; for t in $(patsubst tests/unit/%.c,$(ASAN)/unit/%,$(UNIT_SRCS)); do \
		echo "== $$t"; ASAN_OPTIONS=detect_leaks=1 $$t --jobs 2; done

e2e: build asan
	SB_BIN=$(CURDIR)/$(ASAN)/switchboard SB_TOML_DECODE=$(CURDIR)/$(ASAN)/toml-decode \
		SB_SERVE_BIN=$(CURDIR)/$(ASAN)/switchboard SB_DEMO=$(CURDIR)/$(B)/demo-service \
		/usr/bin/python3 -m pytest -q tests/e2e

check: deps
	$(MAKE) build asan
	$(MAKE) unit
	$(MAKE) e2e

bench:
	@scripts/install-deps --bench
	$(MAKE) build $(patsubst bench/%.c,$(B)/bench/%,$(BENCH_SRCS))
	@set -e; for s in bench/*.sh; do if [ -x "$$s" ]; then "$$s"; fi; done

format:
	clang-format -i $(wildcard src/*/*.c src/*/*.h tests/unit/*.c bench/*.c)

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
