-- capi_spec.lua - the C API as an embedder sees it: `make install` into a
-- temporary prefix, then examples/embed.c built against the installed
-- header and library with pkg-config (shared and static) and run against
-- the fixture server. (This tests the release build, not the sanitizer one.)
local H = require "helper"
local q = H.q

local prefix = H.tmpname(".prefix")
local pc_env = "PKG_CONFIG_PATH=" .. q(prefix .. "/lib/pkgconfig") .. " "
local installed -- exit code of `make install`, once it ran
local lua_module = H.read("core/lmodule.c") ~= nil

-- Output and exit code of a shell command.
local function run(cmd)
  local out = H.tmpname(".out")
  local rc = H.sh(cmd .. " > " .. out .. " 2>&1")
  return H.read(out) or "", rc
end

local function install()
  if installed == nil then
    -- a make of our own, not a sub-make of the one running the tests
    local out
    out, installed = run("env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make -s install PREFIX=" .. q(prefix))
    if installed ~= 0 then print(out) end
  end
  assert.equal(0, installed)
end

-- embed's output as a table by request index: {status, bytes, kind}.
local function parse(out)
  local by = {}
  local lines = 0
  for line in out:gmatch("[^\n]+") do
    local i, status, bytes, kind = line:match("^(%d+) (%d+) (%d+) (%S+)$")
    if i then
      lines = lines + 1
      by[tonumber(i)] = { status = tonumber(status), bytes = tonumber(bytes), kind = kind }
    end
  end
  return by, lines
end

