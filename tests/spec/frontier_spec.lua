-- frontier_spec.lua - fetchtree.frontier alone, over a fake core: start as
-- a lazy stream, the filters, routing (a bad object name is the request's
-- error, never another object), and the journal of a durable run.
local cjson = require "cjson"

-- fetchtree.request (which the frontier uses) encodes bodies with core
package.loaded["fetchtree.core"] = { encode = cjson.encode }
local frontier = require "fetchtree.frontier"

-- A fake core: URLs resolve when absolute http(s) (or relative to a base),
-- the seen set is a table, the journal a list of rows.
local function fake_core()
  local c = { rows = {}, done = {}, seen_keys = {} }
  c.encode = cjson.encode
  function c.resolve(url, base)
    if not url:match("^https?://") then
      if not base or url:match("^%a+:") then return nil, "not an http(s) URL" end
      url = base:match("^(https?://[^/]+)") .. "/" .. url
    end
    return url, url:match("^https?://([^/:]+)"):lower()
  end
  function c.seen(method, url, body)
    local k = method .. " " .. url .. " " .. tostring(body)
    if c.seen_keys[k] then return false end
    c.seen_keys[k] = true
    return true
  end
  function c.journal_add(id, blob) c.rows[#c.rows + 1] = { id, blob } end
  function c.journal_take(n)
    local out = {}
    while #c.rows > 0 and #out < 2 * n do
      local r = table.remove(c.rows, 1)
      out[#out + 1], out[#out + 2] = r[1], r[2]
    end
    return out
  end
  function c.journal_done(id) c.done[#c.done + 1] = id end
  -- the settings table's place "emit", and its check of an unknown field
  local fields = { "url", "method", "headers", "body", "meta", "dedupe" }
  function c.settings()
    local out = {}
    for i, f in ipairs(fields) do out[i] = { name = f, places = { emit = true } } end
    return out
  end
  function c.check_settings(place, t, label)
    for k in pairs(t) do
      local known = false
      for _, f in ipairs(fields) do known = known or f == k end
      if not known then return nil, label .. ": field '" .. k .. "': unknown field (" .. place .. ")" end
    end
    return true
  end
  return c
end

local function fake_records()
  local R = { errors = {} }
  function R.error(entry, status, err) R.errors[#R.errors + 1] = { entry = entry, status = status, err = err } end
  return R
end

-- A frontier over spec (start: emits the list urls when not given).
local function make(spec, urls)
  local c, R = fake_core(), fake_records()
  spec.start = spec.start or function(emit) for _, u in ipairs(urls or {}) do emit(u) end end
  return frontier.new { core = c, spec = spec, records = R }, c, R
end

-- Every entry take gives until it says why not; returns them and why.
local function drain(F, n)
  local out = {}
  while true do
    local e, why, msg = F.take(n or 1)
    if not e then return out, why, msg end
    out[#out + 1] = e
  end
end

describe("fetchtree.frontier", function()
  it("runs start lazily, ahead by the batch the caller takes", function()
    local urls = {}
    for i = 1, 10 do urls[i] = "http://h/" .. i end
    local F = make({}, urls)
    assert.equal(0, (F.checkpoint()))
    local e = F.take(3)
    assert.same({ id = 0, url = "http://h/1", depth = 0, obj = "/host/h" }, e)
    assert.equal(3, (F.checkpoint())) -- three emits, then a yield
    F.take(3); F.take(3)
    assert.equal(3, (F.checkpoint()))
    assert.equal("http://h/4", F.take(1).url)
    assert.equal(4, (F.checkpoint()))
    local rest, why = drain(F, 100)
    assert.equal(6, #rest)
    assert.equal("wait", why) -- start has ended: follow-ups may still come
    local _, next_id = F.checkpoint()
    assert.equal(10, next_id)
  end)

  it("drops requests deeper than max_depth, of other hosts, or seen", function()
    local F = make({ max_depth = 1, allow_hosts = { "A.example" } })
    assert.same({ true }, { F.enqueue("http://a.example/1", 1) })
    assert.same({ false, "deeper than max_depth" }, { F.enqueue("http://a.example/2", 2) })
    assert.same({ false, "host not allowed" }, { F.enqueue("http://b.example/1", 0) })
    assert.same({ false, "already fetched" }, { F.enqueue("http://a.example/1", 0) })
    assert.same({ true }, { F.enqueue({ url = "http://a.example/1", dedupe = false }, 0) })
    assert.same({ true }, { F.enqueue({ url = "http://a.example/1", method = "POST" }, 0) })
    assert.same({ true }, { F.enqueue({ url = "2", }, 1, "http://a.example/x") })
    local got = drain(F)
    assert.equal(4, #got)
    assert.equal("http://a.example/2", got[4].url)
    assert.equal("POST", got[3].method)
  end)

  it("does not de-duplicate when the spec says dedupe = false", function()
    local F = make({ dedupe = false })
    assert.is_true(F.enqueue("http://h/1", 0))
    assert.is_true(F.enqueue("http://h/1", 0))
  end)

  it("queues a URL that does not resolve as a request of / that cannot start", function()
    local F = make({})
    assert.is_true(F.enqueue({ url = "ftp://x/", meta = { k = 1 } }, 0))
    local e = F.take(1)
    assert.equal("/", e.obj)
    assert.equal("not an http(s) URL", e.bad)
    assert.same({ k = 1 }, e.meta)
  end)

  it("raises for a bad request table at the caller's line", function()
    local F = make({})
    local ok, err = pcall(function() F.enqueue({ url = 5 }, 0); return 1 end)
    assert.is_false(ok)
    assert.truthy(err:find("a request needs a url string", 1, true), err)
  end)

  it("routes by route(req): a name, else the request's script error", function()
    local got = {}
    local values = {
      ["/jobs/1"] = "/jobs/1", ["/"] = "/",
      none = nil, number = 42, tbl = {}, empty = "", relative = "x",
      double = "/a//b", trailing = "/a/", nul = "/a\0b",
    }
    local F = make({ route = function(req)
      got[#got + 1] = req
      if req.meta == "raise" then error("boom") end
      if req.meta == "raise table" then error({}) end
      return values[req.meta]
    end })
    local cases = {
      { "/jobs/1", nil }, { "/", nil },
      { "none", "route returned nil, not an object name such as /host/example.com" },
      { "number", "route returned 42, not an object name such as /host/example.com" },
      { "tbl", "route returned a table, not an object name such as /host/example.com" },
      { "empty", 'route returned "", not an object name such as /host/example.com' },
      { "relative", 'route returned "x", not an object name such as /host/example.com' },
      { "double", 'route returned "/a//b", not an object name such as /host/example.com' },
      { "trailing", 'route returned "/a/", not an object name such as /host/example.com' },
      { "nul", 'route returned "/a\\0b", not an object name such as /host/example.com' },
    }
    for i, c in ipairs(cases) do
      local t = { url = "http://h/" .. i, meta = c[1] }
      assert.is_true(F.enqueue(t, 0))
      assert.equal(t, got[#got]) -- route sees the request table itself
      local e = F.take(1)
      if c[2] then
        assert.is_nil(e.obj, c[1])
        assert.equal("script", e.bad_kind)
        assert.equal(c[2], e.bad)
      else
        assert.equal(c[1], e.obj)
        assert.is_nil(e.bad)
      end
    end
    F.enqueue({ url = "http://h/r", meta = "raise" }, 0)
    local e = F.take(1)
    assert.is_nil(e.obj)
    assert.equal("script", e.bad_kind)
    assert.truthy(e.bad:find("^route raised: .*frontier_spec.lua:%d+: boom$"), e.bad)
    assert.truthy(e.traceback:find("stack traceback", 1, true), e.traceback)
    F.enqueue({ url = "http://h/r2", meta = "raise table" }, 0)
    assert.equal("route raised: (error object is a table value)", F.take(1).bad)
  end)

  it("refuses a request table with a field a crawl's request does not have, at the script's line", function()
    local F = make({ start = function() end })
    local function emit_bad() F.enqueue({ url = "http://h/1", hedaers = {} }, 0) end
    local ok, err = pcall(function() emit_bad() end)
    assert.is_false(ok)
    assert.truthy(err:find("frontier_spec.lua:%d+: request: field 'hedaers': unknown field %(emit%)"), err)
    assert.is_nil(F.take(1)) -- nothing was queued
    assert.is_true(F.enqueue({ url = "http://h/2", method = "GET", headers = {}, meta = 1, dedupe = false }, 0))
    assert.equal("http://h/2", F.take(1).url)
  end)

  it("reports start's error once, then nothing more", function()
    local F = make({ start = function(emit) emit "http://h/1"; error("start broke") end })
    assert.equal("http://h/1", F.take(1).url)
    assert.is_false(F.start_failed())
    local e, why, msg = F.take(1)
    assert.is_nil(e)
    assert.equal("error", why)
    assert.truthy(msg:find("start broke", 1, true))
    assert.truthy(msg:find("stack traceback", 1, true))
    assert.is_true(F.start_failed())
    assert.same({ nil, "done" }, { F.take(1) })
    F.requeue({ id = 9 })
    assert.same({ nil, "done" }, { F.take(1) })
  end)

  it("gives requeued requests back", function()
    local F = make({})
    F.requeue({ id = 5, url = "u" })
    assert.equal(5, F.take(1).id)
  end)

  describe("durable (the journal)", function()
    it("keeps requests in the journal, skips start's emits taken before, numbers after", function()
      local F, c = make({}, { "http://h/1", "http://h/2", "http://h/3" })
      F.resume(2, 10)
      local e = F.take(5)
      assert.same({ id = 10, url = "http://h/3", depth = 0, obj = "/host/h" }, e)
      assert.equal(0, #c.rows)
      assert.same({ 3, 11 }, { F.checkpoint() })
      F.done(10)
      assert.same({ 10 }, c.done)
    end)

    it("saves a position no less than the one it resumed from", function()
      local F = make({}, { "http://h/1" })
      F.resume(5, 0)
      assert.same({ 5, 0 }, { F.checkpoint() })
    end)

    it("does not touch the journal when not durable", function()
      local F, c = make({}, {})
      F.done(1)
      assert.same({}, c.done)
    end)

    it("refuses a meta JSON cannot hold, at the script's line", function()
      local F = make({})
      F.resume(0, 0)
      local ok, err = pcall(function() F.enqueue({ url = "http://h/1", meta = { f = print } }, 0); return 1 end)
      assert.is_false(ok)
      assert.truthy(err:find("with --state, meta must be JSON", 1, true), err)
    end)

    it("skips journal rows that are not requests, each with an error record", function()
      local F, c, R = make({})
      F.resume(0, 0)
      c.rows = {
        { 1, "{nope" },
        { 2, '{"id":2,"url":"http://h/2","depth":0,"obj":"/a//b"}' },
        { 3, '{"id":3,"url":"http://h/3","depth":0}' },
        { 4, '{"id":5,"url":"http://h/4","depth":0,"obj":"/a"}' },
        { 5, '{"id":5,"url":"http://h/5","depth":0,"obj":"/a","meta":null}' },
        { 6, '{"id":6,"url":"ftp://x/","depth":0,"bad":"not http"}' },
      }
      local stderr = io.stderr
      io.stderr = { write = function() end } -- luacheck: ignore
      local got = drain(F, 10)
      io.stderr = stderr -- luacheck: ignore
      assert.equal(2, #got)
      assert.same({ id = 5, url = "http://h/5", depth = 0, obj = "/a" }, got[1])
      assert.equal("not http", got[2].bad)
      assert.same({ 1, 2, 3, 4 }, c.done)
      local why = {}
      for i, r in ipairs(R.errors) do
        assert.equal("internal", r.err.kind)
        why[i] = r.err.message:match("%((.*)%)")
      end
      assert.equal("its object is not a name", why[2])
      assert.equal("it has no object", why[3])
      assert.equal("its id is 5", why[4])
      assert.equal("http://h/3", R.errors[3].entry.url)
    end)
  end)
end)
