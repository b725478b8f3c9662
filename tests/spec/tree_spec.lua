-- tree_spec.lua - the object tree: named objects, limits composing down the
-- tree (measured at the server, two hosts), state, storage, alarms, live
-- limit changes and the stats tree.
local H = require "helper"
local null = H.null

local function run(src, args, script_args)
  local path = H.tmpname(".lua")
  H.write(path, src)
  local out, err = H.tmpname(".out"), H.tmpname(".err")
  local rc = H.sh(string.format("%s run %s %s -- %s > %s 2> %s < /dev/null",
    H.bin, path, args or "-q", table.concat(script_args or {}, " "), out, err))
  local records = {}
  for line in (H.read(out) or ""):gmatch("[^\n]+") do records[#records + 1] = H.json.decode(line) end
  return { rc = rc, records = records, stderr = H.read(err) or "" }
end

describe("the object tree", function()
  local srv
  setup(function() srv = H.server { hosts = { "127.0.0.1", "127.0.0.2" } } end)
  teardown(function() srv.stop() end)

  local function times(tag, addr, n)
    local t = {}
    for _, row in ipairs(srv.log_for(tag, n, true)) do
      if not addr or row.addr == addr then t[#t + 1] = row.t end
    end
    table.sort(t)
    return t
  end

  it("routes by host by default; the same name reaches the same object", function()
    local r = run([[
      local base, base2 = arg[1], arg[2]
      return {
        start = function(emit)
          for i = 1, 3 do emit { url = base .. "/item/" .. i .. ".json" } end
          emit { url = base2 .. "/item/9.json" }
        end,
        on_response = function(res, obj)
          obj.state.n = (obj.state.n or 0) + 1
          return { obj = obj.name, parent = obj.parent.name, grand = obj.parent.parent.name, n = obj.state.n }
        end,
      }
    ]], "-q -c 1", { srv.base, srv.base2 })
    assert.equal(0, r.rc, r.stderr)
    local seen = {}
    for _, rec in ipairs(r.records) do
      seen[rec.obj] = math.max(seen[rec.obj] or 0, rec.n)
      assert.equal("/host", rec.parent)
      assert.equal("/", rec.grand)
    end
    assert.same({ ["/host/127.0.0.1"] = 3, ["/host/127.0.0.2"] = 1 }, seen)
  end)

  it("routes with route(req), runs each object's own handlers, gives unique names", function()
    local r = run([[
      local base = arg[1]
      return {
        route = function(req) return req.meta.to end,
        objects = {
          ["/jobs/*"] = { on_response = function(res, obj) return { by = "jobs", obj = obj.name } end },
        },
        start = function(emit)
          local a, b = ft.unique_name("/jobs"), ft.unique_name("/jobs")
          emit { url = base .. "/item/1.json", meta = { to = a } }
          emit { url = base .. "/item/2.json", meta = { to = b } }
          emit { url = base .. "/item/3.json", meta = { to = "/other" } }
        end,
        on_response = function(res, obj) return { by = "spec", obj = obj.name } end,
      }
    ]], "-q", { srv.base })
    assert.equal(3, #r.records)
    local got = {}
    for _, rec in ipairs(r.records) do got[#got + 1] = rec.by .. " " .. rec.obj end
    table.sort(got)
    assert.equal("spec /other", got[3])
    assert.truthy(got[1]:match("^jobs /jobs/.+"))
    assert.truthy(got[2]:match("^jobs /jobs/.+"))
    assert.are_not.equal(got[1], got[2])
  end)

  it("enforces limits on / and on /host/* at once, measured at the server", function()
    -- "/": 30 per 500 ms; each host: 20 per 500 ms. Host A has 80 requests,
    -- B 40: A is held by its own limit, the total by the root's.
    local r = run([[
      local base, base2 = arg[1], arg[2]
      return {
        rps = 60, window = 500, concurrency = 4,
        objects = { ["/host/*"] = { rps = 40, window = 500 } },
        start = function(emit)
          for i = 1, 80 do
            emit { url = base .. "/item/" .. i .. ".json?both" }
            if i % 2 == 0 then emit { url = base2 .. "/item/" .. i .. ".json?both" } end
          end
        end,
      }
    ]], "-q", { srv.base, srv.base2 })
    assert.equal(120, #r.records)
    local all = times("?both", nil, 120)
    local a = times("?both", "127.0.0.1", 80)
    local b = times("?both", "127.0.0.2", 40)
    assert.equal(120, #all)
    local slack = 1 + 4
    assert.truthy(H.max_in_window(all, 0.5) <= 30 + slack, "total " .. H.max_in_window(all, 0.5))
    assert.truthy(H.max_in_window(a, 0.5) <= 20 + slack, "host A " .. H.max_in_window(a, 0.5))
    assert.truthy(H.max_in_window(b, 0.5) <= 20 + slack, "host B " .. H.max_in_window(b, 0.5))
    -- A's 80 at 20 per 500 ms need at least 3 windows after the first
    assert.truthy(a[#a] - a[1] >= 1.5 * 0.99)
  end)

  it("does not let a limited or stalled host hold up another", function()
    local r = run([[
      local base, base2 = arg[1], arg[2]
      return {
        concurrency = 6, timeout = 1.5, retries = 0,
        objects = {
          ["/host/127.0.0.2"] = { rps = 2, concurrency = 2 },
        },
        start = function(emit)
          -- the slow host's requests come first in the list
          for i = 1, 6 do emit { url = base2 .. "/stall?hol" .. i } end
          for i = 1, 4 do emit { url = base2 .. "/item/" .. i .. ".json?hol" } end
          for i = 1, 40 do emit { url = base .. "/item/" .. i .. ".json?hol" } end
        end,
      }
    ]], "-q", { srv.base, srv.base2 })
    assert.equal(50, #r.records)
    local fast = times("?hol", "127.0.0.1", 40)
    local slow = times("hol", "127.0.0.2", 2)
    assert.equal(40, #fast)
    -- every request to the free host went out while the first stalls were
    -- still hanging (they time out after 1.5 s)
    assert.truthy(fast[#fast] - slow[1] < 1.0, "last fast request after " .. (fast[#fast] - slow[1]))
  end)

  it("keeps object storage: get, put, delete, list, sql", function()
    local r = run([[
      local base = arg[1]
      return {
        start = function(emit) emit { url = base .. "/item/1.json" } end,
        on_response = function(res, obj)
          local st = obj.storage
          st:put("a", "x")
          st:put("b", 42)
          st:put("c", { list = { 1, 2 }, ok = true })
          st:put("d", false)
          st:put("a2", "y")
          st:delete("b")
          local keys = {}
          for _, kv in ipairs(st:list { prefix = "a" }) do keys[#keys + 1] = kv.key .. "=" .. tostring(kv.value) end
          st:sql("CREATE TABLE {pages} (url TEXT, n INTEGER)")
          st:sql("INSERT INTO {pages} VALUES (?, ?)", res.url, 7)
          local rows = st:sql("SELECT url, n FROM {pages}")
          local ok_other = pcall(function() st:sql("SELECT * FROM sqlite_master") end)
          return {
            a = st:get("a"), b = st:get("b"), c = st:get("c"), d = st:get("d"),
            keys = keys, n = rows[1].n, url = rows[1].url, other = ok_other,
          }
        end,
      }
    ]], "-q", { srv.base })
    assert.equal(0, r.rc, r.stderr)
    local rec = r.records[1]
    assert.equal("x", rec.a)
    assert.is_nil(rec.b)
    assert.same({ list = { 1, 2 }, ok = true }, rec.c)
    assert.equal(false, rec.d)
    assert.same({ "a=x", "a2=y" }, rec.keys)
    assert.equal(7, rec.n)
    assert.equal(srv.base .. "/item/1.json", rec.url)
    assert.equal(false, rec.other)
  end)

  it("keeps each object's storage its own: no route from a script to another object's", function()
    -- /a writes a secret; /b tries the old escape routes to read or
    -- overwrite it: its own storage's metatable with another name, a
    -- renamed field, fetchtree.core's store functions
    local r = run([[
      local base = arg[1]
      local function try(f) local ok, e = pcall(f); return ok and "reached" or "refused" end
      return {
        route = function(req) return req.url:find("/1.json", 1, true) and "/a" or "/b" end,
        start = function(emit)
          emit { url = base .. "/item/1.json" }
          emit { url = base .. "/item/2.json" }
        end,
        objects = {
          ["/a"] = { concurrency = 1, on_response = function(res, obj)
            obj.storage:put("secret", "s3cret")
            obj.storage:sql("CREATE TABLE {t} (x TEXT)")
            obj.storage:sql("INSERT INTO {t} VALUES ('hidden')")
            obj:fetch { url = base .. "/item/2.json", dedupe = false }
          end },
          ["/b"] = { on_response = function(res, obj)
            local st = obj.storage
            local out = {}
            out.mt = tostring(getmetatable(st))
            out.fields = try(function() st._name = "/a"; assert(st:get("secret") == "s3cret") end)
            out.forged = try(function() local S = debug.getmetatable(st).__index; return assert(S.get({ _name = "/a" }, "secret")) end)
            out.forged_sql = try(function() local S = debug.getmetatable(st).__index; return assert(S.sql({ _name = "/a" }, "SELECT x FROM {t}")[1]) end)
            out.require = try(function() return require("fetchtree.core") end)
            out.loaded = tostring(package.loaded["fetchtree.core"]) .. " " .. tostring(package.preload["fetchtree.core"])
            out.own = st:get("secret") == nil
            return out
          end },
        },
      }
    ]], "-q", { srv.base })
    assert.equal(0, r.rc, r.stderr)
    local seen = 0
    for _, rec in ipairs(r.records) do
      seen = seen + 1
      assert.same({ mt = "storage", fields = "refused", forged = "refused", forged_sql = "refused",
                    require = "refused", loaded = "nil nil", own = true }, rec)
    end
    assert.equal(2, seen)
  end)

  it("keeps storage across runs with --state, and not without", function()
    local db = H.tmpname(".db")
    local src = [[
      local base = arg[1]
      return {
        start = function(emit) emit { url = base .. "/item/1.json", dedupe = false } end,
        on_response = function(res, obj)
          local n = (obj.storage:get("runs") or 0) + 1
          obj.storage:put("runs", n)
          return { runs = n }
        end,
      }
    ]]
    assert.equal(1, run(src, "-q --state " .. db, { srv.base }).records[1].runs)
    -- the crawl has finished: --restart runs it again, and keeps storage
    assert.equal(0, #run(src, "-q --state " .. db, { srv.base }).records)
    assert.equal(2, run(src, "-q --restart --state " .. db, { srv.base }).records[1].runs)
    assert.equal(1, run(src, "-q", { srv.base }).records[1].runs)
  end)

  it("fires alarms, which may fetch and emit; the run waits for them", function()
    local r = run([[
      local base = arg[1]
      local t0
      return {
        start = function(emit) emit { url = base .. "/item/1.json?alarm1" } end,
        on_response = function(res, obj)
          if res.request.meta then return { late = res.url } end
          t0 = os.time()
          obj:after(300, function(o)
            o:emit { alarm = o.name }
            o:fetch { url = base .. "/item/2.json?alarm2", meta = { late = true } }
          end)
          return { first = res.url }
        end,
      }
    ]], "-q", { srv.base })
    assert.equal(0, r.rc, r.stderr)
    assert.equal(3, #r.records)
    local t1 = times("?alarm1", nil, 1)
    local t2 = times("?alarm2", nil, 1)
    assert.truthy(t2[#t2] - t1[#t1] >= 0.29, "alarm after " .. (t2[#t2] - t1[#t1]))
    local keys = {}
    for _, rec in ipairs(r.records) do for k in pairs(rec) do keys[#keys + 1] = k end end
    table.sort(keys)
    assert.same({ "alarm", "first", "late" }, keys)
  end)

  it("lets handlers wait for ft.get: they yield, one object's handlers one at a time", function()
    local r = run([[
      local base, base2 = arg[1], arg[2]
      return {
        start = function(emit)
          for i = 1, 3 do
            emit { url = base .. "/item/" .. i .. ".json?y" }
            emit { url = base2 .. "/item/" .. i .. ".json?y" }
          end
        end,
        on_response = function(res, obj)
          local overlap = obj.state.busy == true
          obj.state.busy = true
          local slow = ft.get(base .. "/delay/300?" .. res.url:match("//([^/]+)") .. res.url:match("%d+%.json"))
          local t = ft.spawn(function() return ft.get(base .. "/item/77.json"):json().id end)
          local other = ft.wait(t)
          obj.state.busy = false
          return { obj = obj.name, overlap = overlap, slow = slow.status, other = other }
        end,
      }
    ]], "-q", { srv.base, srv.base2 })
    assert.equal(0, r.rc, r.stderr)
    assert.equal(6, #r.records)
    for _, rec in ipairs(r.records) do
      assert.equal(false, rec.overlap)
      assert.equal(200, rec.slow)
      assert.equal(77, rec.other)
    end
    -- the two hosts' handlers waited side by side: the 300 ms gets of the
    -- two objects overlap in time, while each object's run one by one
    local t = times("/delay/300?", nil, 6)
    assert.equal(6, #t)
    assert.truthy(t[#t] - t[1] < 3 * 0.3 + 0.25, "span " .. (t[#t] - t[1]))
    assert.truthy(t[#t] - t[1] >= 2 * 0.3 * 0.95, "span " .. (t[#t] - t[1]))
  end)

  it("changes limits live with obj:set_limits", function()
    -- no limit at first; the first response lowers the host to 5 per 500 ms
    local r = run([[
      local base = arg[1]
      local done = false
      return {
        concurrency = 2,
        start = function(emit)
          for i = 1, 21 do emit { url = base .. "/item/" .. i .. ".json?live" } end
        end,
        on_response = function(res, obj)
          if not done then done = true; obj:set_limits { rps = 10, window = 500 } end
          return { ok = true }
        end,
      }
    ]], "-q", { srv.base })
    assert.equal(21, #r.records)
    local t = times("?live", nil, 21)
    assert.truthy(H.max_in_window(t, 0.5) <= 5 + 1 + 2, "worst " .. H.max_in_window(t, 0.5))
    assert.truthy(t[#t] - t[1] >= 1.0, "span " .. (t[#t] - t[1])) -- 19+ starts at 5 per 500 ms
  end)

  it("removes limits live with false: the requests then go unlimited", function()
    -- 2 per second and one at a time, until the first response lifts both:
    -- the 11 other requests of 300 ms then overlap (at 2/s, 1 at a time,
    -- they would take over 5 s)
    local r = run([[
      local base = arg[1]
      local done = false
      return {
        objects = { ["/host/*"] = { rps = 2, concurrency = 1 } },
        start = function(emit)
          for i = 1, 12 do emit { url = base .. "/delay/300?unlimit" .. i } end
        end,
        on_response = function(res, obj)
          if not done then done = true; obj:set_limits { rps = false, concurrency = false } end
          return { ok = true }
        end,
      }
    ]], "-q", { srv.base })
    assert.equal(0, r.rc, r.stderr)
    assert.equal(12, #r.records)
    local t = times("?unlimit", nil, 12)
    assert.equal(12, #t)
    -- past the first, the others started together: far more in one
    -- second than the rate allowed
    assert.truthy(H.max_in_window(t, 1.0) >= 8, "worst " .. H.max_in_window(t, 1.0))
  end)

  it("refuses set_limits fields the settings table refuses, as an object pattern does", function()
    local r = run([[
      local base = arg[1]
      local function try(t)
        local ok, e = pcall(function(o) return o:set_limits(t) end, OBJ)
        -- raised at the script's line
        return ok and "ok" or (e:gsub("^.-%.lua:%d+: ", ""))
      end
      return {
        start = function(emit) emit { url = base .. "/item/1.json?badlimits" } end,
        on_response = function(res, obj)
          OBJ = obj
          return { msgs = {
            try { rsp = 2 }, try { concurrency = 2.7 }, try { rps = 0 }, try { window = 5 },
            try { rps = true }, try { on_response = print }, try { retries = false },
          } }
        end,
      }
    ]], "-q", { srv.base })
    assert.equal(0, r.rc, r.stderr)
    assert.same({
      "set_limits: field 'rsp': unknown field (did you mean 'rps'?)",
      "set_limits: field 'concurrency': must be a whole number from 1 to 100000, got 2.7",
      "set_limits: field 'rps': must be a number of requests per window above 0, at most 1000000000, got 0",
      "set_limits: field 'window': goes with rps (the window of a rate)",
      "set_limits: field 'rps': must be a number of requests per window above 0, at most 1000000000, got boolean",
      "set_limits: field 'on_response': not accepted in set_limits",
      "ok",
    }, r.records[1].msgs)
    -- its request in the server's log before the next test counts the log
    assert.equal(1, #srv.log_for("?badlimits", 1, true))
  end)

  it("refuses an objects limit the tree cannot hold with the usual error, with or without --progress", function()
    -- the objects are configured after the run's event loop is made: a
    -- refusal there must still end the way any refused script does
    local before = #srv.log()
    for _, args in ipairs { "-q", "--progress" } do
      local r = run([[
        local base = arg[1]
        return {
          objects = { ["/host/*"] = { rps = 1e300 } },
          start = function(emit) emit { url = base .. "/item/1.json?toofast" } end,
        }
      ]], args, { srv.base })
      assert.equal(1, r.rc, args .. ": " .. r.stderr)
      assert.truthy(r.stderr:find("/host/*", 1, true), args .. ": " .. r.stderr)
      assert.truthy(r.stderr:find("rps", 1, true), args .. ": " .. r.stderr)
    end
    assert.equal(before, #srv.log())
  end)

  it("aggregates stats up the tree; --stats writes them, sums equal the records", function()
    local stats = H.tmpname(".json")
    local r = run([[
      local base, base2 = arg[1], arg[2]
      return {
        retries = 0,
        start = function(emit)
          for i = 1, 5 do emit { url = base .. "/item/" .. i .. ".json?st" } end
          emit { url = base .. "/status/404?st" }
          for i = 1, 3 do emit { url = base2 .. "/item/" .. i .. ".json?st" } end
          emit { url = base2 .. "/reset?st" }
        end,
      }
    ]], "-q --stats " .. stats, { srv.base, srv.base2 })
    assert.equal(10, #r.records)
    local tree = H.json.decode(H.read(stats))
    assert.equal("/", tree.name)
    assert.equal(10, tree.requests)
    local host = tree.children[1]
    assert.equal("/host", host.name)
    assert.equal(10, host.requests)
    local a, b = host.children[1], host.children[2]
    assert.equal("/host/127.0.0.1", a.name)
    assert.equal(6, a.requests)
    assert.equal(5, a.statuses["200"])
    assert.equal(1, a.statuses["404"])
    assert.equal(4, b.requests)
    assert.equal(1, b.errors.reset)
    assert.equal(a.requests + b.requests, host.requests)
    assert.equal(8, tree.statuses["200"])
  end)
end)