describe("C API", function()
  local server
  local embed = H.tmpname(".embed")

  setup(function() server = H.server() end)
  teardown(function() server.stop() end)

  it("make install puts everything under PREFIX", function()
    install()
    for _, f in ipairs { "bin/fetchtree", "lib/libfetchtree.a", "lib/libfetchtree.so.0.1.0",
                         "include/fetchtree.h", "lib/pkgconfig/fetchtree.pc",
                         "share/man/man1/fetchtree.1" } do
      assert.equal(0, H.sh("test -f " .. q(prefix .. "/" .. f)), f .. " missing")
    end
    assert.equal("libfetchtree.so.0.1.0\n", (run("readlink " .. q(prefix .. "/lib/libfetchtree.so.0"))))
    assert.equal("libfetchtree.so.0\n", (run("readlink " .. q(prefix .. "/lib/libfetchtree.so"))))
    local dyn = run("readelf -d " .. q(prefix .. "/lib/libfetchtree.so.0.1.0"))
    assert.truthy(dyn:find("Library soname: [libfetchtree.so.0]", 1, true), dyn)
    assert.falsy(dyn:find("libedit", 1, true), "the library needs no line editor")
    if lua_module then
      local m = prefix .. "/lib/lua/5.1/fetchtree.so"
      assert.equal(0, H.sh("test -f " .. q(m)))
      -- Lua symbols come from the luajit that loads it
      assert.falsy(run("readelf -d " .. q(m)):find("luajit", 1, true))
      -- and it exports its entry point only: fetchtree's internals are no
      -- interface, and stay out of the loading process's namespace
      local syms = {}
      for name in run("nm -D --defined-only " .. q(m)):gmatch(" %u ([%w_]+)\n") do
        syms[#syms + 1] = name
      end
      assert.same({ "luaopen_fetchtree" }, syms)
      local out, rc = run("luajit -e " .. q("package.cpath = '" .. prefix ..
        "/lib/lua/5.1/?.so;' .. package.cpath; assert(type(require 'fetchtree') == 'table')" ..
        "; assert(package.loaded.fetchtree and package.searchpath('fetchtree', package.cpath):find('" ..
        prefix .. "', 1, true))"))
      assert.equal(0, rc, out)
    end
  end)

  it("the header stands alone and the library exports exactly what it declares", function()
    install()
    local hdr = H.read(prefix .. "/include/fetchtree.h")
    local includes = {}
    for inc in hdr:gmatch("\n#include (%S+)") do includes[#includes + 1] = inc end
    assert.same({ "<stddef.h>", "<stdint.h>", "<uv.h>" }, includes)
    local src = H.tmpname(".c")
    H.write(src, "#include <fetchtree.h>\nint main(void) { return ft_strerror(FT_OK) == 0; }\n")
    local out, rc = run(string.format("cc -std=c99 -pedantic -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror -fsyntax-only %s $(%s pkg-config --cflags fetchtree)",
      q(src), pc_env))
    assert.equal(0, rc, out)

    local declared, exported = {}, {}
    for name in hdr:gmatch("\n[a-z][^\n]-[ *](ft_[%w_]+)%(") do declared[#declared + 1] = name end
    out = run("nm -D --defined-only " .. q(prefix .. "/lib/libfetchtree.so"))
    for name in out:gmatch(" T (ft_[%w_]+)") do exported[#exported + 1] = name end
    table.sort(declared)
    table.sort(exported)
    assert.is_true(#declared >= 15)
    assert.same(declared, exported)
  end)

  it("pkg-config describes the installed library", function()
    install()
    local out, rc = run(pc_env .. "pkg-config --cflags --libs fetchtree")
    assert.equal(0, rc, out)
    assert.truthy(out:find("-I" .. prefix .. "/include", 1, true), out)
    assert.truthy(out:find("-L" .. prefix .. "/lib -lfetchtree", 1, true), out)
    out, rc = run(pc_env .. "pkg-config --static --libs fetchtree")
    assert.equal(0, rc, out)
    for _, l in ipairs { "-lcurl", "-luv", "-lxml2", "-lsqlite3", "-lxxhash", "-lluajit", "-lm" } do
      assert.truthy(out:find(l, 1, true), l .. " not in " .. out)
    end
  end)

  it("examples/embed.c builds against it and fetches, on its own loop and on the caller's", function()
    install()
    local out, rc = run(string.format("cc -Wall -Wextra -Werror -o %s examples/embed.c $(%s pkg-config --cflags --libs fetchtree)",
      q(embed), pc_env))
    assert.equal(0, rc, out)
    local urls = table.concat({ q(server.base .. "/item/1.json"), q(server.base .. "/status/404"),
                                q("http://127.0.0.1:1/") }, " ")
    local env = "LD_LIBRARY_PATH=" .. q(prefix .. "/lib") .. " "
    for _, flags in ipairs { "-r 0", "-l -r 0" } do
      local stdout = H.tmpname(".out")
      rc = H.sh(env .. q(embed) .. " " .. flags .. " " .. urls .. " > " .. stdout .. " 2>/dev/null")
      out = H.read(stdout)
      assert.equal(0, rc, flags .. ": " .. out)
      local by, lines = parse(out)
      assert.equal(3, lines, out)
      assert.same({ 200, "none" }, { by[0].status, by[0].kind })
      assert.is_true(by[0].bytes > 0)
      assert.same({ 404, "none" }, { by[1].status, by[1].kind })
      assert.same({ 0, 0, "connect" }, { by[2].status, by[2].bytes, by[2].kind })
    end
    -- with a retry, the refused connection fails for good as retries_exhausted
    out, rc = run(env .. q(embed) .. " -r 1 http://127.0.0.1:1/")
    assert.equal(0, rc, out)
    assert.truthy(out:find("0 0 0 retries_exhausted", 1, true), out)
    -- usage errors
    assert.equal(2, H.sh(env .. q(embed) .. " > /dev/null 2>&1"))
    assert.equal(2, H.sh(env .. q(embed) .. " -x http://a/ > /dev/null 2>&1"))
  end)

  it("leaves the caller's loop free to end while the engine keeps a connection alive", function()
    -- after ft_engine_run, the embedder's own uv_run(UV_RUN_DEFAULT) must
    -- return: an idle kept-alive socket is no reason to keep the loop going
    install()
    local src, bin = H.tmpname(".c"), H.tmpname(".idle")
    H.write(src, [[
#include <fetchtree.h>
#include <stdio.h>
static void done(void *ud, ft_request *r, const ft_response *res) {
  *(long *)ud = res->status;
  ft_request_free(r);
}
int main(int argc, char **argv) {
  uv_loop_t loop;
  ft_engine *e;
  ft_config cfg;
  long status = 0;
  (void)argc;
  uv_loop_init(&loop);
  ft_config_default(&cfg);
  if (ft_engine_new(&e, &loop, &cfg) != 0) return 2;
  ft_engine_set_done(e, done, &status);
  ft_request *r = ft_request_new();
  if (!r || ft_request_set(r, argv[1], NULL, NULL, 0) != 0) return 2;
  ft_engine_submit(e, r);
  if (ft_engine_run(e) != 0 || status != 200) return 3;
  uv_run(&loop, UV_RUN_DEFAULT); /* the connection is kept alive, idle */
  printf("returned\n");
  ft_engine_free(e);
  uv_run(&loop, UV_RUN_DEFAULT);
  return uv_loop_close(&loop) == 0 ? 0 : 4;
}
]])
    local out, rc = run(string.format("cc -Wall -Wextra -Werror -o %s %s $(%s pkg-config --cflags --libs fetchtree)",
      q(bin), q(src), pc_env))
    assert.equal(0, rc, out)
    out, rc = run("LD_LIBRARY_PATH=" .. q(prefix .. "/lib") .. " timeout 10 " .. q(bin) .. " " ..
                  q(server.base .. "/item/1.json"))
    assert.equal(0, rc, out)
    assert.equal("returned\n", out)
  end)

  it("links statically with pkg-config --static", function()
    install()
    local static = H.tmpname(".embed-static")
    local out, rc = run(string.format(
      "cc -Wall -Wextra -Werror -o %s examples/embed.c $(%s pkg-config --cflags fetchtree)" ..
      " $(%s pkg-config --static --libs fetchtree | sed 's/-lfetchtree/-l:libfetchtree.a/')",
      q(static), pc_env, pc_env))
    assert.equal(0, rc, out)
    assert.falsy(run("readelf -d " .. q(static)):find("libfetchtree", 1, true))
    -- no LD_LIBRARY_PATH: nothing to find there
    out, rc = run(q(static) .. " " .. q(server.base .. "/item/2.json"))
    assert.equal(0, rc, out)
    assert.truthy(out:find("^0 200 %d+ none\n"), out)
  end)

  it("installs a man page that documents the commands", function()
    install()
    local out, rc = run("man -l " .. q(prefix .. "/share/man/man1/fetchtree.1"))
    assert.equal(0, rc, out)
    assert.truthy(out:find("fetchtree run", 1, true), out)
    assert.truthy(out:find("EXIT STATUS", 1, true), out)
    assert.truthy(out:find("--rps", 1, true), out)
  end)
end)
