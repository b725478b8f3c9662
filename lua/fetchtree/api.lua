-- fetchtree.api: the Lua API, `require "fetchtree"` (in scripts, the REPL,
-- and from a plain luajit through build/fetchtree.so).
--
-- Requests go to an engine (fetchtree.engine) on the state's one event
-- loop. A call made inside a task (ft.spawn) yields until its answer is in,
-- and the loop goes on meanwhile; a call made from plain top-level code
-- steps the loop itself until its answer is in.
local engine = require "fetchtree.engine"
local request = require "fetchtree.request"
local Res = require("fetchtree.crawl").Res
local core = require "fetchtree.core"
local sched = require "fetchtree.sched"

local M = { _VERSION = "fetchtree 0.1.0", _in_run = 0 }

local pending = {}              -- id -> waiter { co, task, res, err, done, cb }
local next_id = 0
local tasks = {}                -- coroutine -> task (the ones ft.spawn runs)
local alive = 0                 -- tasks not finished
local default_engine

local function dispatch(id, res, err)
  local w = pending[id]
  pending[id] = nil
  if not w then return end
  if res then setmetatable(res, Res) ; res.request = w.req end
  w.res, w.err, w.done = res, err, true
  if w.cb then w.cb(res, err) end
  if w.co then sched.resume(w.co, res, err) end
end
engine.on_done(dispatch)

local function the_engine()
  if not default_engine then default_engine = engine.new {} end
  return default_engine
end

-- Hand a request to eng under a new id for waiter w, whose fields (cb,
-- ...) must all be set before: a request that fails at once (a URL the
-- engine does not fetch) is reported from inside eng:submit, and one the
-- engine refuses completes w with an "input" error. The one way both
-- drivers (the calls below, ft.run) submit.
local function send(eng, w, url, method, headers, body, timeout, retries, obj, robots)
  next_id = next_id + 1
  local id = next_id
  pending[id] = w
  local ok, why = eng:submit(id, url, method, headers, body, timeout, retries, obj, robots)
  if not ok and pending[id] == w then
    dispatch(id, nil, { kind = "input", message = tostring(why), attempts = 0, url = url })
  end
  return w
end

-- Check a table t of settings for place (the one settings table, in C:
-- every entry point takes or refuses a value the same way); misuse raises
-- at level, its message prefixed with label.
local check_settings = engine.check_settings
local function check(place, t, label, level)
  local ok, why = check_settings(place, t, label)
  if not ok then error(why, level + 1) end
end

-- Check a request table and send it to eng for waiter w (see send). A bad
-- request table is misuse and raises (at level), label naming the caller.
-- Returns w.
local function submit(eng, t, w, level, label)
  if type(t) == "string" then t = { url = t } end
  local url, method, headers, body, meta = request.check(t, true)
  if not url then error(method, level + 1) end
  check("request", t, label, level + 1)
  w.req = { url = url, method = method or "GET", headers = t.headers, body = body, meta = meta }
  return send(eng, w, url, method, headers, body, t.timeout, t.retries)
end

-- The coroutine fetchtree runs that we are in (a task, a crawl handler).
local current_co = sched.current
local WAIT = sched.WAIT

-- Run the loop (from top-level code) until done() holds. A loop left
-- with nothing to do while done() does not hold would spin for ever:
-- raise instead (a task waiting for itself, a request of a closed engine).
local function step_until(done, what)
  while not done() do
    if not engine.step(-1) and not done() and not engine.step(0) and not done() then
      error("fetchtree: " .. what .. " can never finish: nothing it waits for is in flight", 3)
    end
  end
end

-- Wait for waiter w: yield inside a task or handler, else run the loop.
local function await(w)
  if w.done then return w.res, w.err end
  local co = current_co()
  -- a task always yields; a crawl handler yields when the crawl's loop
  -- is the one that will deliver the answer (fetchtree run, ft.run)
  if co and (sched.kind[co] ~= "handler" or engine.borrowed() or M._in_run > 0) then
    w.co = co
    return coroutine.yield(WAIT)
  end
  step_until(function() return w.done end, "this wait")
  return w.res, w.err
end

-- ---- requests -----------------------------------------------------------

-- ft.request{url=, method=, headers=, body=, timeout= (s), retries=}:
-- a response, or nil and an error {kind=, message=}.
function M.request(t)
  if type(t) ~= "table" then error("ft.request{url=...} takes a table", 2) end
  local res, err = await(submit(the_engine(), t, {}, 2, "ft.request"))
  if res then return res end
  return nil, err
end

