# fetchtree - build, test, demo and benchmarks. `make help` lists the targets.

VERSION := 0.1.0
CC      ?= cc
PKGS    := luajit libcurl libuv libxml-2.0 sqlite3 libxxhash hiredis libedit
BUILD   := build
GEN     := $(BUILD)/gen

CFLAGS  ?= -O2 -g
WARN    := -Wall -Wextra -Wshadow -Wno-unused-parameter
BASE_CFLAGS = -std=c11 -D_GNU_SOURCE -DFT_VERSION='"$(VERSION)"' $(WARN) \
          -Icore -I$(GEN) $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LIBS    = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lm
SAN     := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
# LuaRocks passes the Lua headers' directory; pkg-config finds them otherwise
ifneq ($(LUA_INCDIR),)
BASE_CFLAGS += -I$(LUA_INCDIR)
endif

# Where `make install` puts things (DESTDIR is prepended to each).
PREFIX      ?= /usr/local
BINDIR      ?= $(PREFIX)/bin
LIBDIR      ?= $(PREFIX)/lib
INCLUDEDIR  ?= $(PREFIX)/include
MANDIR      ?= $(PREFIX)/share/man
LUA_CMODDIR ?= $(PREFIX)/lib/lua/5.1

CORE_SRC := $(filter-out core/cli.c core/lmodule.c,$(wildcard core/*.c))
CLI_SRC  := core/cli.c
LUA_SRC  := $(wildcard lua/fetchtree/*.lua)
HDRS     := $(wildcard core/*.h)
C_TESTS  := $(patsubst tests/c/%.c,%,$(wildcard tests/c/test_*.c))

# The library: every core module but the programs' own (the command line,
# the REPL) and the Lua module's entry point, compiled a third time as
# position-independent code for the shared library and the Lua module.
LIB_SRC  := $(filter-out core/repl.c,$(CORE_SRC))
PIC_OBJS := $(patsubst core/%.c,$(BUILD)/pic/%.o,$(LIB_SRC))
SO_MAJOR := 0
SONAME   := libfetchtree.so.$(SO_MAJOR)
SO_REAL  := libfetchtree.so.$(VERSION)
LIBRARIES := $(BUILD)/libfetchtree.a $(BUILD)/$(SO_REAL) $(BUILD)/$(SONAME) \
             $(BUILD)/libfetchtree.so
# The Lua module (require "fetchtree"), once core/lmodule.c is there. It takes
# the Lua API from the luajit that loads it, so it is not linked to libluajit.
LMOD_SRC := $(wildcard core/lmodule.c)
ifneq ($(LMOD_SRC),)
LUA_MODULE := $(BUILD)/fetchtree.so
endif
# What the library links with: PKGS but the REPL's line editor. The same
# list, luajit aside, is Requires(.private) in fetchtree.pc.in.
LIB_PKGS := luajit libcurl libuv libxml-2.0 sqlite3 libxxhash hiredis
LIB_LIBS  = $(shell pkg-config --libs $(LIB_PKGS) 2>/dev/null) -lm
LMOD_LIBS = $(shell pkg-config --libs $(filter-out luajit,$(LIB_PKGS)) 2>/dev/null) -lm

ifeq ($(V),)
Q := @
endif

.PHONY: all deps test test-c test-spec demo bench bench-quick bench-limit bench-script bench-state lint clean help \
        install uninstall

all: $(BUILD)/fetchtree $(BUILD)/fixture-server $(LIBRARIES) $(LUA_MODULE)

# Installs the Debian packages (only when something is missing; NO_DEPS=1,
# as LuaRocks builds do, skips it).
deps: $(BUILD)/.deps
$(BUILD)/.deps: scripts/deps.sh
	$(Q)[ -n "$(NO_DEPS)" ] || sh scripts/deps.sh
	$(Q)mkdir -p $(BUILD) && touch $@

$(GEN)/lua_modules.h: $(LUA_SRC) scripts/gen-lua-modules.sh | $(BUILD)/.deps
	@echo "  EMBED   $(LUA_SRC)"
	$(Q)sh scripts/gen-lua-modules.sh $(GEN) $(LUA_SRC)

$(BUILD)/obj/%.o: core/%.c $(HDRS) | $(BUILD)/.deps
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	$(Q)$(CC) $(BASE_CFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILD)/asan/%.o: core/%.c $(HDRS) | $(BUILD)/.deps
	@mkdir -p $(dir $@)
	@echo "  CC/SAN  $<"
	$(Q)$(CC) $(BASE_CFLAGS) -O1 -g $(SAN) -c -o $@ $<

$(BUILD)/pic/%.o: core/%.c $(HDRS) | $(BUILD)/.deps
	@mkdir -p $(dir $@)
	@echo "  CC/PIC  $<"
	$(Q)$(CC) $(BASE_CFLAGS) $(CFLAGS) -fPIC -c -o $@ $<

# only script.c embeds the Lua modules
$(BUILD)/obj/script.o $(BUILD)/asan/script.o $(BUILD)/pic/script.o: $(GEN)/lua_modules.h

OBJS      := $(patsubst core/%.c,$(BUILD)/obj/%.o,$(CORE_SRC) $(CLI_SRC))
ASAN_OBJS := $(patsubst core/%.c,$(BUILD)/asan/%.o,$(CORE_SRC) $(CLI_SRC))

$(BUILD)/fetchtree: $(OBJS)
	@echo "  LINK    $@"
	$(Q)$(CC) $(CFLAGS) -o $@ $(OBJS) $(LIBS)

# The same program built with AddressSanitizer and UBSan: the test suite runs it.
$(BUILD)/fetchtree-asan: $(ASAN_OBJS)
	@echo "  LINK    $@"
	$(Q)$(CC) -g $(SAN) -o $@ $(ASAN_OBJS) $(LIBS)

$(BUILD)/libfetchtree.a: $(PIC_OBJS)
	@echo "  AR      $@"
	$(Q)rm -f $@ && $(AR) rcs $@ $(PIC_OBJS)

# The shared library exports what core/fetchtree.h declares and nothing
# else: the version script is made from the header's function declarations.
$(GEN)/fetchtree.map: core/fetchtree.h | $(BUILD)/.deps
	@mkdir -p $(dir $@)
	$(Q){ echo 'FETCHTREE_$(SO_MAJOR) {'; echo '  global:'; \
	  sed -n 's/^[a-z].*[ *]\(ft_[a-z0-9_]*\)(.*/    \1;/p' $<; \
	  echo '  local: *;'; echo '};'; } > $@

$(BUILD)/$(SO_REAL): $(PIC_OBJS) $(GEN)/fetchtree.map
	@echo "  LINK    $@"
	$(Q)$(CC) $(CFLAGS) -shared -Wl,-soname,$(SONAME) -Wl,--no-undefined \
	  -Wl,--version-script,$(GEN)/fetchtree.map -o $@ $(PIC_OBJS) $(LIB_LIBS)

$(BUILD)/$(SONAME) $(BUILD)/libfetchtree.so: $(BUILD)/$(SO_REAL)
	$(Q)ln -sf $(SO_REAL) $(BUILD)/$(SONAME)
	$(Q)ln -sf $(SONAME) $(BUILD)/libfetchtree.so

# The Lua module exports its entry point and nothing else: fetchtree's
# internals are no interface, and stay out of the namespace of the process
# that loads it.
$(GEN)/lmodule.map: | $(BUILD)/.deps
	@mkdir -p $(dir $@)
	$(Q)printf '{\n  global: luaopen_fetchtree;\n  local: *;\n};\n' > $@

$(BUILD)/fetchtree.so: $(PIC_OBJS) $(BUILD)/pic/lmodule.o $(GEN)/lmodule.map
	@echo "  LINK    $@"
	$(Q)$(CC) $(CFLAGS) -shared -Wl,--version-script,$(GEN)/lmodule.map \
	  -o $@ $(PIC_OBJS) $(BUILD)/pic/lmodule.o $(LMOD_LIBS)

$(BUILD)/fixture-server: tests/fixture/server.c | $(BUILD)/.deps
	@echo "  CC      $<"
	$(Q)$(CC) -std=c11 -D_GNU_SOURCE -O2 -g $(WARN) -o $@ $< \
	  $(shell pkg-config --cflags --libs libuv 2>/dev/null) -lz

# C unit tests: each links the core modules it needs, under the sanitizers.
$(BUILD)/tests/%: tests/c/%.c $(wildcard tests/c/ft_*.h) $(ASAN_OBJS)
	@mkdir -p $(dir $@)
	@echo "  CC/SAN  $<"
	$(Q)$(CC) $(BASE_CFLAGS) -O1 -g $(SAN) -o $@ $< \
	  $(filter-out $(BUILD)/asan/cli.o,$(ASAN_OBJS)) $(LIBS)

# Runs every suite, C unit tests and busted specs, against the sanitizer
# build, and ends with one line: "tests: N passed, M failed". (capi_spec
# installs the release build and the libraries into a temporary prefix.)
# What the specs run: both programs, the fixture server, the libraries
# (capi_spec) and the Lua module (api_spec).
SPEC_DEPS := $(BUILD)/fetchtree $(BUILD)/fetchtree-asan $(BUILD)/fixture-server \
             $(LIBRARIES) $(LUA_MODULE)
test: $(SPEC_DEPS) $(addprefix $(BUILD)/tests/,$(C_TESTS))
	$(Q)sh scripts/run-tests.sh $(addprefix $(BUILD)/tests/,$(C_TESTS))

test-c: $(addprefix $(BUILD)/tests/,$(C_TESTS))
	$(Q)for t in $^; do $$t || exit 1; done

test-spec: $(SPEC_DEPS)
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

# fetchtree against libcurl, curl, wrk, Node, aiohttp and Scrapy on a local nginx.
bench: $(BUILD)/fetchtree
	$(Q)sh scripts/bench.sh

bench-quick: $(BUILD)/fetchtree
	$(Q)QUICK=1 sh scripts/bench.sh

# The same crawl with and without --state.
bench-state: $(BUILD)/fetchtree $(BUILD)/fixture-server
	$(Q)sh scripts/bench-state.sh

# Installs the program, the libraries, the header, the pkg-config file, the
# Lua module and the man page under PREFIX (/usr/local), below DESTDIR.
PC_LIBDIR     = $(patsubst $(PREFIX)/%,$${prefix}/%,$(LIBDIR))
PC_INCLUDEDIR = $(patsubst $(PREFIX)/%,$${prefix}/%,$(INCLUDEDIR))
install: $(BUILD)/fetchtree $(LIBRARIES) $(LUA_MODULE) fetchtree.pc.in docs/fetchtree.1
	$(Q)install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR)/pkgconfig \
	  $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(MANDIR)/man1
	$(Q)install -m 755 $(BUILD)/fetchtree $(DESTDIR)$(BINDIR)/fetchtree
	$(Q)install -m 644 $(BUILD)/libfetchtree.a $(DESTDIR)$(LIBDIR)/libfetchtree.a
	$(Q)install -m 755 $(BUILD)/$(SO_REAL) $(DESTDIR)$(LIBDIR)/$(SO_REAL)
	$(Q)ln -sf $(SO_REAL) $(DESTDIR)$(LIBDIR)/$(SONAME)
	$(Q)ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libfetchtree.so
	$(Q)install -m 644 core/fetchtree.h $(DESTDIR)$(INCLUDEDIR)/fetchtree.h
	$(Q)sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@LIBDIR@|$(PC_LIBDIR)|g' \
	  -e 's|@INCLUDEDIR@|$(PC_INCLUDEDIR)|g' -e 's|@VERSION@|$(VERSION)|g' \
	  fetchtree.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/fetchtree.pc
	$(Q)install -m 644 docs/fetchtree.1 $(DESTDIR)$(MANDIR)/man1/fetchtree.1
