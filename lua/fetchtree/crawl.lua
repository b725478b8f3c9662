-- fetchtree.crawl: the Lua half of `fetchtree run`. It loads a crawl spec,
-- turns `start` into a lazy stream of requests (a coroutine that yields at
-- every emit), filters follow-ups (depth, hosts, de-duplication), and runs
-- the handlers, each under xpcall so an error fails one response only.
--
-- The C side (core/script.c) calls load, next, respond and failure; it
-- gives us fetchtree.core for URLs, the seen-set, HTML and output.
local core = require "fetchtree.core"
local request = require "fetchtree.request"
local cjson = require "cjson"
local sched = require "fetchtree.sched"
local robots_mod = require "fetchtree.robots"

-- ---- responses ----------------------------------------------------------

local Res = {}

local function parse_headers(raw)
  local h = {}
  for name, value in raw:gmatch("([^%z]*)%z([^%z]*)%z") do
    if h[name] then h[name] = h[name] .. ", " .. value else h[name] = value end
  end
  return h
end

function Res.__index(res, k)
  if k == "headers" then
    local h = parse_headers(rawget(res, "_h") or "")
    rawset(res, "headers", h)
    return h
  end
  return Res[k]
end

-- pcall from Lua, not cjson.safe: that one wraps the decoder in a
-- lua_pcall from C, a sixtieth of the decode's cost.
-- A body that is JSON null gives nil (a test `if res:json() then` reads
-- as meant); a null inside decodes to cjson.null (ft.null), which is truthy.
local decode, json_null = cjson.decode, cjson.null
function Res:json()
  local ok, v = pcall(decode, self.body)
  if not ok then error("res:json(): " .. tostring(v), 2) end
  if v == json_null then return nil end
  return v
end

function Res:links()
  return core.links(self.body, self.url)
end

function Res:xpath(expr)
  if type(expr) ~= "string" then error("res:xpath(expr): expr must be a string", 2) end
  local ct = self.headers["content-type"] or ""
  local is_xml = ct:find("xml") ~= nil and ct:find("html") == nil
  local list, err = core.xpath(self.body, is_xml, expr)
  if not list then error("res:xpath(): " .. err, 2) end
  return list
end


