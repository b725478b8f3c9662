-- route_spec.lua - fetchtree.crawl as C drives it (`fetchtree run`, and
-- ft.run): every request yields exactly one record, whatever the spec's
-- route returns. A route that raises or returns something that is not
-- an object name makes that request's error record (kind "script"); the
-- request never runs as another object's (not "/", not a name C would
-- read cut short at a NUL byte).
local H = require "helper"

-- route sends each request by its meta: good names, bad values, a raise
local spec = [[
  local base, with_on_error = arg[1], arg[2] == "on_error"
  local to = { good = "/jobs/a", root = "/", none = nil, number = 7, nul = "/jobs/a\0x",
               double = "/jobs//a", trailing = "/jobs/", relative = "jobs", follow = "/follow" }
  local spec = {
    route = function(req)
      if req.meta.to == "raise" then error("route broke") end
      return to[req.meta.to]
    end,
    start = function(emit)
      for i, k in ipairs { "good", "root", "none", "number", "nul", "double", "trailing", "relative", "raise" } do
        emit { url = base .. "/item/" .. i .. ".json", meta = { to = k } }
      end
      emit { url = base .. "/page/1", meta = { to = "follow" } }
    end,
    on_response = function(res, obj)
      if res.request.meta.to == "follow" then
        obj:fetch { url = base .. "/item/50.json", meta = { to = "raise" } }
      end
      return { to = res.request.meta.to, obj = obj.name, status = res.status }
    end,
  }
  if with_on_error then
    spec.on_error = function(err, req, obj) return { on_error = req.meta.to, obj = obj.name } end
  end
  return spec
]]

-- The records by meta.to ("raise 2": the follow-up's), each once.
local function by_route(records)
  local by = {}
  for _, rec in ipairs(records) do
    local k = rec.to or (rec.meta and rec.meta.to)
    if rec.url and rec.url:find("/item/50.json", 1, true) then k = "raise 2" end
    assert.is_nil(by[k], "twice: " .. tostring(k))
    by[k] = rec
  end
  return by
end

local function check(records)
  assert.equal(11, #records)
  local by = by_route(records)
  assert.same({ to = "good", obj = "/jobs/a", status = 200 }, by.good)
  assert.same({ to = "root", obj = "/", status = 200 }, by.root)
  assert.same({ to = "follow", obj = "/follow", status = 200 }, by.follow)
  local want = {
    none = "route returned nil, not an object name such as /host/example.com",
    number = "route returned 7, not an object name such as /host/example.com",
    nul = 'route returned "/jobs/a\\0x", not an object name such as /host/example.com',
    double = 'route returned "/jobs//a", not an object name such as /host/example.com',
    trailing = 'route returned "/jobs/", not an object name such as /host/example.com',
    relative = 'route returned "jobs", not an object name such as /host/example.com',
  }
  for k, msg in pairs(want) do
    local rec = by[k]
    assert.truthy(rec and rec.error, k)
    assert.equal("script", rec.error.kind, k)
    assert.equal(msg, rec.error.message, k)
    assert.equal(H.null, rec.status)
    assert.equal(0, rec.attempts)
  end
  for _, k in ipairs { "raise", "raise 2" } do
    assert.equal("script", by[k].error.kind)
    assert.truthy(by[k].error.message:match("^route raised: .*: route broke$"), by[k].error.message)
    assert.truthy(by[k].error.traceback:find("stack traceback", 1, true))
  end
end

describe("a crawl's routing", function()
  local srv, path
  setup(function()
    srv = H.server()
    path = H.tmpname(".lua")
    H.write(path, spec)
  end)
  teardown(function() srv.stop() end)

  it("gives a request whose route fails its own script error record (fetchtree run)", function()
    local r = H.run(spec, "-q -- " .. srv.base)
    assert.equal(0, r.rc, r.stderr)
    check(r.records)
  end)

  it("does not hand a route failure to on_error as another object's failure", function()
    local r = H.run(spec, "-q -- " .. srv.base .. " on_error")
    assert.equal(0, r.rc, r.stderr)
    for _, rec in ipairs(r.records) do assert.is_nil(rec.on_error, H.json.encode(rec)) end
    check(r.records)
  end)

  it("does the same in a durable run, and leaves nothing pending", function()
    local db, out = H.tmpname(".db"), H.tmpname(".jsonl")
    local cmd = string.format("%s run %s -q --state %s --out %s -- %s", H.bin, path, db, out, srv.base)
    assert.equal(0, H.sh(cmd .. " 2>/dev/null"))
    local records = {}
    for line in (H.read(out) or ""):gmatch("[^\n]+") do records[#records + 1] = H.json.decode(line) end
    check(records)
    -- finished: a second run adds nothing
    H.sh(cmd .. " 2>/dev/null")
    local n = 0
    for _ in (H.read(out) or ""):gmatch("[^\n]+") do n = n + 1 end
    assert.equal(11, n)
  end)

  it("ends a request whose object C cannot make with its own error, never as the root's", function()
    -- the Lua check of names stands aside here, so that a name reaches C
    -- that ft_tree_get refuses (as it would on running out of memory):
    -- that request ends with the error, the others run as usual
    local r = H.run([[
      local base = arg[1]
      require("fetchtree.object").valid_name = function() return true end
      return {
        route = function(req) return req.meta.to end,
        start = function(emit)
          emit { url = base .. "/item/1.json?cmake", meta = { to = "//bad" } }
          emit { url = base .. "/item/2.json?cmake", meta = { to = "/good" } }
        end,
      }
    ]], "-q -- " .. srv.base)
    assert.equal(0, r.rc, r.stderr)
    table.sort(r.records, function(a, b) return a.index < b.index end)
    assert.equal(2, #r.records)
    assert.same({ kind = "script", message = "cannot make object '//bad': not an object name such as /host/example.com" },
                r.records[1].error)
    assert.equal(200, r.records[2].status)
    local fetched = {} -- only the good one
    for _, row in ipairs(srv.log_for("?cmake", 1, true)) do fetched[#fetched + 1] = row.target end
    assert.same({ "/item/2.json?cmake" }, fetched)
  end)

  it("does the same through ft.run", function()
    local prog = H.tmpname(".lua")
    H.write(prog, string.format([[
      arg = { [0] = %q, %q }
      local spec = dofile(%q)
      local recs = {}
      assert(ft.run(spec, { out = function(rec) recs[#recs + 1] = rec end }))
      local cjson = require "cjson"
      for _, rec in ipairs(recs) do io.write(cjson.encode(rec), "\n") end
    ]], path, srv.base, path))
    local out, err = H.tmpname(".out"), H.tmpname(".err")
    local rc = H.sh(string.format("timeout 60 %s lua %s > %s 2> %s < /dev/null", H.bin, prog, out, err))
    assert.equal(0, rc, H.read(err))
    local records = {}
    for line in (H.read(out) or ""):gmatch("[^\n]+") do records[#records + 1] = H.json.decode(line) end
    check(records)
  end)
end)
