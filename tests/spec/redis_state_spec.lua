-- redis_state_spec.lua - `fetchtree run --state redis://...`: one process's
-- crash-safe run kept in a redis-server the test starts (the Redis backend,
-- core/state_redis.c): records, storage, a finished crawl that says so,
-- --restart, two jobs kept apart by their prefixes, and a kill -9 resumed.
local H = require "helper"

local SCRIPT = [[
local base, n = arg[1], tonumber(arg[2])
return {
  concurrency = 4,
  start = function(emit)
    for i = 1, n do emit { url = base .. "/item/" .. i .. ".json" } end
  end,
  on_response = function(res, obj)
    local item = res:json()
    obj.storage:put("n", (obj.storage:get("n") or 0) + 1)
    return { id = item.id, n = obj.storage:get("n") }
  end,
}
]]

local function run(path, state, out, args, extra)
  local err = H.tmpname(".err")
  local rc = H.sh(string.format("timeout 120 %s run %s -q --state %s -o %s %s -- %s 2> %s < /dev/null",
    H.bin, path, H.q(state), out, extra or "", table.concat(args, " "), err))
  return rc, H.read(err) or ""
end

local function ids(out)
  local seen, n = {}, 0
  for line in (H.read(out) or ""):gmatch("[^\n]+") do
    local rec = H.json.decode(line)
    assert.is_nil(seen[rec.id], "record twice: " .. line)
    seen[rec.id] = true
    n = n + 1
  end
  return seen, n
end

describe("fetchtree run --state redis://", function()
  local srv, redis
  before_each(function() srv, redis = H.server(), H.redis() end)
  after_each(function() srv.stop(); redis.stop() end)

  it("keeps a run in Redis: records, storage, finished, --restart, prefixes apart", function()
    local path = H.tmpname(".lua")
    H.write(path, SCRIPT)
    local state = redis.url .. "/0?prefix=job1:"
    local out = H.tmpname(".jsonl")
    local rc, err = run(path, state, out, { srv.base, 20 })
    assert.equal(0, rc, err)
    local _, n = ids(out)
    assert.equal(20, n)
    -- finished: said so, nothing fetched
    local before = #srv.log()
    rc, err = run(path, state, out, { srv.base, 20 })
    assert.equal(0, rc, err)
    assert.equal(before, #srv.log())
    -- another prefix is another job: it runs, and its storage starts at 0
    local out2 = H.tmpname(".jsonl")
    rc, err = run(path, redis.url .. "/0?prefix=job2:", out2, { srv.base, 5 })
    assert.equal(0, rc, err)
    local _, n2 = ids(out2)
    assert.equal(5, n2)
    local counts = {}
    for line in H.read(out2):gmatch("[^\n]+") do counts[#counts + 1] = H.json.decode(line).n end
    table.sort(counts)
    assert.same({ 1, 2, 3, 4, 5 }, counts)
    -- --restart runs job1 again; its storage was kept (n goes on from 20)
    local out3 = H.tmpname(".jsonl")
    rc, err = run(path, state, out3, { srv.base, 3 }, "--restart")
    assert.equal(0, rc, err)
    local max = 0
    for line in H.read(out3):gmatch("[^\n]+") do max = math.max(max, H.json.decode(line).n) end
    assert.equal(23, max)
  end)

  it("resumes after kill -9 with each record once", function()
    local path = H.tmpname(".lua")
    H.write(path, SCRIPT:gsub("concurrency = 4", "concurrency = 4, rps = 400"))
    local state = redis.url .. "/0?prefix=kill:"
    local out = H.tmpname(".jsonl")
    local pidfile = H.tmpname(".pid")
    os.execute(string.format("%s run %s -q --state %s -o %s -- %s 400 2>/dev/null </dev/null & echo $! > %s",
      H.release_bin, path, H.q(state), out, srv.base, pidfile))
    local pid = tonumber(H.read(pidfile))
    -- kill once some records are out (after a checkpoint or two)
    for _ = 1, 400 do -- whole lines only: the last one may be half written
      local _, lines = (H.read(out) or ""):gsub("\n", "")
      if lines >= 120 then break end
      H.sleep(0.01)
    end
    os.execute("kill -9 " .. pid)
    H.sleep(0.1)
    local rc, err = run(path, state, out, { srv.base, 400 })
    assert.equal(0, rc, err)
    local seen, n = ids(out)
    assert.equal(400, n)
    for i = 1, 400 do assert.truthy(seen[i], "missing " .. i) end
  end)
end)