ifneq ($(LUA_MODULE),)
	$(Q)install -d $(DESTDIR)$(LUA_CMODDIR)
	$(Q)install -m 755 $(LUA_MODULE) $(DESTDIR)$(LUA_CMODDIR)/fetchtree.so
endif
	@echo "  INSTALL $(DESTDIR)$(PREFIX)"

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/fetchtree $(DESTDIR)$(LIBDIR)/libfetchtree.a \
	  $(DESTDIR)$(LIBDIR)/$(SO_REAL) $(DESTDIR)$(LIBDIR)/$(SONAME) \
	  $(DESTDIR)$(LIBDIR)/libfetchtree.so $(DESTDIR)$(INCLUDEDIR)/fetchtree.h \
	  $(DESTDIR)$(LIBDIR)/pkgconfig/fetchtree.pc $(DESTDIR)$(MANDIR)/man1/fetchtree.1 \
	  $(DESTDIR)$(LUA_CMODDIR)/fetchtree.so

lint: $(BUILD)/.deps
	$(Q)cppcheck --quiet --error-exitcode=1 --enable=warning,performance,portability \
	  --std=c11 -D__linux__ -Icore $(CORE_SRC) $(CLI_SRC) tests/fixture/server.c
	$(Q)luacheck -q $(LUA_SRC)

clean:
	rm -rf $(BUILD)/obj $(BUILD)/asan $(BUILD)/pic $(BUILD)/gen $(BUILD)/tests \
	  $(BUILD)/fetchtree $(BUILD)/fetchtree-asan $(BUILD)/fixture-server \
	  $(LIBRARIES) $(BUILD)/fetchtree.so

help:
	@echo "make            build build/fetchtree, libfetchtree.{a,so} and the Lua module"
	@echo "                (installs Debian packages if missing)"
	@echo "make install    install under PREFIX (/usr/local), below DESTDIR"
	@echo "make demo       crawl 16,158 items from the built-in fixture server"
	@echo "make test       every test suite, sanitizers on"
	@echo "make bench-limit  100,000 requests at 5,000/s, limiter accuracy figures"
	@echo "make bench-script  cost of a Lua on_response, against none"
	@echo "make bench        fetchtree against its peers (QUICK: make bench-quick)"
	@echo "make bench-state   a crawl with and without --state"
	@echo "make lint       cppcheck, luacheck"
