-- fetchtree.crawl: the Lua half of `fetchtree run` and ft.run, and the
-- functions C calls to drive a crawl: load (or load_spec), next, respond
-- (or response), failure, alarm, and for durable runs resume and
-- checkpoint. It composes the crawl from its parts:
--
--   fetchtree.crawlspec the script, its spec checked, settings for C
--   fetchtree.frontier  requests waiting to start: start's stream, the
--                       filters, routing, memory or the journal
--   fetchtree.object    the objects (obj): handlers, state, alarms, limits
--   fetchtree.storage   obj.storage
--   fetchtree.workers   the coroutines handlers run in, one job per object
--   fetchtree.handlers  the jobs: on_response, on_error, an alarm
--   fetchtree.records   how records go out
--   fetchtree.response  the response object (res)
--   fetchtree.robots    robots.txt
--
-- fetchtree.core (C) gives URLs, the seen set, HTML, storage, the journal
-- and the output; each part is handed the functions it uses.
local core = require "fetchtree.core"
local crawlspec = require "fetchtree.crawlspec"
local frontier_mod = require "fetchtree.frontier"
local object_mod = require "fetchtree.object"
local storage_mod = require "fetchtree.storage"
local workers_mod = require "fetchtree.workers"
local handlers_mod = require "fetchtree.handlers"
local records_mod = require "fetchtree.records"
local response_mod = require "fetchtree.response"
local robots_mod = require "fetchtree.robots"

