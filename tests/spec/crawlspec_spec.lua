-- crawlspec_spec.lua - fetchtree.crawlspec alone: a crawl script loaded
-- with its arguments, a spec's fields handed to the settings checker, and the settings handed to C.
local H = require "helper"
local crawlspec = require "fetchtree.crawlspec"

local function start() end

describe("fetchtree.crawlspec", function()
  it("checks the spec with the settings checker, raising its message, and wants start", function()
    local calls = {}
    local function check_settings(place, t, label)
      calls[#calls + 1] = { place, t, label }
      if t.rps == 0 then return nil, label .. ":3: field 'rps': must be above 0, got 0" end
      return true
    end
    local bad = { start = start, rps = 0 }
    local ok, err = pcall(crawlspec.check, bad, "s.lua", check_settings)
    assert.is_false(ok)
    assert.equal("s.lua:3: field 'rps': must be above 0, got 0", err)
    assert.same({ { "spec", bad, "s.lua" } }, calls)
    ok, err = pcall(crawlspec.check, { on_response = start }, "s.lua", check_settings)
    assert.is_false(ok)
    assert.equal("s.lua: the crawl spec needs a start function", err)
    assert.has_no.errors(function()
      crawlspec.check({ start = start, rps = 5 }, "s.lua", check_settings)
    end)
    assert.equal(3, #calls)
  end)

  it("hands C the settings, lists as comma-separated strings", function()
    local st = crawlspec.settings({ start = start, rps = 5, window = 100, retry_on = { 503, "429" },
                                    sensitive_headers = { "X-Key", "Cookie" }, user_agent = "ua",
                                    state = "db", compressed = true })
    assert.same({ rps = 5, window = 100, retry_on = "503,429", sensitive_headers = "X-Key,Cookie",
                  user_agent = "ua", state = "db", compressed = true }, st)
    -- the text form passes as it is
    st = crawlspec.settings({ retry_on = "429,503", sensitive_headers = "X-Key" })
    assert.same({ retry_on = "429,503", sensitive_headers = "X-Key" }, st)
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
