-- state_spec.lua - crash-safe runs with --state: kill -9 at random points
-- and resume, finished runs, --restart, and a frontier that lives on disk.
local H = require "helper"

local graph = [[
  local base, m = arg[1], arg[2]
  return {
    rps = 400, window = 100, concurrency = 4,
    start = function(emit) emit { url = base .. "/page/0?m=" .. m } end,
    on_response = function(res, obj)
      for _, link in ipairs(res:links()) do
        if link:find("/page/", 1, true) then obj:fetch { url = link } end
      end
      obj.storage:put("pages", (obj.storage:get("pages") or 0) + 1)
      return { url = res.url, pages_so_far = obj.storage:get("pages") }
    end,
  }
]]

local function lines_of(path)
  local t = {}
  for line in (H.read(path) or ""):gmatch("[^\n]+") do t[#t + 1] = line end
  return t
end

describe("crash-safe runs (--state)", function()
  local srv, script
  setup(function()
    srv = H.server()
    script = H.tmpname(".lua")
    H.write(script, graph)
  end)
  teardown(function() srv.stop() end)

  local function cmd(db, out, m, extra)
    return string.format("%s run %s -q --state %s --out %s %s -- %s %d",
      H.bin, script, db, out, extra or "", srv.base, m)
  end

  it("survives kill -9 at random points: every page recorded exactly once", function()
    local db, out = H.tmpname(".db"), H.tmpname(".jsonl")
    local m = 400
    math.randomseed(os.time())
    local kills = 0
    for _ = 1, 5 do
      local delay = 0.15 + math.random() * 0.5
      H.sh(string.format("(%s 2>/dev/null & pid=$!; sleep %.2f; kill -9 $pid; wait $pid) 2>/dev/null",
        cmd(db, out, m), delay))
      kills = kills + 1
    end
    local rc = H.sh(cmd(db, out, m) .. " 2>/dev/null")
    assert.equal(0, rc)
    local seen, n = {}, 0
    for _, line in ipairs(lines_of(out)) do
      local rec = H.json.decode(line)
      assert.is_nil(seen[rec.url], "recorded twice: " .. rec.url)
      seen[rec.url] = true
      n = n + 1
    end
    assert.equal(m, n)
    -- storage survived with the records: the counter saw every page once
    local max = 0
    for _, line in ipairs(lines_of(out)) do max = math.max(max, H.json.decode(line).pages_so_far) end
    assert.equal(m, max)
    assert.equal(5, kills)
  end)

  it("does nothing for a finished crawl unless --restart", function()
    local db, out = H.tmpname(".db"), H.tmpname(".jsonl")
    assert.equal(0, H.sh(cmd(db, out, 20) .. " 2>/dev/null"))
    assert.equal(20, #lines_of(out))
    H.sleep(0.15) -- the server's log is flushed within 50 ms
    local before = #srv.log_for("/page/", 0)
    local err = H.tmpname(".err")
    assert.equal(0, H.sh(cmd(db, out, 20):gsub(" %-q ", " ") .. " 2> " .. err))
    assert.truthy(H.read(err):match("finished"))
    assert.equal(20, #lines_of(out))
    H.sleep(0.1)
    assert.equal(before, #srv.log_for("/page/", 0))
    assert.equal(0, H.sh(cmd(db, out, 20, "--restart") .. " 2>/dev/null"))
    assert.equal(20, #lines_of(out))
    assert.truthy(#srv.log_for("/page/", before + 20) >= before + 20)
  end)

  it("takes the state database from the spec's state field too", function()
    local db, out = H.tmpname(".db"), H.tmpname(".jsonl")
    local src = H.tmpname(".lua")
    H.write(src, graph:gsub("rps = 400,", "state = " .. string.format("%q", db) .. ", rps = 400,"))
    local function go()
      local err = H.tmpname(".err")
      H.sh(string.format("%s run %s --out %s -- %s 10 2> %s", H.bin, src, out, srv.base, err))
      return H.read(err)
    end
    assert.falsy(go():match("finished"))
    assert.equal(10, #lines_of(out))
    assert.truthy(go():match("finished"))
    assert.equal(10, #lines_of(out))
  end)

  it("keeps numbers exact through the frontier and storage on disk", function()
    local db, out, src = H.tmpname(".db"), H.tmpname(".jsonl"), H.tmpname(".lua")
    H.write(src, [[
      local base = arg[1]
      return {
        start = function(emit) emit { url = base .. "/item/1.json?exact", meta = { id = 1234567890123456 } } end,
        on_response = function(res, obj)
          obj.storage:put("t", { n = 1234567890123457, f = 0.1 })
          local t = obj.storage:get("t")
          return { meta_id = res.request.meta.id, n = t.n, f = t.f }
        end,
      }
    ]])
    assert.equal(0, H.sh(string.format("%s run %s -q --state %s --out %s -- %s", H.bin, src, db, out, srv.base)))
    local line = lines_of(out)[1]
    assert.truthy(line:find('"meta_id":1234567890123456', 1, true), line)
    assert.truthy(line:find('"n":1234567890123457', 1, true), line)
    assert.truthy(line:find('"f":0.1', 1, true), line)
  end)

  it("keeps a large frontier on disk, not in memory", function()
    -- one response queues n follow-ups at once; with --state they wait in
    -- the database, so memory does not grow with n
    local src = H.tmpname(".lua")
    H.write(src, [[
      local base, n = arg[1], tonumber(arg[2])
      return {
        concurrency = 8,
        start = function(emit) emit { url = base .. "/item/1.json?fan" .. n } end,
        on_response = function(res, obj)
          if res.request.depth == 0 then
            for i = 1, n do
              obj:fetch { url = base .. "/item/" .. i .. ".json?f" .. n, meta = { pad = string.rep("x", 200) } }
            end
          end
          return nil
        end,
      }
    ]])
    local function peak(n)
      local db, err = H.tmpname(".db"), H.tmpname(".err")
      local rc = H.sh(string.format("%s run %s --no-body --state %s --out /dev/null -- %s %d 2> %s",
        H.release_bin, src, db, srv.base, n, err))
      assert.equal(0, rc, H.read(err))
      assert.truthy(H.read(err):match((n + 1) .. " requests"), H.read(err))
      return tonumber(H.read(err):match("peak RSS ([%d.]+) MB"))
    end
    local small, large = peak(2000), peak(40000)
    assert.truthy(large < small + 6, string.format("2k: %.1f MB, 40k: %.1f MB", small, large))
  end)
end)
