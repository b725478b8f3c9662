-- fetchtree.workers: the coroutines a crawl's handlers run in, one job at
-- a time per object. A handler that waits (ft.get) yields, and the
-- object's next job waits its turn, so an object's handlers never run
-- concurrently, as with a Durable Object. While one is suspended the run
-- is kept open.
--
-- The coroutines are workers, kept in a pool and reused: a job is a
-- function and two arguments (no closure per response: LuaJIT does not
-- compile closure creation, and a coroutine per response cost more than
-- the handler). A worker runs its job, then yields IDLE for the next.
--
-- An object's queue of jobs lives in the object table: _busy (a job of
-- it runs or waits), _q (three slots per job: fn, a, b) from _qh to _qt,
-- _draining, and _job_fn/_job_a/_job_b, the job running now.
local sched = require "fetchtree.sched"

local M = {}

local IDLE = {}
local WAIT = sched.WAIT
local yield, resume, create = coroutine.yield, coroutine.resume, coroutine.create
local traceback = require("fetchtree.trace").thread -- the user's frames only

local function worker_main(fn, a, b)
  while true do
    fn(a, b) -- never raises: jobs catch their own errors
    fn, a, b = yield(IDLE)
  end
end

-- o:
--   suspended: function(delta): a job suspended in fetchtree's calls (+1),
--       or one that was has ended (-1); the run must not end while the
--       count is above 0 (core.hold)
--   stray: function(obj, err, fn, a, b): job fn(a, b) of obj yielded
--       outside fetchtree's calls (err: the message with the handler's
--       traceback); it must write the job's record. Not called for a
--       job that raised: jobs catch their own errors.
-- Returns W with W.run(obj, fn, a, b): run fn(a, b) as obj's next job, now
-- if obj is free, else in turn.
function M.new(o)
  local W = {}
  local suspended, stray = o.suspended, o.stray
  local pool = {}           -- idle workers
  local worker_obj = {}     -- busy worker -> its object
  local counted = {}        -- busy worker -> true while counted as suspended

  -- A worker came back from a resume (ok, r: what resume returned). Its
  -- job ended (true: the worker is back in the pool), or it waits inside
  -- a handler in one of fetchtree's calls (false: that call's completion
  -- resumes it). A job that yielded anything else (a bare
  -- coroutine.yield()) would wait for ever: it ends as a stray, and the
  -- worker is dropped.
  local function finish_or_park(co, ok, r)
    if ok and r ~= IDLE then
      if r == WAIT then
        if not counted[co] then
          counted[co] = true
          suspended(1)
        end
        return false
      end
      local obj = worker_obj[co]
      local err = traceback(co, "coroutine.yield() in a handler: a handler may only " ..
        "wait in fetchtree's calls (ft.get, ft.request, ft.fetch_all, ft.wait)")
      -- protected: a record that cannot be written is reported, and the
      -- run goes on
      local sok, e = pcall(stray, obj, err, obj._job_fn, obj._job_a, obj._job_b)
      if not sok then io.stderr:write("fetchtree: ", tostring(e), "\n") end
    elseif ok then
      pool[#pool + 1] = co
    else
      io.stderr:write("fetchtree: ", tostring(r), "\n") -- a bug of ours
    end
    local obj = worker_obj[co]
    worker_obj[co] = nil
    if counted[co] then
      counted[co] = nil
      suspended(-1)
    end
    obj._busy = false
    obj._job_fn, obj._job_a, obj._job_b = nil, nil, nil
    return true
  end

  local drain
  local function new_worker()
    local co = create(worker_main)
    -- how a completion resumes a handler waiting in this worker (sched)
    sched.managed[co] = function(...)
      local obj = worker_obj[co]
      if finish_or_park(co, resume(co, ...)) then drain(obj) end
    end
    sched.kind[co] = "handler"
    return co
  end

  local function start_job(obj, fn, a, b)
    local n = #pool
    local co = pool[n]
    if co then pool[n] = nil else co = new_worker() end
    worker_obj[co] = obj
    obj._busy = true
    obj._job_fn, obj._job_a, obj._job_b = fn, a, b -- for a stray yield
    return finish_or_park(co, resume(co, fn, a, b))
  end

  -- Run obj's queued jobs until one waits.
  drain = function(obj)
    if obj._draining then return end
    obj._draining = true
    local q = obj._q
    while not obj._busy and q and obj._qh <= obj._qt do
      local i = obj._qh
      local fn, a, b = q[i], q[i + 1], q[i + 2]
      q[i], q[i + 1], q[i + 2] = nil, nil, nil
      obj._qh = i + 3
      start_job(obj, fn, a, b)
    end
    obj._draining = false
  end

  function W.run(obj, fn, a, b)
    if not obj._busy and not (obj._q and obj._qh <= obj._qt) then
      start_job(obj, fn, a, b)
      return
    end
    local q = obj._q
    if not q or obj._qh > obj._qt then
      q = q or {}
      obj._q, obj._qh, obj._qt = q, 1, 0
    end
    local t = obj._qt
    q[t + 1], q[t + 2], q[t + 3] = fn, a, b
    obj._qt = t + 3
    drain(obj)
  end

  return W
end

return M
