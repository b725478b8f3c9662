# fetchtree - build, test, demo and benchmarks. `make help` lists the targets.

VERSION := 0.1.0
CC      ?= cc
PKGS    := luajit libcurl libuv libxml-2.0 sqlite3
BUILD   := build
GEN     := $(BUILD)/gen

CFLAGS  ?= -O2 -g
WARN    := -Wall -Wextra -Wshadow -Wno-unused-parameter
BASE_CFLAGS = -std=c11 -D_GNU_SOURCE -DFT_VERSION='"$(VERSION)"' $(WARN) \
          -Icore -I$(GEN) $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LIBS    = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm
SAN     := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

CORE_SRC := $(filter-out core/cli.c,$(wildcard core/*.c))
CLI_SRC  := core/cli.c
LUA_SRC  := $(wildcard lua/fetchtree/*.lua)
HDRS     := $(wildcard core/*.h) $(GEN)/lua_modules.h
C_TESTS  := $(patsubst tests/c/%.c,%,$(wildcard tests/c/test_*.c))

ifeq ($(V),)
Q := @
endif

.PHONY: all deps test test-c test-spec demo bench-limit bench-script bench-state lint clean help

all: $(BUILD)/fetchtree $(BUILD)/fixture-server

# Installs the Debian packages (only when something is missing).
deps: $(BUILD)/.deps
$(BUILD)/.deps: scripts/deps.sh
	$(Q)sh scripts/deps.sh
	$(Q)mkdir -p $(BUILD) && touch $@

$(GEN)/lua_modules.h: $(LUA_SRC) scripts/gen-lua-modules.sh | $(BUILD)/.deps
	@echo "  LUAC    $(LUA_SRC)"
	$(Q)sh scripts/gen-lua-modules.sh $(GEN) $(LUA_SRC)

$(BUILD)/obj/%.o: core/%.c $(HDRS) | $(BUILD)/.deps
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(BASE_CFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILD)/asan/%.o: core/%.c $(HDRS) | $(BUILD)/.deps
	@mkdir -p $(dir $@)
	@echo "  CC/SAN  $<"
	$(Q)$(CC) $(BASE_CFLAGS) -O1 -g $(SAN) -c -o $@ $<

OBJS      := $(patsubst core/%.c,$(BUILD)/obj/%.o,$(CORE_SRC) $(CLI_SRC))
ASAN_OBJS := $(patsubst core/%.c,$(BUILD)/asan/%.o,$(CORE_SRC) $(CLI_SRC))

$(BUILD)/fetchtree: $(OBJS)
	@echo "  LINK    $@"
	$(Q)$(CC) $(CFLAGS) -o $@ $(OBJS) $(LIBS)

# The same program built with AddressSanitizer and UBSan: the test suite runs it.
$(BUILD)/fetchtree-asan: $(ASAN_OBJS)
	@echo "  LINK    $@"
	$(Q)$(CC) -g $(SAN) -o $@ $(ASAN_OBJS) $(LIBS)

$(BUILD)/fixture-server: tests/fixture/server.c | $(BUILD)/.deps
	@echo "  CC      $<"
	$(Q)$(CC) -std=c11 -D_GNU_SOURCE -O2 -g $(WARN) -o $@ $< \
	  $(shell pkg-config --cflags --libs libuv 2>/dev/null) -lz

# C unit tests: each links the core modules it needs, under the sanitizers.
$(BUILD)/tests/%: tests/c/%.c tests/c/ft_test.h $(ASAN_OBJS)
	@mkdir -p $(dir $@)
	@echo "  CC/SAN  $<"
	$(Q)$(CC) $(BASE_CFLAGS) -O1 -g $(SAN) -o $@ $< \
	  $(filter-out $(BUILD)/asan/cli.o,$(ASAN_OBJS)) $(LIBS)

# Runs every suite, C unit tests and busted specs, against the sanitizer
# build, and ends with one line: "tests: N passed, M failed".
test: $(BUILD)/fetchtree $(BUILD)/fetchtree-asan $(BUILD)/fixture-server \
      $(addprefix $(BUILD)/tests/,$(C_TESTS))
	$(Q)sh scripts/run-tests.sh $(addprefix $(BUILD)/tests/,$(C_TESTS))

test-c: $(addprefix $(BUILD)/tests/,$(C_TESTS))
	$(Q)for t in $^; do $$t || exit 1; done

test-spec: $(BUILD)/fetchtree-asan $(BUILD)/fixture-server
	$(Q)sh scripts/run-tests.sh

# The main job on the built-in fixture server: 10,000 Hacker-News-style items.
demo: $(BUILD)/fetchtree $(BUILD)/fixture-server
	$(Q)sh scripts/demo.sh

# 100,000 requests at 5,000/s, with a one-second and a 10 ms window.
bench-limit: $(BUILD)/fetchtree $(BUILD)/fixture-server
	$(Q)WINDOW=1000 sh scripts/bench-limit.sh
	@echo
	$(Q)WINDOW=10 sh scripts/bench-limit.sh

# 100,000 responses through a Lua on_response decoding JSON, against none.
bench-script: $(BUILD)/fetchtree $(BUILD)/fixture-server
	$(Q)sh scripts/bench-script.sh

# The same crawl with and without --state.
bench-state: $(BUILD)/fetchtree $(BUILD)/fixture-server
	$(Q)sh scripts/bench-state.sh

lint: $(BUILD)/.deps
	$(Q)cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
	  --std=c11 -D__linux__ -Icore $(CORE_SRC) $(CLI_SRC) tests/fixture/server.c

clean:
	rm -rf $(BUILD)/obj $(BUILD)/asan $(BUILD)/gen $(BUILD)/tests \
	  $(BUILD)/fetchtree $(BUILD)/fetchtree-asan $(BUILD)/fixture-server

help:
	@echo "make            build build/fetchtree (installs Debian packages if missing)"
	@echo "make demo       fetch 10,000 items from the built-in fixture server"
	@echo "make test       every test suite, sanitizers on"
	@echo "make bench-limit  100,000 requests at 5,000/s, limiter accuracy figures"
	@echo "make bench-script  cost of a Lua on_response, against none"
	@echo "make bench-state   a crawl with and without --state"
	@echo "make lint       cppcheck"