-- ft.get(url [, opts]): ft.request with url and the options in opts.
function M.get(url, opts)
  if type(url) ~= "string" then error("ft.get(url [, opts]): url must be a string", 2) end
  local t = { url = url }
  if opts ~= nil then
    check("request", opts, "ft.get", 2)
    for k, v in pairs(opts) do t[k] = v end
  end
  local res, err = await(submit(the_engine(), t, {}, 2, "ft.get"))
  if res then return res end
  return nil, err
end

-- ft.fetch_all(requests, {rps=, window=, concurrency=, retries=}): the
-- responses in the order of the requests, failures in place as {error=}.
function M.fetch_all(list, opts)
  if type(list) ~= "table" then error("ft.fetch_all(requests [, opts]) takes a list", 2) end
  local n = #list
  -- misuse raises before anything is sent: a bad table, a hole in the list
  for i = 1, n do
    local t = list[i]
    if type(t) == "string" then t = { url = t } end
    local ok, why = request.check(t, true)
    if not ok then error(string.format("ft.fetch_all: request %d: %s", i, why), 2) end
    check("request", t, string.format("ft.fetch_all: request %d", i), 2)
  end
  if opts ~= nil then check("engine", opts, "ft.fetch_all", 2) end
  local eng = engine.new(opts or {})
  local out, left = {}, n
  local done = { done = left == 0 }
  local function finished()
    left = left - 1
    if left == 0 then
      done.done = true
      if done.co then sched.resume(done.co) end
    end
  end
  local first = next_id + 1
  local ok, e = pcall(function()
    for i = 1, n do
      -- the callback is in place before the request goes: one that fails
      -- at once is reported from inside submit
      submit(eng, list[i], { cb = function(res, err)
        out[i] = res or { error = err }
        finished()
      end }, 3, "ft.fetch_all")
    end
    await(done)
  end)
  eng:close()
  if not ok then -- interrupted: the requests left are dropped
    for id = first, next_id do pending[id] = nil end
    error(e, 0)
  end
  return out
end

