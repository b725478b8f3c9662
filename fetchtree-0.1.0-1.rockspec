-- fetchtree-0.1.0-1.rockspec - LuaRocks build of fetchtree: the Lua module
-- (require "fetchtree"), the fetchtree command, and the C library. The
-- Makefile does the work; this file only tells it where LuaRocks wants
-- things.
rockspec_format = "3.0"
package = "fetchtree"
version = "0.1.0-1"

-- There is no public repository yet: build from a checkout with
-- `luarocks make`, which does not use source.url. Set it when there is one.
source = {
   url = "git+https://example.invalid/fetchtree.git",
   tag = "v0.1.0",
}

description = {
   summary = "Fetch very long lists of HTTP resources, rate-limited and retried",
   detailed = [[
fetchtree fetches millions of HTTP resources as fast as the target allows
and not one request faster: a libuv event loop driving libcurl's multi
interface, an exact sliding-window rate limiter, retries with exponential
backoff, full jitter and Retry-After. From Lua (LuaJIT), require "fetchtree"
gives ft.get, ft.request, ft.fetch_all and tasks on that engine; the rock
also installs the fetchtree command (fetch, run crawl scripts, repl).
]],
   labels = { "http", "crawler", "libuv", "libcurl", "luajit" },
}

-- The C module is built for LuaJIT's ABI (Lua 5.1) and embeds Lua that
-- uses LuaJIT's libraries: it needs LuaJIT, not just any Lua 5.1. Its Lua
-- half decodes JSON with lua-cjson.
dependencies = {
   "lua == 5.1",
   "lua-cjson",
}

-- C libraries the Makefile links with (found with pkg-config).
external_dependencies = {
   LIBCURL = { header = "curl/curl.h" },
   LIBUV = { header = "uv.h" },
   LIBXML2 = { header = "libxml2/libxml/parser.h" },
   SQLITE3 = { header = "sqlite3.h" },
   LIBEDIT = { header = "histedit.h" }, -- the fetchtree command's REPL
}

build = {
   type = "make",
   -- `make` builds build/fetchtree, the libraries and build/fetchtree.so;
   -- NO_DEPS keeps it from installing Debian packages itself.
   build_variables = {
      CFLAGS = "$(CFLAGS)",
      LUA_INCDIR = "$(LUA_INCDIR)",
      NO_DEPS = "1",
   },
   -- `make install`: the Lua module into the rock's C module directory, the
   -- command into its bin directory; the library, header, pkg-config file
   -- and man page stay in the rock's own tree.
   install_variables = {
      PREFIX = "$(PREFIX)",
      BINDIR = "$(BINDIR)",
      LUA_CMODDIR = "$(LIBDIR)",
      NO_DEPS = "1",
   },
}
