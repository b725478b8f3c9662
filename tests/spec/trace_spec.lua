-- trace_spec.lua - the tracebacks a crawl shows (fetchtree.trace): a script
-- error record's traceback and start's failure keep the script's frames
-- (file:line) and none of fetchtree's own (its modules, the xpcall that runs
-- a handler), for start, on_response, on_error, route and alarms.
local H = require "helper"
local trace = require "fetchtree.trace"

-- Whether traceback tb has a frame of fetchtree's own.
local function own_frames(tb)
  return tb:find("lua/fetchtree/", 1, true) or tb:find("'xpcall'", 1, true)
      or tb:find('[string "fetchtree', 1, true)
end

local function run(src, args)
  local path, out, err = H.tmpname(".lua"), H.tmpname(".out"), H.tmpname(".err")
  H.write(path, src)
  local rc = H.sh(string.format("%s run %s -q -- %s > %s 2> %s < /dev/null",
    H.bin, path, table.concat(args or {}, " "), out, err))
  local records = {}
  for line in (H.read(out) or ""):gmatch("[^\n]+") do records[#records + 1] = H.json.decode(line) end
  return { rc = rc, records = records, stderr = H.read(err) or "", path = path }
end

describe("fetchtree.trace", function()
  it("keeps the message and the user's frames, drops fetchtree's", function()
    local tb = table.concat({
      "s.lua:2: boom",
      "second line of the message",
      "stack traceback:",
      "\t[C]: in function 'error'",
      "\ts.lua:2: in function 'boom'",
      "\tlua/fetchtree/handlers.lua:42: in function <lua/fetchtree/handlers.lua:38>",
      "\t[C]: in function 'xpcall'",
      "\t[string \"fetchtree.x\"]:3: in main chunk",
      "\ts.lua:9: in function <s.lua:8>",
      "\tlua/fetchtree/workers.lua:26: in function <lua/fetchtree/workers.lua:24>",
    }, "\n")
    assert.equal(table.concat({
      "s.lua:2: boom",
      "second line of the message",
      "stack traceback:",
      "\t[C]: in function 'error'",
      "\ts.lua:2: in function 'boom'",
      "\ts.lua:9: in function <s.lua:8>",
    }, "\n"), trace.clean(tb))
    assert.equal("no frames", trace.clean("no frames"))
    local t = {}
    assert.equal(t, trace.clean(t)) -- error values that are not strings pass
  end)

  it("as xpcall's handler, from a coroutine's frames too", function()
    local function user() error("oops") end
    local _, tb = xpcall(user, trace.handler)
    assert.truthy(tb:find("trace_spec.lua:%d+: oops"), tb)
    assert.truthy(tb:find("trace_spec.lua:%d+: in function"), tb)
    assert.falsy(own_frames(tb), tb)
    local co = coroutine.create(user)
    local _, msg = coroutine.resume(co)
    tb = trace.thread(co, msg)
    assert.truthy(tb:find("trace_spec.lua:%d+: in function"), tb)
    assert.falsy(own_frames(tb), tb)
  end)

  it("shows start's failure with the script's frames only", function()
    local r = run("return {\n  start = function(emit)\n    error('boom')\n  end,\n}\n")
    assert.equal(1, r.rc)
    assert.truthy(r.stderr:find("start failed: " .. r.path .. ":3: boom", 1, true), r.stderr)
    assert.truthy(r.stderr:find("\t" .. r.path .. ":3: in function", 1, true), r.stderr)
    assert.falsy(own_frames(r.stderr), r.stderr)
  end)

  it("gives handler, route and alarm error records the script's frames only", function()
    local srv = H.server()
    local r = run([[
local base = arg[1]
local function boom(what) error(what .. " failed") end
return {
  route = function(req)
    if req.meta and req.meta.bad then boom("route") end
    return "/a"
  end,
  start = function(emit)
    emit { url = base .. "/item/1.json" }
    emit { url = "ftp://x/" }
    emit { url = base .. "/item/2.json", meta = { bad = true } }
  end,
  on_response = function(res, obj)
    boom("on_response")
  end,
  on_error = function(err, req, obj)
    obj:after(1, function()
      boom("alarm")
    end)
    boom("on_error")
  end,
}
]], { srv.base })
    srv.stop()
    assert.equal(0, r.rc, r.stderr)
    -- each: its message, and the line of the script that called boom
    local want = { route = 5, on_response = 14, on_error = 20, alarm = 18 }
    local seen = {}
    for _, rec in ipairs(r.records) do
      local e = rec.error
      assert.equal("script", e.kind)
      local what = e.message:match("(%S+) failed$")
      assert.truthy(want[what], e.message)
      seen[what] = true
      local tb = assert(e.traceback, what)
      assert.truthy(tb:find(r.path .. ":2: in function", 1, true), what .. ": " .. tb)
      assert.truthy(tb:find(r.path .. ":" .. want[what] .. ": in function", 1, true), what .. ": " .. tb)
      assert.falsy(own_frames(tb), what .. ": " .. tb)
    end
    assert.same({ route = true, on_response = true, on_error = true, alarm = true }, seen)
  end)

  it("says what an error that is not a string was, never (null)", function()
    assert.equal("(error object is a table value)", trace.message({}))
    assert.equal("(error object is a nil value)", trace.message(nil))
    assert.equal("42", trace.message(42))
    assert.equal("said so", trace.message(setmetatable({}, { __tostring = function() return "said so" end })))
    -- start raising a table: on stderr, as lua.c says it
    local r = run("return { start = function(emit) error({}) end }")
    assert.equal(1, r.rc)
    assert.truthy(r.stderr:find("start failed: (error object is a table value)", 1, true), r.stderr)
    assert.falsy(r.stderr:find("(null)", 1, true), r.stderr)
    -- a script that raises a table while loading
    r = run("error({})")
    assert.equal(1, r.rc)
    assert.truthy(r.stderr:find("(error object is a table value)", 1, true), r.stderr)
    assert.falsy(r.stderr:find("(null)", 1, true), r.stderr)
    -- a handler raising a table: its record says so
    local srv = H.server()
    r = run([[
local base = arg[1]
return {
  start = function(emit) emit { url = base .. "/item/1.json" } end,
  on_response = function(res) error(setmetatable({}, { __tostring = function() return "custom" end })) end,
  on_error = function() error(false) end,
}
]], { srv.base })
    srv.stop()
    assert.equal(0, r.rc, r.stderr)
    assert.equal(1, #r.records)
    assert.equal("script", r.records[1].error.kind)
    assert.truthy(r.records[1].error.message:find("custom", 1, true), r.records[1].error.message)
    -- `fetchtree lua` too
    local path, err = H.tmpname(".lua"), H.tmpname(".err")
    H.write(path, "error({})")
    assert.equal(1, H.sh(string.format("%s lua %s 2> %s", H.bin, path, err)))
    assert.truthy((H.read(err) or ""):find("(error object is a table value)", 1, true), H.read(err))
  end)
end)