-- Each crawl is an instance: `fetchtree run` uses the one this module
-- returns; ft.run makes a fresh one for every run.
local function new_instance()
  local M = {}

  local spec            -- the user's crawl spec
  local opts = {}       -- from the command line: with_meta
  local start_co        -- the start generator, or nil once it has ended
  local start_error     -- set when start raised: no new requests from then on
  local queue, q_head, q_tail = {}, 1, 0
  local entries = {}    -- requests in flight, by id, while handlers need them
  local keep_entries = false
  local c_writes_default = true -- no on_response anywhere: C writes successes' records
  local next_id = 0
  local dedupe = true
  local max_depth = math.huge
  local allow_hosts     -- set of lower-case host names, or nil
  local null = cjson.null
  local journal = false  -- durable run: the frontier lives in the state database
  local skip_start = 0   -- on resume: emits of start already taken
  local start_pos = 0    -- emits of start so far
  local want = 1         -- requests the caller of next will take now

  local traceback = debug.traceback

  -- Records are written by core.write_record (core/lrecord.c): the string
  -- and number rules of fetch's records, not lua-cjson's.
  local encode = core.encode

  -- Every record goes out here: to opts.out when it is a function (ft.run),
  -- else as a JSON line to the run's output.
  local core_write_record = core.write_record
  local function out_record(rec)
    local out = opts.out
    if out then return out(rec) end
    core_write_record(rec)
  end


  -- ---- requests -----------------------------------------------------------

  local route_of -- which object a request belongs to (see objects, below)

  -- The default object of a host, "/host/<host>", made once per host.
  local host_objects = {}
  local function host_object(host)
    local name = host_objects[host]
    if not name then
      name = "/host/" .. host
      host_objects[host] = name
    end
    return name
  end

  -- A new request joins the frontier: in memory, or in a durable run the
  -- state database (from where next() takes it back, a batch at a time, so
  -- millions of pending requests cost no memory).
  local function push(e)
    if journal then
      local ok, blob = pcall(encode, e) -- exact numbers, as records
      -- level 4: push, enqueue, emit or obj:fetch, then the script's line
      if not ok then error("with --state, meta must be JSON: " .. tostring(blob), 4) end
      core.journal_add(e.id, blob)
    else
      q_tail = q_tail + 1
      queue[q_tail] = e
    end
  end

  -- Queue a request table at depth; a relative URL is resolved against base.
  -- Returns true, or false and a reason.
  local function enqueue(t, depth, base)
    if type(t) == "string" then t = { url = t } end
    local url, method, headers, body, meta = request.check(t, true)
    if not url then error(method, 3) end -- misuse: a bad request table
    if depth > max_depth then return false, "deeper than max_depth" end
    local norm, host = core.resolve(url, base) -- or nil and the reason
    if not norm then
      -- still one record: an error for this request
      next_id = next_id + 1
      push({ id = next_id - 1, url = url, method = method, headers = headers,
             body = body, meta = meta, depth = depth, bad = host })
      return true
    end
    if allow_hosts and not allow_hosts[host] then
      return false, "host not allowed"
    end
    local dd = t.dedupe
    if dd == nil then dd = dedupe end
    if dd and not core.seen(method or "GET", norm, body) then
      return false, "already fetched"
    end
    local ok, name = true, nil
    if spec.route then ok, name = pcall(route_of, t) else name = host_object(host) end
    next_id = next_id + 1
    -- the usual fields first, the rare ones only when set: a constructor
    -- naming all ten would size every entry's hash part for ten
    local e = { id = next_id - 1, url = norm, depth = depth, obj = ok and name or nil }
    if method then e.method = method end
    if headers then e.headers = headers end
    if body then e.body = body end
    if meta ~= nil then e.meta = meta end
    if not ok then e.bad, e.bad_kind = "route: " .. tostring(name), "script" end
    push(e)
    return true
  end

  -- ---- records ------------------------------------------------------------

  local function write_record(rec, entry, res)
    if type(rec) ~= "table" then
      error("a record must be a table, got " .. type(rec), 0)
    end
    if opts.with_meta then
      rec._url = res and res.url or entry.url
      rec._status = res and res.status or null
      rec._index = entry.id
      rec._depth = entry.depth
    end
    out_record(rec)
  end

  -- A handler's result: nil, one record, or a list of records.
  local function write_result(out, entry, res)
    if out == nil then return end
    if type(out) ~= "table" then
      error("a handler must return a table, a list of tables or nil, got " .. type(out), 0)
    end
    if out[1] ~= nil then
      for _, rec in ipairs(out) do write_record(rec, entry, res) end
    else
      write_record(out, entry, res)
    end
  end

  -- A request's meta as records carry it: itself when JSON can hold it,
  -- else a string saying why not (a function, NaN, a cycle), so that a
  -- meta never costs a request its record. Returns the value and its JSON
  -- (nil for no meta).
  local function record_meta(meta)
    if meta == nil then return nil, nil end
    local ok, json = pcall(encode, meta)
    if ok then return meta, json end
    local why = "meta not written: " .. tostring(json):gsub("^.-:%d+: ", "")
    return why, encode(why)
  end

  -- The record of a request that failed (or whose handler did): built
  -- with a meta that can be written whatever the request carried.
  local function error_record(entry, status, err, attempts)
    local rec = {
      index = entry.id, url = entry.url, status = status or null,
      attempts = attempts or 0, error = err, meta = (record_meta(entry.meta)),
    }
    out_record(rec)
  end

  -- ---- objects ----------------------------------------------------------------
  -- Every request belongs to one object, named by a path ("/host/example.com"
  -- is a child of "/host", a child of "/"). The C tree enforces the limits;
  -- here live each object's Lua face: state, storage, handlers, alarms.

  local Obj = {}
  Obj.__index = Obj

  -- the entry of records written outside a response (obj:emit in an alarm)
  local NO_ENTRY = { id = null, depth = null, url = null }

  local objects = {}    -- name -> obj
  local patterns = {}   -- { pattern, lua = Lua pattern, cfg }, most wildcards first
  local alarms, next_alarm = {}, 0

  local function pattern_to_lua(p)
    if p == "/" then return "^/$" end
    local parts = {}
    for seg in p:gmatch("/([^/]*)") do
      if seg == "*" then
        parts[#parts + 1] = "/[^/]+"
      else
        parts[#parts + 1] = "/" .. seg:gsub("[%^%$%(%)%%%.%[%]%*%+%-%?]", "%%%0")
      end
    end
    return "^" .. table.concat(parts) .. "$"
  end

  local function parent_name(name)
    if name == "/" then return nil end
    local p = name:match("^(.*)/[^/]*$")
    if p == "" then p = "/" end
    return p
  end

  -- Storage values keep their Lua type: a tag byte, then the payload.
  local function pack(v)
    local t = type(v)
    if t == "string" then return "s" .. v end
    if t == "number" then return "n" .. string.format("%.17g", v) end
    if t == "boolean" then return v and "b1" or "b0" end
    if t == "table" then return "t" .. encode(v) end
    error("storage values are strings, numbers, booleans or tables of them, got " .. t, 3)
  end

  local function unpack_value(b)
    if b == nil then return nil end
    local tag, rest = b:sub(1, 1), b:sub(2)
    if tag == "s" then return rest end
    if tag == "n" then return tonumber(rest) end
    if tag == "b" then return rest == "1" end
    if tag == "t" then return cjson.decode(rest) end
    return nil
  end

  -- obj.storage: a table of methods over the object's storage handle
  -- (core.storage, a userdata that names the object on the C side). The
  -- handle is kept here, not in the table: a script cannot point one
  -- object's storage at another's, through the metatable or by editing a
  -- field.
  local Storage = {}
  Storage.__index = Storage
  Storage.__metatable = "storage"
  local handles = setmetatable({}, { __mode = "k" }) -- storage table -> handle

  local function handle(st)
    local h = handles[st]
    if not h then error("storage methods are called as obj.storage:method(...)", 3) end
    return h
  end

  local function check_key(k)
    if type(k) ~= "string" then error("storage keys are strings, got " .. type(k), 3) end
  end

  function Storage:get(k) local h = handle(self); check_key(k); return unpack_value(core.store_get(h, k)) end
  function Storage:put(k, v) local h = handle(self); check_key(k); core.store_put(h, k, pack(v)) end
  function Storage:delete(k) local h = handle(self); check_key(k); core.store_delete(h, k) end
  function Storage:list(o)
    local h = handle(self)
    o = o or {}
    local rows = core.store_list(h, o.prefix, o.limit or 0)
    local out = {}
    for i = 1, #rows, 2 do out[#out + 1] = { key = rows[i], value = unpack_value(rows[i + 1]) } end
    return out
  end
  -- SQL on the object's own tables: write a table name as {name}.
  function Storage:sql(query, ...)
    local h = handle(self)
    if type(query) ~= "string" then error("sql(query, ...): query must be a string", 2) end
    local rows, changes = core.store_sql(h, query, ...)
    if rows == nil then error("sql: " .. tostring(changes), 2) end
    return rows, changes
  end

  local function new_storage(name)
    local st = setmetatable({}, Storage)
    handles[st] = core.storage(name)
    return st
  end

  local function get_obj(name)
    local o = objects[name]
    if o then return o end
    local pn = parent_name(name)
    local parent = pn and get_obj(pn) or nil
    local h = parent and { on_response = parent._h.on_response, on_error = parent._h.on_error }
              or { on_response = spec.on_response, on_error = spec.on_error }
    for _, pt in ipairs(patterns) do
      if name:match(pt.lua) then
        if pt.cfg.on_response then h.on_response = pt.cfg.on_response end
        if pt.cfg.on_error then h.on_error = pt.cfg.on_error end
      end
    end
    o = setmetatable({ name = name, parent = parent, state = {}, _h = h,
                       storage = new_storage(name) }, Obj)
    objects[name] = o
    return o
  end

  function Obj:fetch(t)
    if getmetatable(self) ~= Obj then error("use obj:fetch{...}, not obj.fetch", 2) end
    -- not a tail call: enqueue's errors name the script's line through as
    -- many frames as they do from start's emit
    local ok, why = enqueue(t, (self._depth or -1) + 1, self._base)
    return ok, why
  end

  function Obj:emit(rec)
    write_record(rec, self._entry or NO_ENTRY, nil)
  end

  -- Run fn(obj) after ms milliseconds (an alarm). Returns its id.
  function Obj:after(ms, fn)
    if type(ms) ~= "number" or ms < 0 then error("obj:after(ms, fn): ms must be a number >= 0", 2) end
    if type(fn) ~= "function" then error("obj:after(ms, fn): fn must be a function", 2) end
    next_alarm = next_alarm + 1
    alarms[next_alarm] = { fn = fn, obj = self }
    ;(opts.after or core.after)(next_alarm, ms)
    return next_alarm
  end

  -- Change this object's limits live: rps, window, concurrency, retries.
  function Obj:set_limits(t)
    if type(t) ~= "table" then error("obj:set_limits{...} takes a table", 2) end
    local ok, err = (opts.set_limits or core.set_limits)(self.name, t.rps, t.window, t.concurrency, t.retries)
    if not ok then error("set_limits: " .. tostring(err), 2) end
    return true
  end

  -- Handlers run in coroutines, one at a time per object: a handler that
  -- waits (ft.get) yields, and the object's next handler waits its turn,
  -- so an object's handlers never run concurrently, as with a Durable
  -- Object. While one is suspended the run is held open.
  --
  -- The coroutines are workers, kept in a pool and reused: a job is a
  -- function and two arguments (no closure per response: LuaJIT does not
  -- compile closure creation, and a coroutine per response cost more than
  -- the handler). A worker runs its job, then yields IDLE for the next.
  local function hold(d) (opts.hold or core.hold)(d) end

  local IDLE = {}
  local pool = {}           -- idle workers
  local worker_obj = {}     -- busy worker -> its object
  local worker_held = {}    -- busy worker -> true while it holds the run open
  local yield = coroutine.yield

  local function worker_main(fn, a, b)
    while true do
      fn(a, b) -- never raises: jobs catch their own errors
      fn, a, b = yield(IDLE)
    end
  end

  local WAIT = sched.WAIT
  local stray_yield -- (co, o): the job o runs yielded outside fetchtree's calls

  -- A worker came back from a resume: its job ended (true), or it waits
  -- inside a handler in one of fetchtree's calls (false) and its step
  -- resumes it later. A handler that yielded anything else (a bare
  -- coroutine.yield()) would wait for ever: its job fails as a script
  -- error and the worker is dropped.
  local function settle(co, ok, r)
    if ok and r ~= IDLE then
      if r == WAIT then
        if not worker_held[co] then
          worker_held[co] = true
          hold(1)
        end
        return false
      end
      stray_yield(co, worker_obj[co])
    elseif ok then
      pool[#pool + 1] = co
    else
      io.stderr:write("fetchtree: ", tostring(r), "\n") -- a bug of ours
    end
    local o = worker_obj[co]
    worker_obj[co] = nil
    if worker_held[co] then
      worker_held[co] = nil
      hold(-1)
    end
    o._busy = false
    o._jfn, o._ja, o._jb = nil, nil, nil
    return true
  end

  local drain
  local function new_worker()
    local co = coroutine.create(worker_main)
    -- how a completion resumes a handler waiting in this worker (sched)
    sched.managed[co] = function(...)
      local o = worker_obj[co]
      if settle(co, coroutine.resume(co, ...)) then drain(o) end
    end
    sched.kind[co] = "handler"
    return co
  end

  local function start_job(o, fn, a, b)
    local n = #pool
    local co = pool[n]
    if co then pool[n] = nil else co = new_worker() end
    worker_obj[co] = o
    o._busy = true
    o._jfn, o._ja, o._jb = fn, a, b -- for stray_yield
    return settle(co, coroutine.resume(co, fn, a, b))
  end

  -- Run o's queued jobs (three slots each from o._qh) until one waits.
  drain = function(o)
    if o._draining then return end
    o._draining = true
    local q = o._q
    while not o._busy and q and o._qh <= o._qt do
      local i = o._qh
      local fn, a, b = q[i], q[i + 1], q[i + 2]
      q[i], q[i + 1], q[i + 2] = nil, nil, nil
      o._qh = i + 3
      start_job(o, fn, a, b)
    end
    o._draining = false
  end

  -- Run fn(a, b) as o's next job: now if o is free, else in turn.
  local function run_in(o, fn, a, b)
    if not o._busy and not (o._q and o._qh <= o._qt) then
      start_job(o, fn, a, b)
      return
    end
    local q = o._q
    if not q or o._qh > o._qt then
      q = q or {}
      o._q, o._qh, o._qt = q, 1, 0
    end
    local t = o._qt
    q[t + 1], q[t + 2], q[t + 3] = fn, a, b
    o._qt = t + 3
    drain(o)
  end

  local function obj_for(entry, base)
    local o = get_obj(entry.obj or "/")
    o._depth = entry.depth
    o._entry = entry
    o._base = base or entry.url
    return o
  end

  -- Which object a request belongs to when the spec has route(req) (else
  -- the host's, host_object).
  route_of = function(t)
    local name = spec.route(t)
    if type(name) ~= "string" or not (name == "/" or name:match("^/[^/]") and not name:find("//", 1, true)
                                      and name:sub(-1) ~= "/") then
      error("route() must return an object name such as /host/example.com, got " .. tostring(name), 0)
    end
    return name
  end

  -- ---- robots.txt (fetchtree.robots) ----------------------------------------
  -- With robots = true in the spec, or in the settings of an object
  -- pattern, a request of such an object starts only once its host's
  -- robots.txt is known, and only where that allows it (next, below); the
  -- engine checks its redirects too. The rest is in fetchtree/robots.lua.
  local robots          -- the instance, or nil: nothing obeys robots.txt
  local robots_of = {}  -- object name -> whether its requests obey it

  -- The nearest object pattern (of the name, else of an ancestor) that
  -- says robots decides; else the spec's robots.
  local function obeys_robots(name)
    local v = robots_of[name]
    if v ~= nil then return v end
    v = spec.robots and true or false
    local n = name
    while n do
      local found
      for _, pt in ipairs(patterns) do -- most specific last
        if pt.cfg.robots ~= nil and n:match(pt.lua) then found = pt.cfg.robots and true or false end
      end
      if found ~= nil then v = found; break end
      n = parent_name(n)
    end
    robots_of[name] = v
    return v
  end

  -- Checks spec s's robots (and its object patterns'), and makes the
  -- robots instance when any of them obeys robots.txt.
  local function setup_robots(s, path)
    if s.robots ~= nil and type(s.robots) ~= "boolean" and type(s.robots) ~= "table" then
      error(path .. ": spec field 'robots' must be a boolean or a table, got " .. type(s.robots), 0)
    end
    local any = s.robots and true or false
    for _, pt in ipairs(patterns) do
      local r = pt.cfg.robots
      if r ~= nil and type(r) ~= "boolean" then
        error(path .. ": objects['" .. pt.pattern .. "'].robots must be a boolean", 0)
      end
      any = any or r == true
    end
    if not any then return end
    local ro = type(s.robots) == "table" and s.robots or {}
    if ro.agent ~= nil and type(ro.agent) ~= "string" or ro.recheck ~= nil and type(ro.recheck) ~= "number" then
      error(path .. ": spec field 'robots' is true or { agent = string, recheck = seconds }", 0)
    end
    robots = robots_mod.new {
      agent = ro.agent, recheck = ro.recheck, host_object = host_object,
      storage = function(name) return get_obj(name).storage end,
      -- Crawl-delay: one request per delay, unless an object pattern of
      -- the spec sets this object's rate
      set_delay = function(name, secs)
        for _, pt in ipairs(patterns) do
          if pt.cfg.rps and name:match(pt.lua) then return end
        end
        ;(opts.set_limits or core.set_limits)(name, 1, secs * 1000, nil, nil)
      end,
      requeue = function(e) q_tail = q_tail + 1; queue[q_tail] = e end,
    }
  end

  M.Res = Res

  -- ---- what C calls -------------------------------------------------------

  -- Load the script at path with the script arguments args (a list) and
  -- command-line options o. Returns the spec's settings for C, or raises
  -- "file:line: message".
  function M.load(path, args, o)
    opts = o or {}
    local chunk, err = loadfile(path)
    if not chunk then error(err, 0) end
    local a = { [0] = path }
    for i, v in ipairs(args) do a[i] = v end
    _G.arg = a
    -- the script sees the whole API as ft (ft.get in a handler yields)
    _G.ft = require "fetchtree"
    local dir = path:match("^(.*)/[^/]*$")
    if dir then package.path = dir .. "/?.lua;" .. package.path end
    local ok, s = xpcall(chunk, traceback)
    if not ok then error(s, 0) end
    if type(s) ~= "table" then
      error(path .. ": a crawl script must return a table (the crawl spec), got " .. type(s), 0)
    end
    return M.load_spec(s, path, o)
  end

  -- Take a spec table (label names it in messages). Returns the settings
  -- for C, as load does.
  function M.load_spec(s, path, o)
    opts = o or opts
    -- every field, its objects' too, against the one settings table (C)
    local ok, why = core.check_settings("spec", s, path)
    if not ok then error(why, 0) end
    if not s.start then error(path .. ": the crawl spec needs a start function", 0) end
    spec = s
    if s.max_depth then max_depth = s.max_depth end
    if s.dedupe == false then dedupe = false end
    if s.allow_hosts then
      allow_hosts = {}
      for _, h in ipairs(s.allow_hosts) do allow_hosts[tostring(h):lower()] = true end
    end
    local any_response, any_error = s.on_response ~= nil, s.on_error ~= nil
    if s.objects then
      for pattern, cfg in pairs(s.objects) do
        if type(pattern) ~= "string" or not (pattern == "/" or pattern:match("^/[^/]")) or type(cfg) ~= "table" then
          error(path .. ": objects wants { [\"/pattern/*\"] = { rps = ..., ... } }", 0)
        end
        patterns[#patterns + 1] = { pattern = pattern, lua = pattern_to_lua(pattern), cfg = cfg }
        any_response = any_response or cfg.on_response ~= nil
        any_error = any_error or cfg.on_error ~= nil
      end
      -- a stable order, most wildcards first: get_obj lets the last pattern
      -- that matches win, so the most specific one does
      table.sort(patterns, function(a, b)
        local wa, wb = select(2, a.pattern:gsub("%*", "")), select(2, b.pattern:gsub("%*", ""))
        if wa ~= wb then return wa > wb end
        return a.pattern < b.pattern
      end)
    end
    setup_robots(s, path)
    -- Who writes records, decided here alone (C reads has_on_response and
    -- has_on_error, below): C (fetchtree run) writes a success's record
    -- when no object has on_response, a failure's when none has on_error
    -- either; every other outcome comes here, its entry kept for it. With
    -- robots.txt every outcome comes here (the crawl fetches robots.txt
    -- itself and writes the records of refused requests); ft.run
    -- (opts.keep_entries) has no C writer.
    local lua_responses = any_response or robots ~= nil
    local lua_failures = lua_responses or any_error
    c_writes_default = not (lua_responses or opts.keep_entries)
    keep_entries = lua_failures or opts.keep_entries or false
    start_co = coroutine.create(function()
      s.start(function(t)
        start_pos = start_pos + 1
        if start_pos <= skip_start then return end -- resumed: taken before
        -- yield when next's caller has what it asked for (a durable run:
        -- every time, so a checkpoint never skips queued requests)
        if enqueue(t, 0) and (journal or q_tail - q_head + 1 >= want) then
          coroutine.yield()
        end
      end)
    end)
    -- the lists as C reads them, "429,503" (check_settings took them: a
    -- list of statuses or names, or that text already)
    local function joined(v) return type(v) == "table" and table.concat(v, ",") or v end
    local retry_on, sensitive = joined(s.retry_on), joined(s.sensitive_headers)
    return {
      sensitive_headers = sensitive,
      rps = s.rps, window = s.window, concurrency = s.concurrency, retries = s.retries,
      timeout = s.timeout, connect_timeout = s.connect_timeout,
      max_redirects = s.max_redirects, max_body = s.max_body,
      host_connections = s.host_connections, backoff_base = s.backoff_base,
      backoff_cap = s.backoff_cap, max_retry_after = s.max_retry_after,
      user_agent = s.user_agent, retry_on = retry_on, compressed = s.compressed,
      has_on_response = lua_responses, has_on_error = lua_failures, state = s.state,
      robots = robots ~= nil,
    }
  end

  -- A durable run resumes: skip the emits start made before, number new
  -- requests after the old ones.
  function M.resume(skip, nid)
    journal = true
    skip_start = skip or 0
    if nid and nid > next_id then next_id = nid end
  end

  -- What a checkpoint stores with the output offset. Until start runs
  -- again past the emits a resumed run skips, start_pos lags behind them:
  -- the position saved is never less than the one this run resumed from.
  function M.checkpoint()
    return math.max(start_pos, skip_start), next_id
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

  -- The error of a handler that raised err (with its traceback): kind
  -- "script", the first line as the message.
  local function script_error(err)
    -- a handler may raise any value (error{...}): the record holds strings
    if type(err) ~= "string" then
      local ok, str = pcall(tostring, err)
      err = ok and type(str) == "string" and str or "(an error value without a message)"
    end
    return { kind = "script", message = err:match("^[^\n]*"), traceback = err }
  end

  -- The record of a job whose handler raised err (or yielded outside
  -- fetchtree's calls): for an alarm (no entry), one naming its object o;
  -- else the error record of the request entry, whose outcome (response
  -- or error) gives status and attempts.
  local function handler_failed(o, entry, outcome, err)
    if not entry then return out_record({ object = o.name, error = script_error(err) }) end
    error_record(entry, outcome.status, script_error(err), outcome.attempts)
  end

  local function alarm_body(o, fn)
    write_result(fn(o), NO_ENTRY, nil)
  end

  -- jobs (run_in): an alarm, a response, a failure
  local function alarm_job(o, fn)
    o._depth, o._entry, o._base = -1, nil, nil
    local ok, err = xpcall(alarm_body, traceback, o, fn)
    if not ok then handler_failed(o, nil, nil, err) end
  end

  -- An alarm set with obj:after has fired.
  function M.alarm(id)
    local a = alarms[id]
    alarms[id] = nil
    if not a then return end
    run_in(a.obj, alarm_job, a.obj, a.fn)
  end

  -- A frontier row (id, blob) back as the request entry push stored; nil
  -- for a row that is not one (the file was edited or damaged): that row
  -- gets an error record and a warning, leaves the frontier, and the rest
  -- of the frontier resumes.
  local function frontier_entry(id, blob)
    local ok, e = pcall(decode, blob)
    local why
    if not ok then
      why = "not JSON (" .. tostring(e):match("^[^\n]*") .. ")"
    elseif type(e) ~= "table" then
      why = "not a JSON object"
    else
      for k, v in pairs(e) do if v == null then e[k] = nil end end
      if e.id ~= id then
        why = "its id is " .. tostring(e.id)
      elseif type(e.url) ~= "string" then
        why = "it has no url"
      elseif type(e.depth) ~= "number" then
        why = "it has no depth"
      elseif e.obj ~= nil and type(e.obj) ~= "string" then
        why = "its object is not a name"
      elseif e.method ~= nil and type(e.method) ~= "string" then
        why = "its method is not a string"
      elseif e.body ~= nil and type(e.body) ~= "string" then
        why = "its body is not a string"
      elseif e.headers ~= nil and type(e.headers) ~= "table" then
        why = "its headers are not a list"
      else
        for _, h in pairs(e.headers or {}) do
          if type(h) ~= "string" then why = "a header is not a string" end
        end
        if not why then return e end
      end
    end
    local msg = string.format("state: frontier row %d is not a request (%s): skipped", id, why)
    io.stderr:write("fetchtree run: warning: ", msg, "\n")
    error_record({ id = id, url = type(e) == "table" and type(e.url) == "string" and e.url or null },
                 nil, { kind = "internal", message = msg })
    core.journal_done(id)
    return nil
  end

  -- The next request to start: id, url, method, headers, body, meta_json,
  -- object name, and the robots.txt rules (a userdata for the engine's
  -- checks of redirects) when it obeys robots.txt.
  -- Or nil and "wait" (none now; follow-ups may come), "done" (start raised
  -- earlier: nothing more), or "error" with the message when start raised.
  -- n: how many the caller will take now; start runs ahead to that many
  -- (one yield per batch: a yield ends LuaJIT's trace of start's loop).
  function M.next(n)
    want = n or 1
    while true do
      if start_error then return nil, "done" end
      -- robots.txt fetches first: requests are waiting for them
      local rf = robots and robots.take_fetch()
      if rf then return rf.id, rf.url, nil, nil, nil, nil, rf.obj, nil end
      if q_head > q_tail and journal then
        local rows = core.journal_take(256)
        for i = 1, #rows, 2 do
          local e = frontier_entry(rows[i], rows[i + 1])
          if e then
            q_tail = q_tail + 1
            queue[q_tail] = e
          end
        end
      end
      if q_head <= q_tail then
        local e = queue[q_head]
        queue[q_head] = nil
        q_head = q_head + 1
        -- emptied: back to index 1, so the queue stays a small array (ever
        -- higher indices would move it to the hash part, rehashed often)
        if q_head > q_tail then q_head, q_tail = 1, 0 end
        local gate, how -- robots.txt: "go" (how: its rules), "deny" or "wait"
        if robots and not e.bad and obeys_robots(e.obj or "/") then
          gate, how = robots.gate(e)
          if gate == "deny" then e.bad, e.bad_kind = how, "robots" end
        end
        if gate == "wait" then
          -- held back: robots.txt of its host comes first (requeue, above)
        elseif e.bad then
          local kind = e.bad_kind or "url"
          if keep_entries then
            entries[e.id] = e
            M.failure(e.id, { kind = kind, message = e.bad, attempts = 0 })
          else
            error_record(e, nil, { kind = kind, message = e.bad })
            if journal then core.journal_done(e.id) end
          end
        else
          if keep_entries then entries[e.id] = e end
          local meta_json
          -- for the record C writes (with on_error alone, of a success)
          if c_writes_default and e.meta ~= nil then meta_json = select(2, record_meta(e.meta)) end
          return e.id, e.url, e.method, e.headers, e.body, meta_json, e.obj, gate == "go" and how or nil
        end
      elseif start_co then
        local ok, err = coroutine.resume(start_co)
        if not ok then
          start_error = traceback(start_co, err)
          start_co = nil
          return nil, "error", start_error
        end
        if coroutine.status(start_co) == "dead" then start_co = nil end
      else
        -- start has ended, but responses still in flight may add follow-ups:
        -- the engine ends the run when nothing is in flight and this says wait
        return nil, "wait"
      end
    end
  end

  local function response_body(entry, res)
    local o = obj_for(entry, res.url)
    local h = o._h.on_response
    if not h then -- this object has no handler: the default record
      if opts.out then -- ft.run: a table for its out function
        return out_record({
          index = entry.id, url = entry.url, final_url = res.url ~= entry.url and res.url or nil,
          status = res.status, headers = res.headers, body = res.body,
          attempts = res.attempts, elapsed_ms = res.elapsed_ms, error = null,
          meta = (record_meta(entry.meta)),
        })
      end
      -- fetchtree run: the record C writes when no object has a handler
      -- (its field order, --no-body, --no-headers, body_base64)
      return core.write_default(entry.id, entry.url, select(2, record_meta(entry.meta)), res.url,
                                res.status, rawget(res, "_h") or "", res.body, res.attempts,
                                res.elapsed_ms)
    end
    write_result(h(res, o), entry, res)
  end

  local function response_job(entry, res)
    local ok, err = xpcall(response_body, traceback, entry, res)
    if not ok then handler_failed(nil, entry, res, err) end
    -- the records are out: now the request is done (durable runs)
    if journal then core.journal_done(entry.id) end
  end

  -- The job o runs in worker co yielded outside fetchtree's calls: it
  -- gets the record a handler that raised would get, and its request is
  -- done. Protected: a record that cannot be written is reported, and the
  -- run goes on.
  stray_yield = function(co, o)
    local fn, a, b = o._jfn, o._ja, o._jb
    local err = traceback(co, "coroutine.yield() in a handler: a handler may only " ..
      "wait in fetchtree's calls (ft.get, ft.request, ft.fetch_all, ft.wait)")
    local ok, e = pcall(function()
      if fn == alarm_job then
        handler_failed(o, nil, nil, err)
      else -- response_job(entry, res) or failure_job(entry, err)
        handler_failed(o, a, b, err)
        if journal then core.journal_done(a.id) end
      end
    end)
    if not ok then io.stderr:write("fetchtree: ", tostring(e), "\n") end
  end

  -- A final response (any status) for request id: run on_response.
  function M.response(id, res)
    if robots and robots.owns(id) then return robots.response(id, res.status, res.body) end
    local entry = entries[id]
    entries[id] = nil
    setmetatable(res, Res)
    res.request = entry
    run_in(get_obj(entry.obj or "/"), response_job, entry, res)
  end

  -- The same from C (fetchtree run), the response's fields as arguments.
  function M.respond(id, status, url, body, raw_headers, attempts, elapsed_ms)
    return M.response(id, { status = status, url = url, body = body, _h = raw_headers,
                            attempts = attempts, elapsed_ms = elapsed_ms })
  end

  local function failure_body(h, err, entry, o)
    write_result(h(err, entry, o), entry, nil)
  end

  local function failure_job(entry, err)
    local o = obj_for(entry)
    local h = o._h.on_error
    if not h then
      error_record(entry, err.status,
        { kind = err.kind, message = err.message, cause = err.cause }, err.attempts)
    else
      local ok, e = xpcall(failure_body, traceback, h, err, entry, o)
      if not ok then handler_failed(o, entry, err, e) end
    end
    if journal then core.journal_done(entry.id) end
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
    run_in(get_obj(entry.obj or "/"), failure_job, entry, err)
  end

  return M
end

local default = new_instance()
default.new = new_instance
default.Res = Res
return default
