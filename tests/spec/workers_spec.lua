-- workers_spec.lua - fetchtree.workers alone: one job at a time per
-- object, jobs that wait in fetchtree's calls (they yield sched.WAIT and
-- are resumed through sched), the count of suspended jobs, stray yields,
-- and workers reused.
local sched = require "fetchtree.sched"
local workers = require "fetchtree.workers"

describe("fetchtree.workers", function()
  local W, count, strays, log
  before_each(function()
    count, strays, log = 0, {}, {}
    W = workers.new {
      suspended = function(d) count = count + d end,
      stray = function(obj, err, fn, a, b) strays[#strays + 1] = { obj = obj, err = err, fn = fn, a = a, b = b } end,
    }
  end)

  local function job(a, b) log[#log + 1] = a .. " " .. tostring(b) end

  -- a job that waits (as ft.get does) and logs when resumed; parked[a] = its coroutine
  local parked = {}
  local function waiting_job(a)
    log[#log + 1] = a .. " waits"
    parked[a] = coroutine.running()
    local v = coroutine.yield(sched.WAIT)
    log[#log + 1] = a .. " got " .. tostring(v)
  end

  it("runs a job now when its object is free", function()
    W.run({}, job, "x", 1)
    assert.same({ "x 1" }, log)
  end)

  it("runs one job at a time per object, in order; others go on", function()
    local a, b = {}, {}
    W.run(a, waiting_job, "a1")
    W.run(a, job, "a2", 2)
    W.run(b, job, "b1", 1)
    assert.same({ "a1 waits", "b1 1" }, log)
    assert.equal(1, count) -- the run is kept open while a1 waits
    sched.resume(parked.a1, "answer")
    assert.same({ "a1 waits", "b1 1", "a1 got answer", "a2 2" }, log)
    assert.equal(0, count)
    assert.is_false(a._busy)
  end)

  it("counts a job that waits several times once", function()
    local co
    W.run({}, function()
      co = coroutine.running()
      coroutine.yield(sched.WAIT)
      coroutine.yield(sched.WAIT)
      log[#log + 1] = "end"
    end)
    assert.equal(1, count)
    sched.resume(co)
    assert.equal(1, count)
    sched.resume(co)
    assert.equal(0, count)
    assert.same({ "end" }, log)
  end)

  it("reuses a worker once its job has ended", function()
    local seen = {}
    local function who() seen[#seen + 1] = coroutine.running() end
    W.run({}, who)
    W.run({}, who)
    assert.equal(seen[1], seen[2])
    assert.equal("handler", sched.kind[seen[1]])
  end)

  it("ends a job that yields outside fetchtree's calls as a stray, and drops its worker", function()
    local a = {}
    local co1
    local function bad(x, y) co1 = coroutine.running(); coroutine.yield("something else"); log[#log + 1] = x .. y end
    W.run(a, bad, "p", "q")
    W.run(a, job, "next", 1)
    assert.equal(1, #strays)
    assert.equal(a, strays[1].obj)
    assert.equal(bad, strays[1].fn)
    assert.same({ "p", "q" }, { strays[1].a, strays[1].b })
    assert.truthy(strays[1].err:find("coroutine.yield() in a handler", 1, true))
    assert.truthy(strays[1].err:find("stack traceback", 1, true))
    assert.same({ "next 1" }, log) -- the object's next job ran; bad never resumes
    local co2
    W.run({}, function() co2 = coroutine.running() end)
    assert.are_not.equal(co1, co2)
    assert.is_nil(a._job_fn)
  end)

  it("reports a stray whose record cannot be written, and goes on", function()
    local msgs = {}
    local stderr = io.stderr
    io.stderr = { write = function(_, ...) msgs[#msgs + 1] = table.concat({ ... }) end } -- luacheck: ignore
    local W2 = workers.new { suspended = function() end, stray = function() error("cannot write") end }
    local a = {}
    W2.run(a, function() coroutine.yield() end)
    W2.run(a, job, "after", 1)
    io.stderr = stderr -- luacheck: ignore
    assert.truthy(msgs[1]:find("cannot write", 1, true))
    assert.same({ "after 1" }, log)
  end)
end)