-- One response metatable for every crawl (and ft.get's responses).
local Res = response_mod.metatable(core)

-- Each crawl is an instance: `fetchtree run` uses the one this module
-- returns; ft.run makes a fresh one for every run.
local function new_instance()
  local M = {}
  M.Res = Res

  local opts = {}       -- the caller's options (load_spec's o)
  local patterns        -- spec.objects, compiled (fetchtree.object.patterns)
  local frontier, objects, records
  -- the parts' functions the hot path calls, as upvalues
  local take, start_failed, run_job, get_obj, response_job, failure_job, alarm_job
  local entries = {}    -- requests in flight, by id, while their outcome comes here
  -- Who writes which records (load_spec decides): with lua_gets_failures
  -- every failure (and success) comes back here, so next keeps its entry;
  -- with c_writes_successes C writes a success's default record itself
  -- and next hands it the meta's JSON for it.
  local lua_gets_failures = false
  local c_writes_successes = true
  -- robots.txt (fetchtree.robots): the instance, or nil when nothing
  -- obeys it; a request of an object that obeys it starts only once its
  -- host's robots.txt is known, and only where that allows it (next)
  local robots
  local obeys_robots    -- function(object name) -> whether its requests obey it

  -- ---- what C calls -------------------------------------------------------

  -- Load the script at path with the script arguments args (a list) and
  -- the options o (load_spec's). Returns the spec's settings for C, or
  -- raises "file:line: message".
  function M.load(path, args, o)
    opts = o or {}
    return M.load_spec(crawlspec.load(path, args), path, o)
  end

  -- Take spec table s (path names it in messages) and build the crawl.
  -- Options o (kept from load when nil):
  --   with_meta     records carry _url, _status, _index, _depth
  --   out           function(record): records go there, not to the output
  --   keep_entries  every outcome comes back to response/failure (ft.run:
  --                 no C writes records)
  --   hold          function(delta) in place of core.hold: +1 while a
  --                 handler is suspended in fetchtree's calls, -1 after
  --   set_limits    function in place of core.set_limits
  --   after         function(id, ms) in place of core.after
  -- Returns the settings for C (the spec's, checked here by type; C checks
  -- their ranges), or raises "path: message".
  function M.load_spec(s, path, o)
    opts = o or opts
    crawlspec.check(s, path, core.check_settings)
    patterns = object_mod.patterns(s.objects, path)
    local any_response, any_error = s.on_response ~= nil, s.on_error ~= nil
    for _, pt in ipairs(patterns) do
      any_response = any_response or pt.cfg.on_response ~= nil
      any_error = any_error or pt.cfg.on_error ~= nil
    end
    local set_limits = opts.set_limits or core.set_limits

    records = records_mod.new(core, opts)
    frontier = frontier_mod.new { core = core, spec = s, records = records }
    objects = object_mod.new {
      spec = s, patterns = patterns, storage = storage_mod.new(core),
      enqueue = frontier.enqueue, records = records,
      after = opts.after or core.after, set_limits = set_limits,
    }
    local jobs = handlers_mod.new { objects = objects, records = records, done = frontier.done }
    local workers = workers_mod.new { suspended = opts.hold or core.hold, stray = jobs.stray }
    take, start_failed, run_job, get_obj = frontier.take, frontier.start_failed, workers.run, objects.get
    response_job, failure_job, alarm_job = jobs.response, jobs.failure, jobs.alarm
    robots = robots_mod.for_spec(s, path, {
      patterns = patterns, host_object = frontier.host_object, set_limits = set_limits,
      storage = function(name) return get_obj(name).storage end, requeue = frontier.requeue,
    })
    obeys_robots = robots and robots.obeys

    -- Who writes records, decided here alone (C reads has_on_response
    -- and has_on_error, below): C (fetchtree run) writes a success's
    -- record when no object has on_response, a failure's when none has
    -- on_error either; every other outcome comes here, its entry kept for
    -- it. With robots.txt every outcome comes here (the crawl fetches
    -- robots.txt itself and writes the records of refused requests);
    -- ft.run (opts.keep_entries) has no C writer.
    local lua_responses = any_response or robots ~= nil
    local lua_failures = lua_responses or any_error
    c_writes_successes = not (lua_responses or opts.keep_entries)
    lua_gets_failures = lua_failures or opts.keep_entries or false

    local settings = crawlspec.settings(s)
    settings.has_on_response, settings.has_on_error = lua_responses, lua_failures
    settings.robots = robots ~= nil
    return settings
  end

  -- A durable run resumes: skip the emits start made before, number new
  -- requests after the old ones.
  function M.resume(skip, nid)
    frontier.resume(skip, nid)
  end

  -- What a checkpoint stores with the output offset: start's position
  -- and the next request id.
  function M.checkpoint()
    return frontier.checkpoint()
  end

  -- The limits of spec.objects, for the C tree: a list of
  -- { pattern, rps, window, concurrency, retries }.
  function M.object_settings()
    local out = {}
    for _, pt in ipairs(patterns) do
      local c = pt.cfg
      out[#out + 1] = { pattern = pt.pattern, rps = c.rps, window = c.window,
                        concurrency = c.concurrency, retries = c.retries }
    end
    return out
  end

  -- A request that cannot start (entry e has bad): its one record. One
  -- of an object (a bad URL: "/"; robots.txt refusing) goes through that
  -- object's on_error when there is one; one of none (route failed: the
  -- script's error) is written as it is.
  local function refuse(e)
    local kind = e.bad_kind or "url"
    if lua_gets_failures and e.obj then
      entries[e.id] = e
      M.failure(e.id, { kind = kind, message = e.bad, attempts = 0 })
    else
      records.error(e, nil, { kind = kind, message = e.bad, traceback = e.traceback })
      frontier.done(e.id)
    end
  end

  -- The next request to start: id, url, method, headers, body, meta_json,
  -- object name, and the robots.txt rules (a userdata for the engine's
  -- checks of redirects) when it obeys robots.txt.
  -- Or nil and "wait" (none now; follow-ups may come), "done" (start raised
  -- earlier: nothing more), or "error" with the message when start raised.
  -- n: how many the caller will take now (start runs ahead to that many).
  function M.next(n)
    n = n or 1
    while true do
      -- robots.txt fetches first: requests are waiting for them
      if robots and not start_failed() then
        local rf = robots.take_fetch()
        if rf then return rf.id, rf.url, nil, nil, nil, nil, rf.obj, nil end
      end
      local e, why, msg = take(n)
      if not e then return nil, why, msg end
      local gate, how -- robots.txt: "go" (how: its rules), "deny" or "wait"
      if robots and not e.bad and obeys_robots(e.obj) then
        gate, how = robots.gate(e)
        if gate == "deny" then e.bad, e.bad_kind = how, "robots" end
      end
      -- (gate "wait": held back, robots.txt of its host comes first; it
      -- is requeued then)
      if e.bad then
        refuse(e)
      elseif gate ~= "wait" then
        if lua_gets_failures then entries[e.id] = e end
        local meta_json
        -- for the record C writes (with on_error alone, of a success)
        if c_writes_successes and e.meta ~= nil then meta_json = select(2, records.meta(e.meta)) end
        return e.id, e.url, e.method, e.headers, e.body, meta_json, e.obj, gate == "go" and how or nil
      end
    end
  end

  -- A final response (any status) for request id: run on_response.
  function M.response(id, res)
    if robots and robots.owns(id) then return robots.response(id, res.status, res.body) end
    local entry = entries[id]
    entries[id] = nil
    setmetatable(res, Res)
    res.request = entry
    run_job(get_obj(entry.obj), response_job, entry, res)
  end

  -- The same from C (fetchtree run), the response's fields as arguments.
  function M.respond(id, status, url, body, raw_headers, attempts, elapsed_ms)
    return M.response(id, { status = status, url = url, body = body, _h = raw_headers,
                            attempts = attempts, elapsed_ms = elapsed_ms })
  end

  -- A request that failed for good: run on_error, or write an error record.
  function M.failure(id, err)
    if robots then
      if robots.owns(id) then return robots.failure(id, err) end
      -- a redirect the engine refused: wait for the target's robots.txt,
      -- or fail with kind "robots"
      if err.refused_url and robots.refused(entries[id], err) then
        entries[id] = nil
        return
      end
    end
    local entry = entries[id]
    entries[id] = nil
    run_job(get_obj(entry.obj), failure_job, entry, err)
  end

  -- An alarm set with obj:after has fired.
  function M.alarm(id)
    local obj, fn = objects.take_alarm(id)
    if obj then run_job(obj, alarm_job, obj, fn) end
  end

  return M
end

local default = new_instance()
default.new = new_instance
default.Res = Res
return default
