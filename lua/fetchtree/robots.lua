-- fetchtree.robots: robots.txt for a crawl (RFC 9309). The rules are
-- parsed and matched in C (core/robots.c); this module decides when a
-- host's robots.txt is fetched, holds back the requests that wait for it,
-- keeps what was fetched in the host object's storage (durable with
-- --state, so a resumed crawl obeys the same rules without fetching
-- robots.txt again, for 24 hours), and turns Crawl-delay into the host
-- object's rate.
--
-- One instance per crawl (fetchtree.crawl makes it when the spec, or one
-- of its objects, says robots = true). Per origin (scheme://host:port):
--   unknown  -> its robots.txt is fetched first; requests wait for it
--   2xx      -> its rules; 3xx not followed, 4xx -> everything allowed
--   5xx, no answer -> everything disallowed for `recheck` seconds (30 by
--            default), then fetched again; not kept in storage
-- The crawl asks gate(e) before a request starts, and hands the outcome
-- of robots.txt fetches (ids from ID_BASE up) to response / failure.
local core = require "fetchtree.core"
local object = require "fetchtree.object"

local M = {}

M.ID_BASE = 2 ^ 51      -- ids of robots.txt fetches: above any request id
M.RECHECK = 30          -- seconds an unreachable robots.txt disallows all
local MAX_BYTES = 500 * 1024 -- what the parser reads (FT_ROBOTS_MAX_BYTES)
local MAX_WAITS = 3     -- times one request may wait for a redirect target's
local MAX_AGE = 86400   -- seconds a stored robots.txt is used (a resumed crawl)

-- o: { agent = user agent or nil (the run's), recheck = seconds,
--      host_object = function(host) -> object name,
--      storage = function(object name) -> obj.storage,
--      set_delay = function(object name, seconds) (Crawl-delay),
--      requeue = function(entry) (a request that waited may start now) }
function M.new(o)
  local R = {}
  local cache               -- made at first use: the run's user agent is final then
  local recheck = o.recheck or M.RECHECK
  local origins = {}        -- origin -> { fetching = id, waiting = {entries}, retry_at = t }
  local fetching = {}       -- fetch id -> origin
  local to_send = {}        -- robots.txt fetches not yet handed to the engine
  local next_fetch = 0

  local function the_cache()
    if not cache then cache = core.robots_new(o.agent) end
    return cache
  end

  -- The host object of origin, where its robots.txt is kept and fetched.
  local function object_of(origin)
    return o.host_object((origin:match("^https?://([^/]+)$"):gsub(":%d+$", "")))
  end

  local function key(origin) return "robots.txt " .. origin end

  -- The rules of origin from a fetch that ended with status (0: none came).
  local function apply(origin, status, body, keep)
    local st = origins[origin] or {}
    origins[origin] = st
    if status == 0 or status >= 500 then
      core.robots_put(the_cache(), origin, 0, nil)
      st.retry_at = os.time() + recheck
      return
    end
    st.retry_at = nil
    if body and #body > MAX_BYTES then body = body:sub(1, MAX_BYTES) end
    local delay = core.robots_put(the_cache(), origin, status, body)
    local obj = object_of(origin)
    if keep then o.storage(obj):put(key(origin), status .. " " .. os.time() .. "\n" .. (body or "")) end
    -- a rate the limiter refuses leaves the host's rate as it was
    if delay > 0 then pcall(o.set_delay, obj, delay) end
  end

  -- Park e until origin's robots.txt is known, fetching it if no one is.
  local function wait_for(origin, e)
    local st = origins[origin] or {}
    origins[origin] = st
    st.waiting = st.waiting or {}
    st.waiting[#st.waiting + 1] = e
    if st.fetching then return end
    next_fetch = next_fetch + 1
    local id = M.ID_BASE + next_fetch
    st.fetching = id
    fetching[id] = origin
    to_send[#to_send + 1] = { id = id, url = origin .. "/robots.txt",
                              obj = object_of(origin) }
  end

  -- origin's rules now: from the cache, else from storage (a resumed
  -- crawl), else unknown. An unreachable robots.txt is forgotten once its
  -- recheck time has passed.
  local function verdict(url)
    local origin = core.robots_origin(url)
    if not origin then return "allow" end -- not http(s): the engine says why
    local st = origins[origin]
    if st and st.retry_at and os.time() >= st.retry_at and not st.fetching then
      core.robots_forget(the_cache(), origin)
      st.retry_at = nil
    end
    local v = core.robots_check(the_cache(), url)
    if v == "unknown" and not (st and st.fetching) then
      local saved = o.storage(object_of(origin)):get(key(origin))
      if type(saved) == "string" then
        local status, at, body = saved:match("^(%d+) (%d+)\n(.*)$")
        -- RFC 9309 2.4: a copy older than 24 hours is not used
        if status and os.time() - tonumber(at) <= MAX_AGE then
          apply(origin, tonumber(status), body, false)
          v = core.robots_check(the_cache(), url)
        end
      end
    end
    return v, origin
  end

  -- Why url (of origin, as verdict gives it) is refused.
  local function refusal(url, origin)
    local st = origins[origin]
    if st and st.retry_at then
      return "robots.txt of " .. origin .. " is unreachable: nothing there is fetched for now"
    end
    return "robots.txt disallows " .. url
  end

  -- Before request e starts: "go" and the cache (for the engine's checks of
  -- redirects), "deny" and the reason, or "wait" (e is held back and comes
  -- back through o.requeue once its host's robots.txt is in).
  function R.gate(e)
    local v, origin = verdict(e.url)
    if v == "allow" then return "go", the_cache() end
    if v == "disallow" then return "deny", refusal(e.url, origin) end
    wait_for(origin, e)
    return "wait"
  end

  -- A robots.txt fetch to hand to the engine, or nil.
  function R.take_fetch()
    return table.remove(to_send, 1)
  end

  function R.owns(id) return fetching[id] ~= nil end

  local function done(id, status, body)
    local origin = fetching[id]
    fetching[id] = nil
    local st = origins[origin]
    st.fetching = nil
    apply(origin, status, body, status > 0 and status < 500)
    local waiting = st.waiting or {}
    st.waiting = nil
    for _, e in ipairs(waiting) do o.requeue(e) end
  end

  -- The response to robots.txt fetch id (any status).
  function R.response(id, status, body) done(id, status, body) end

  -- The robots.txt fetch id failed: too many redirects count as
  -- unavailable (allow all, RFC 9309 2.3.1.2), anything else (connect,
  -- timeout, 5xx after retries) as unreachable.
  function R.failure(id, err)
    done(id, err.kind == "redirect" and 404 or err.status or 0, nil)
  end

  -- The engine refused a redirect of request e into err.refused_url: true
  -- when e now waits for that origin's robots.txt (it starts again after),
  -- else false with err.message saying why it was refused.
  function R.refused(e, err)
    local target = err.refused_url or e.url
    local v, origin = verdict(target)
    if v == "unknown" and origin and (e._robots_waits or 0) < MAX_WAITS then
      e._robots_waits = (e._robots_waits or 0) + 1
      wait_for(origin, e)
      return true
    end
    if v == "unknown" then
      err.message = "robots.txt of " .. tostring(origin) .. " could not be read"
    else
      err.message = refusal(target, origin) .. (target ~= e.url and " (a redirect of " .. e.url .. ")" or "")
    end
    return false
  end

  return R
end

-- The robots.txt instance crawl spec s asks for, or nil when nothing in
-- it obeys robots.txt: robots = true (or { agent, recheck }) in the spec,
-- or robots = true in the settings of an object pattern. Raises
-- "path: ..." for a robots field that is not one. o:
--   patterns: the spec's object patterns (fetchtree.object.patterns)
--   host_object, storage, requeue: as for M.new
--   set_limits: function(name, { rps =, window = }) (core.set_limits)
-- The instance also has obeys(name): whether requests of object name
-- obey robots.txt, as the nearest object pattern (of the name, else of
-- an ancestor) that says robots decides, else the spec's robots.
function M.for_spec(s, path, o)
  if s.robots ~= nil and type(s.robots) ~= "boolean" and type(s.robots) ~= "table" then
    error(path .. ": spec field 'robots' must be a boolean or a table, got " .. type(s.robots), 0)
  end
  local patterns = o.patterns
  local any = s.robots and true or false
  for _, pt in ipairs(patterns) do
    local r = pt.cfg.robots
    if r ~= nil and type(r) ~= "boolean" then
      error(path .. ": objects['" .. pt.pattern .. "'].robots must be a boolean", 0)
    end
    any = any or r == true
  end
  if not any then return nil end
  local ro = type(s.robots) == "table" and s.robots or {}
  if ro.agent ~= nil and type(ro.agent) ~= "string" or ro.recheck ~= nil and type(ro.recheck) ~= "number" then
    error(path .. ": spec field 'robots' is true or { agent = string, recheck = seconds }", 0)
  end
  local set_limits = o.set_limits
  local R = M.new {
    agent = ro.agent, recheck = ro.recheck, host_object = o.host_object,
    storage = o.storage, requeue = o.requeue,
    -- Crawl-delay: one request per delay, unless an object pattern of
    -- the spec sets this object's rate
    set_delay = function(name, secs)
      for _, pt in ipairs(patterns) do
        if pt.cfg.rps and name:match(pt.lua) then return end
      end
      -- the window within the settings table's range (1 ms to a day)
      set_limits(name, { rps = 1, window = math.max(1, math.min(secs * 1000, 86400000)) })
    end,
  }
  local obeys = {} -- object name -> boolean, found once per object
  function R.obeys(name)
    local v = obeys[name]
    if v == nil then
      v = object.inherited(patterns, name, "robots")
      if v == nil then v = s.robots end
      v = v and true or false
      obeys[name] = v
    end
    return v
  end
  return R
end

return M
