-- fetchtree.frontier: the requests of a crawl waiting to start, and where
-- they come from: spec.start, run as a lazy stream (a coroutine that
-- yields as its emits fill a batch), and follow-ups (obj:fetch). Each new
-- request passes the filters (max_depth, allow_hosts, de-duplication) and
-- is routed to its object, then waits in memory or, in a durable run
-- (--state), in the state database's journal.
--
-- A request is an entry: { id, url (normalised), depth, obj (object name),
-- method?, headers?, body?, meta? }. One that cannot start also has bad
-- (the message) and still gets its one record: a URL that does not
-- resolve has no host to route by, and belongs to "/" (whose on_error
-- sees it); a request route failed for has bad_kind "script" (and
-- traceback when route raised) and no object at all.
local cjson = require "cjson"
local request = require "fetchtree.request"
local object = require "fetchtree.object"
local trace = require "fetchtree.trace"

local M = {}

local null = cjson.null
local decode = cjson.decode

-- How a value route returned reads in a message.
local function describe(v)
  if type(v) == "string" then return (string.format("%q", v):gsub("\\\n", "\\n")) end
  if v == nil or type(v) == "number" or type(v) == "boolean" then return tostring(v) end
  return "a " .. type(v)
end
M.describe = describe

-- The object name route(t) gives request t: the name, or nil and the
-- error of the request ({ kind = "script", message, traceback? }) when
-- route raised or returned something that is not an object name.
function M.route(route, t, traceback)
  local ok, name = xpcall(route, traceback or trace.handler, t)
  if not ok then
    local msg = type(name) == "string" and name or describe(name)
    return nil, { kind = "script", message = "route raised: " .. msg:match("^[^\n]*"), traceback = msg }
  end
  if not object.valid_name(name) then
    return nil, { kind = "script", message = "route returned " .. describe(name) ..
                  ", not an object name such as /host/example.com" }
  end
  return name
end

