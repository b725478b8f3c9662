-- crawlspec_spec.lua - fetchtree.crawlspec alone: a crawl script loaded
-- with its arguments, a spec's fields checked by type (table-driven, the
-- exact messages), and the settings handed to C.
local H = require "helper"
local crawlspec = require "fetchtree.crawlspec"

local function start() end

describe("fetchtree.crawlspec", function()
  it("refuses fields of the wrong type and a spec without start, with the message", function()
    local cases = {
      { { start = start, rps = "5" }, "s.lua: spec field 'rps' must be a number, got string" },
      { { start = start, retry_on = 503 }, "s.lua: spec field 'retry_on' must be a table, got number" },
      { { start = start, dedupe = "no" }, "s.lua: spec field 'dedupe' must be a boolean, got string" },
      { { start = start, route = "/a" }, "s.lua: spec field 'route' must be a function, got string" },
      { { start = start, state = 1 }, "s.lua: spec field 'state' must be a string, got number" },
      { { start = "x" }, "s.lua: spec field 'start' must be a function, got string" },
      { { on_response = start }, "s.lua: the crawl spec needs a start function" },
    }
    for _, c in ipairs(cases) do
      local ok, err = pcall(crawlspec.check, c[1], "s.lua")
      assert.is_false(ok)
      assert.equal(c[2], err)
    end
    assert.has_no.errors(function()
      crawlspec.check({ start = start, rps = 5, robots = true, unknown_field = 1 }, "s.lua")
    end)
  end)

  it("hands C the settings, lists as comma-separated strings", function()
    local st = crawlspec.settings({ start = start, rps = 5, window = 100, retry_on = { 503, "429" },
                                    sensitive_headers = { "X-Key", "Cookie" }, user_agent = "ua",
                                    state = "db", compressed = true }, "s.lua")
    assert.same({ rps = 5, window = 100, retry_on = "503,429", sensitive_headers = "X-Key,Cookie",
                  user_agent = "ua", state = "db", compressed = true }, st)
    local ok, err = pcall(crawlspec.settings, { sensitive_headers = { "ok", "not ok" } }, "s.lua")
    assert.is_false(ok)
    assert.equal("s.lua: spec field 'sensitive_headers' wants header names, item 2 is not one", err)
  end)

  describe("load", function()
    local saved
    before_each(function() saved = { arg = _G.arg, ft = _G.ft, fetchtree = package.loaded.fetchtree } end)
    after_each(function()
      _G.arg, _G.ft, package.loaded.fetchtree = saved.arg, saved.ft, saved.fetchtree
    end)

    local function script(src)
      local path = H.tmpname(".lua")
      H.write(path, src)
      return path
    end

    it("runs the script with arg and ft, and returns its spec", function()
      local fake_ft = {}
      package.loaded.fetchtree = fake_ft
      local path = script("return { start = function() end, got = { arg[0], arg[1], arg[2], ft } }")
      local s = crawlspec.load(path, { "a", "b" })
      assert.same({ path, "a", "b", fake_ft }, s.got)
    end)

    it("raises the script's errors as they are, and wants a table", function()
      package.loaded.fetchtree = {}
      local ok, err = pcall(crawlspec.load, script("return {"), {})
      assert.is_false(ok)
      assert.truthy(err:find("expected", 1, true), err)
      ok, err = pcall(crawlspec.load, script("error('broke')"), {})
      assert.is_false(ok)
      assert.truthy(err:find(":1: broke", 1, true), err)
      assert.truthy(err:find("stack traceback", 1, true), err)
      local path = script("return 5")
      ok, err = pcall(crawlspec.load, path, {})
      assert.is_false(ok)
      assert.equal(path .. ": a crawl script must return a table (the crawl spec), got number", err)
      ok, err = pcall(crawlspec.load, H.tmpname(".missing.lua"), {})
      assert.is_false(ok)
      assert.truthy(err:find("cannot open", 1, true), err)
    end)
  end)
end)