-- ft.run(spec [, opts]): run a crawl spec as `fetchtree run` does, on the
-- same driver (core/crawl.c, through core.run): start, handlers,
-- follow-ups, depth, hosts, de-duplication, objects and their limits,
-- obj:after, a state file. Returns its stats, or nil, err, stats when the
-- run failed (start raised: err.kind "script"). opts.out: a function
-- receiving each record (as a table), a file name, or nil for standard
-- output; opts.with_meta, no_body, no_headers, restart (with a state); and
-- every setting of the spec (rps, window, concurrency, retries, timeout,
-- ..., user_agent, retry_on, state), which win over the spec's.
-- The names of the settings ft.run's options may set for the crawl (the
-- settings table's, core/settings.c: the spec's and the engine's; out,
-- with_meta and the like are ft.run's own): an option wins over the spec.
local run_names
local function run_settings()
  if not run_names then
    run_names = {}
    for _, st in ipairs(engine.settings()) do
      if st.places["ft.run"] and (st.places.spec or st.places.engine) then
        run_names[#run_names + 1] = st.name
      end
    end
  end
  return run_names
end

local list_text = require("fetchtree.crawlspec").list_text

function M.run(spec, o)
  if type(spec) ~= "table" then error("ft.run(spec [, opts]): spec must be a table", 2) end
  o = o or {}
  check("ft.run", o, "ft.run", 2)
  local out = o.out
  if out ~= nil and type(out) ~= "function" and type(out) ~= "string" then
    error("ft.run: opts.out must be a function, a file name or nil", 2)
  end
  local crawl = require("fetchtree.crawl").new()
  local records, lua_out = 0, nil
  if type(out) == "function" then
    lua_out = function(rec) records = records + 1; out(rec) end
  end
  local settings = crawl.load_spec(spec, "ft.run", {
    with_meta = o.with_meta, keep_entries = lua_out and true or nil, out = lua_out,
  })
  for _, k in ipairs(run_settings()) do
    if o[k] ~= nil then settings[k] = list_text(o[k]) end
  end
  M._in_run = M._in_run + 1
  local ok, st, err, st2 = pcall(core.run, crawl, settings, {
    out_path = type(out) == "string" and out or nil, lua_out = lua_out ~= nil,
    no_body = o.no_body, no_headers = o.no_headers, restart = o.restart,
  })
  M._in_run = M._in_run - 1
  if not ok then error(st, st == "interrupted" and 0 or 2) end
  if lua_out then (st or st2).records = records end
  if not st then return nil, err, st2 end
  return st
end

-- ---- tasks --------------------------------------------------------------

local Task = {}
Task.__index = Task
function Task:__tostring()
  return string.format("<task %s>", self.done and (self.ok and "done" or "failed") or "running")
end

local function finish(task, ok, ...)
  task.done, task.ok = true, ok
  if ok then task.results = { n = select("#", ...), ... } else task.error = ... end
  tasks[task.co] = nil
  alive = alive - 1
  local ws = task.waiters -- a set: a waiter is resumed once
  task.waiters = {}
  for co in pairs(ws) do sched.resume(co) end
end

-- A task came back from a resume: it ended, or waits in one of
-- fetchtree's calls (they yield WAIT). Any other yield would leave it
-- suspended with nothing to resume it: the task fails.
local function settle(task, ok, ...)
  local co = task.co
  if coroutine.status(co) == "dead" then return finish(task, ok, ...) end
  if ok and ... ~= WAIT then
    finish(task, false, require("fetchtree.trace").thread(co, "coroutine.yield() in a task: a task may " ..
      "only be suspended by fetchtree's calls (ft.get, ft.request, ft.fetch_all, ft.wait)"))
  end
end

local function resume_task(task, ...)
  return settle(task, coroutine.resume(task.co, ...))
end

local spawned = 0

-- ft.spawn(fn, ...): run fn(...) as a task in the loop; returns the task.
function M.spawn(fn, ...)
  if type(fn) ~= "function" then error("ft.spawn(fn, ...): fn must be a function", 2) end
  local co = coroutine.create(fn)
  spawned = spawned + 1
  local task = setmetatable({ co = co, done = false, waiters = {}, seq = spawned }, Task)
  tasks[co] = task
  sched.managed[co] = function(...) return resume_task(task, ...) end
  alive = alive + 1
  resume_task(task, ...)
  return task
end

-- ft.wait(task, ...): wait for those tasks; returns each task's first
-- result (nil for a task that failed). ft.wait(): wait until no task is
-- running; returns the first results of the tasks running when it was
-- called, in the order they were spawned.
function M.wait(...)
  local list, n = { ... }, select("#", ...)
  local all = n == 0
  for i = 1, n do
    if getmetatable(list[i]) ~= Task then error("ft.wait(task, ...): argument " .. i .. " is not a task", 2) end
  end
  if all then
    for _, t in pairs(tasks) do list[#list + 1] = t end
    table.sort(list, function(a, b) return a.seq < b.seq end)
    n = #list
  end
  local function finished()
    if all then return alive == 0 end
    for i = 1, n do if not list[i].done then return false end end
    return true
  end
  local me = current_co()
  if me then
    while not finished() do
      if all then error("ft.wait() for all tasks cannot be called from a task", 2) end
      for i = 1, n do local t = list[i]; if not t.done then t.waiters[me] = true end end
      coroutine.yield(WAIT)
    end
  else
    step_until(finished, "ft.wait")
  end
  local out = {}
  for i = 1, n do
    local t = list[i]
    if me then t.waiters[me] = nil end
    out[i] = t.ok and t.results[1] or nil
  end
  return unpack(out, 1, n)
end

-- ---- driving from another event loop ---------------------------------------

-- ft.step(timeout_ms): one round of I/O (0: do not wait). Returns true
-- while requests or tasks are outstanding.
function M.step(timeout_ms)
  engine.step(timeout_ms or 0)
  return next(pending) ~= nil or alive > 0
end

-- ft.fd(): a descriptor to poll for readability before calling ft.step(0).
function M.fd()
  return engine.fd()
end

-- ---- names ----------------------------------------------------------------

local unique = 0
function M.unique_name(prefix)
  prefix = prefix or ""
  if type(prefix) ~= "string" or (prefix ~= "" and not prefix:match("^/[^/]")) or prefix:sub(-1) == "/" then
    error("ft.unique_name(prefix): prefix must be an object name such as /jobs", 2)
  end
  unique = unique + 1
  return string.format("%s/u%d", prefix, unique)
end

M.Response = Res
-- what a JSON null inside a decoded body is (lua-cjson's, a truthy value)
M.null = require("cjson").null

-- fetchtree.core (bound to the state's run: storage, the journal, record
-- output) is for fetchtree's own modules, which hold it by now: scripts
-- load after this module, and `require "fetchtree.core"` fails for them.
package.loaded["fetchtree.core"] = nil
package.preload["fetchtree.core"] = nil

-- ft.resolve(url [, base]): the normalised absolute URL, or nil and why
function M.resolve(url, base)
  local norm, err = core.resolve(url, base)
  if norm then return norm end
  return nil, err
end
return M