-- o:
--   core: { resolve, seen, encode, journal_add, journal_take, journal_done }
--         (fetchtree.core)
--   spec: { start, route?, max_depth?, dedupe?, allow_hosts? }
--   records: the crawl's record writer (fetchtree.records): the error
--         record of a journal row that is not a request
-- Returns the frontier F (see the functions below).
function M.new(o)
  local F = {}
  local core, spec, records = o.core, o.spec, o.records
  local encode, resolve, seen = core.encode, core.resolve, core.seen
  local check = request.check
  -- The fields a crawl's request table may have (the settings table's
  -- place "emit"): one of any other name is a mistake in the script, said
  -- with the nearest known name by the same check every entry point uses.
  local known_fields = {}
  for _, st in ipairs(core.settings()) do
    if st.places.emit then known_fields[st.name] = true end
  end
  local check_settings = core.check_settings
  local function check_fields(t)
    for k in next, t do
      if not known_fields[k] then
        local ok, why = check_settings("emit", t, "request")
        error(ok and ("request: field '" .. tostring(k) .. "': unknown field") or why, 4)
      end
    end
  end
  local route = spec.route
  local route_request = M.route
  local traceback = trace.handler -- the user's frames only

  local max_depth = spec.max_depth or math.huge
  local dedupe = spec.dedupe ~= false
  local allow_hosts -- set of lower-case host names, or nil: any host
  if spec.allow_hosts then
    allow_hosts = {}
    for _, h in ipairs(spec.allow_hosts) do allow_hosts[tostring(h):lower()] = true end
  end

  local queue, q_head, q_tail = {}, 1, 0 -- in memory: queue[q_head..q_tail]
  local next_id = 0
  local durable = false  -- the pending requests live in the journal
  local skip_start = 0   -- on resume: emits of start taken before
  local start_pos = 0    -- emits of start so far
  local batch = 1        -- requests the caller of take will take now
  local start_co         -- the start stream, or nil once it has ended
  local start_error      -- start's error (with traceback) once it raised

  -- The default object of a host, "/host/<host>", the name made once per host.
  local host_objects = {}
  local function host_object(host)
    local name = host_objects[host]
    if not name then
      name = "/host/" .. host
      host_objects[host] = name
    end
    return name
  end
  F.host_object = host_object

  -- A new request joins the frontier: in memory, or in a durable run the
  -- journal (from where take gets it back, a batch at a time, so millions
  -- of pending requests cost no memory).
  local function push(e)
    if durable then
      local ok, blob = pcall(encode, e) -- exact numbers, as records
      -- level 4: push, enqueue, emit or obj:fetch, then the script's line
      if not ok then error("with --state, meta must be JSON: " .. tostring(blob), 4) end
      core.journal_add(e.id, blob)
    else
      q_tail = q_tail + 1
      queue[q_tail] = e
    end
  end

  -- Queue request t (a table, or a URL string) at depth; a relative URL is
  -- resolved against base. Returns true (queued, perhaps as a request that
  -- cannot start: it gets an error record), or false and why it was
  -- dropped. Raises (level 3: the script's line) for a bad request table.
  local function enqueue(t, depth, base)
    if type(t) == "string" then t = { url = t } end
    local url, method, headers, body, meta = check(t, true)
    if not url then error(method, 3) end -- misuse: a bad request table
    check_fields(t)
    if depth > max_depth then return false, "deeper than max_depth" end
    local norm, host = resolve(url, base) -- or nil and the reason
    if not norm then
      -- still one record: an error for this request
      next_id = next_id + 1
      push({ id = next_id - 1, url = url, method = method, headers = headers,
             body = body, meta = meta, depth = depth, obj = "/", bad = host })
      return true
    end
    if allow_hosts and not allow_hosts[host] then
      return false, "host not allowed"
    end
    local dd = t.dedupe
    if dd == nil then dd = dedupe end
    if dd and not seen(method or "GET", norm, body) then
      return false, "already fetched"
    end
    local name, err
    if route then name, err = route_request(route, t, traceback) else name = host_object(host) end
    next_id = next_id + 1
    -- the usual fields first, the rare ones only when set: a constructor
    -- naming all ten would size every entry's hash part for ten
    local e = { id = next_id - 1, url = norm, depth = depth, obj = name }
    if method then e.method = method end
    if headers then e.headers = headers end
    if body then e.body = body end
    if meta ~= nil then e.meta = meta end
    if err then e.bad, e.bad_kind, e.traceback = err.message, err.kind, err.traceback end
    push(e)
    return true
  end
  F.enqueue = enqueue

  -- Back in front of nothing: a request that waited (robots.txt) may start.
  function F.requeue(e)
    q_tail = q_tail + 1
    queue[q_tail] = e
  end

  -- A journal row (id, blob) back as the entry push stored; nil for a row
  -- that is not one (the file was edited or damaged): that row gets an
  -- error record and a warning, leaves the journal, and the rest resumes.
  local function journal_entry(id, blob)
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
      elseif e.obj ~= nil and not object.valid_name(e.obj) then
        why = "its object is not a name"
      elseif e.obj == nil and e.bad == nil then
        why = "it has no object"
      elseif e.bad ~= nil and type(e.bad) ~= "string" then
        why = "its error is not a string"
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
    records.error({ id = id, url = type(e) == "table" and type(e.url) == "string" and e.url or null },
                  nil, { kind = "internal", message = msg })
    core.journal_done(id)
    return nil
  end

  start_co = coroutine.create(function()
    spec.start(function(t)
      start_pos = start_pos + 1
      if start_pos <= skip_start then return end -- resumed: taken before
      -- yield when take's caller has what it asked for (a durable run:
      -- every time, so a checkpoint never skips queued requests)
      if enqueue(t, 0) and (durable or q_tail - q_head + 1 >= batch) then
        coroutine.yield()
      end
    end)
  end)

  -- The next request entry (perhaps a bad one), or nil and "wait" (none
  -- now; follow-ups may come), "done" (start raised earlier: nothing
  -- more), or "error" and start's error (with its traceback) when start
  -- raised now. n: how many the caller will take now; start runs ahead to
  -- that many (one yield per batch: a yield ends LuaJIT's trace of
  -- start's loop).
  local function pop()
    local e = queue[q_head]
    queue[q_head] = nil
    q_head = q_head + 1
    -- emptied: back to index 1, so the queue stays a small array (ever
    -- higher indices would move it to the hash part, rehashed often)
    if q_head > q_tail then q_head, q_tail = 1, 0 end
    return e
  end

  function F.take(n)
    batch = n
    -- the usual case first, without the loop: a request is waiting
    if q_head <= q_tail and not start_error then return pop() end
    while true do
      if start_error then return nil, "done" end
      if q_head > q_tail and durable then
        local rows = core.journal_take(256)
        for i = 1, #rows, 2 do
          local e = journal_entry(rows[i], rows[i + 1])
          if e then
            q_tail = q_tail + 1
            queue[q_tail] = e
          end
        end
      end
      if q_head <= q_tail then
        return pop()
      elseif start_co then
        local ok, err = coroutine.resume(start_co)
        if not ok then
          start_error = trace.thread(start_co, err)
          start_co = nil
          return nil, "error", start_error
        end
        if coroutine.status(start_co) == "dead" then start_co = nil end
      else
        -- start has ended, but responses still in flight may add follow-ups
        return nil, "wait"
      end
    end
  end

  -- Whether start raised: no request starts from then on.
  function F.start_failed() return start_error ~= nil end

  -- Request id has its records out: in a durable run it leaves the journal.
  function F.done(id)
    if durable then core.journal_done(id) end
  end

  -- A durable run resumes: the frontier lives in the journal from now on;
  -- skip the emits start made before, number new requests after the old
  -- ones (ids below nid are taken).
  function F.resume(skip, nid)
    durable = true
    skip_start = skip or 0
    if nid and nid > next_id then next_id = nid end
  end

  -- What a checkpoint stores with the output offset: start's position and
  -- the next id. Until start runs again past the emits a resumed run
  -- skips, start_pos lags behind them: the position saved is never less
  -- than the one this run resumed from.
  function F.checkpoint()
    return math.max(start_pos, skip_start), next_id
  end

  return F
end

return M
