-- fetchtree.crawl: the Lua half of `fetchtree run`. It loads a crawl spec,
-- turns `start` into a lazy stream of requests (a coroutine that yields at
-- every emit), filters follow-ups (depth, hosts, de-duplication), and runs
-- the handlers, each under xpcall so an error fails one response only.
--
-- The C side (core/script.c) calls load, next, response and failure; it
-- gives us fetchtree.core for URLs, the seen-set, HTML and output.
local core = require "fetchtree.core"
local request = require "fetchtree.request"
local cjson = require "cjson"
local cjson_safe = require "cjson.safe"

local M = {}

local spec            -- the user's crawl spec
local opts = {}       -- from the command line: with_meta
local start_co        -- the start generator, or nil once it has ended
local start_error     -- set when start raised: no new requests from then on
local queue, q_head, q_tail = {}, 1, 0
local entries = {}    -- requests in flight, by id, while handlers need them
local keep_entries = false
local next_id = 0
local dedupe = true
local max_depth = math.huge
local allow_hosts     -- set of lower-case host names, or nil
local null = cjson.null

local traceback = debug.traceback

-- lua-cjson writes "/" as "\/"; valid, but noisy in every URL. Undoing it
-- is safe: cjson escapes every "/" and doubles every "\", so a "\/" in
-- its output is always an escaped slash.
local function encode(v)
  return (cjson.encode(v):gsub("\\/", "/"))
end

-- ---- requests -----------------------------------------------------------

-- Queue a request table at depth; a relative URL is resolved against base.
-- Returns true, or false and a reason.
local function enqueue(t, depth, base)
  if type(t) == "string" then t = { url = t } end
  local url, method, headers, body, meta = request.check(t, true)
  if not url then error(method, 3) end -- misuse: a bad request table
  if depth > max_depth then return false, "deeper than max_depth" end
  local norm, err = core.resolve(url, base)
  if not norm then
    -- still one record: an error for this request
    next_id = next_id + 1
    local e = { id = next_id - 1, url = url, method = method, headers = headers,
                body = body, meta = meta, depth = depth, bad = err }
    q_tail = q_tail + 1
    queue[q_tail] = e
    return true
  end
  if allow_hosts and not allow_hosts[core.host(norm)] then
    return false, "host not allowed"
  end
  local dd = t.dedupe
  if dd == nil then dd = dedupe end
  if dd and not core.seen(method or "GET", norm, body) then
    return false, "already fetched"
  end
  next_id = next_id + 1
  q_tail = q_tail + 1
  queue[q_tail] = { id = next_id - 1, url = norm, method = method, headers = headers,
                    body = body, meta = meta, depth = depth }
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
  core.write(encode(rec) .. "\n")
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

local function error_record(entry, status, err, attempts)
  local rec = {
    index = entry.id, url = entry.url, status = status or null,
    attempts = attempts or 0, error = err, meta = entry.meta,
  }
  core.write(encode(rec) .. "\n")
end

-- ---- the object handlers run in -------------------------------------------

local Obj = {}
Obj.__index = Obj

function Obj:fetch(t)
  if getmetatable(self) ~= Obj then error("use obj:fetch{...}, not obj.fetch", 2) end
  return enqueue(t, (self._depth or 0) + 1, self._base)
end

function Obj:emit(rec)
  write_record(rec, self._entry or { id = null, depth = null, url = null }, nil)
end

local root = setmetatable({ name = "/", state = {}, parent = nil }, Obj)

local function obj_for(entry, base)
  root._depth = entry.depth
  root._entry = entry
  root._base = base or entry.url
  return root
end

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

function Res:json()
  local v, err = cjson_safe.decode(self.body)
  if v == nil and err then error("res:json(): " .. err, 2) end
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

M.Res = Res

-- ---- what C calls -------------------------------------------------------

local fields = {
  rps = "number", window = "number", concurrency = "number", retries = "number",
  timeout = "number", connect_timeout = "number", max_redirects = "number",
  max_body = "number", host_connections = "number", backoff_base = "number",
  backoff_cap = "number", max_retry_after = "number", max_depth = "number",
  user_agent = "string", retry_on = "table", allow_hosts = "table",
  dedupe = "boolean", start = "function", on_response = "function",
  on_error = "function",
}

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
  local dir = path:match("^(.*)/[^/]*$")
  if dir then package.path = dir .. "/?.lua;" .. package.path end
  local ok, s = xpcall(chunk, traceback)
  if not ok then error(s, 0) end
  if type(s) ~= "table" then
    error(path .. ": a crawl script must return a table (the crawl spec), got " .. type(s), 0)
  end
  for k, v in pairs(s) do
    local want = fields[k]
    if want and type(v) ~= want then
      error(string.format("%s: spec field '%s' must be a %s, got %s", path, k, want, type(v)), 0)
    end
  end
  if not s.start then error(path .. ": the crawl spec needs a start function", 0) end
  spec = s
  if s.max_depth then max_depth = s.max_depth end
  if s.dedupe == false then dedupe = false end
  if s.allow_hosts then
    allow_hosts = {}
    for _, h in ipairs(s.allow_hosts) do allow_hosts[tostring(h):lower()] = true end
  end
  keep_entries = s.on_response ~= nil or s.on_error ~= nil
  start_co = coroutine.create(function()
    s.start(function(t)
      if enqueue(t, 0) then coroutine.yield() end
    end)
  end)
  local retry_on
  if s.retry_on then
    local l = {}
    for _, v in ipairs(s.retry_on) do l[#l + 1] = tostring(v) end
    retry_on = table.concat(l, ",")
  end
  return {
    rps = s.rps, window = s.window, concurrency = s.concurrency, retries = s.retries,
    timeout = s.timeout, connect_timeout = s.connect_timeout,
    max_redirects = s.max_redirects, max_body = s.max_body,
    host_connections = s.host_connections, backoff_base = s.backoff_base,
    backoff_cap = s.backoff_cap, max_retry_after = s.max_retry_after,
    user_agent = s.user_agent, retry_on = retry_on,
    has_on_response = s.on_response ~= nil, has_on_error = s.on_error ~= nil,
  }
end

-- The next request to start: id, url, method, headers, body, meta_json.
-- Or nil and "wait" (none now; follow-ups may come), "done" (start raised
-- earlier: nothing more), or "error" with the message when start raised.
function M.next()
  while true do
    if start_error then return nil, "done" end
    if q_head <= q_tail then
      local e = queue[q_head]
      queue[q_head] = nil
      q_head = q_head + 1
      if e.bad then
        if keep_entries then
          entries[e.id] = e
          M.failure(e.id, { kind = "url", message = e.bad, attempts = 0 })
        else
          error_record(e, nil, { kind = "url", message = e.bad })
        end
      else
        if keep_entries then entries[e.id] = e end
        local meta_json
        if not keep_entries and e.meta ~= nil then meta_json = encode(e.meta) end
        return e.id, e.url, e.method, e.headers, e.body, meta_json
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

-- A final response (any status) for request id: run on_response.
function M.response(id, res)
  local entry = entries[id]
  entries[id] = nil
  setmetatable(res, Res)
  res.request = entry
  local ok, err = xpcall(function()
    write_result(spec.on_response(res, obj_for(entry, res.url)), entry, res)
  end, traceback)
  if not ok then
    local msg = type(err) == "string" and err:match("^[^\n]*") or tostring(err)
    error_record(entry, res.status, { kind = "script", message = msg, traceback = err }, res.attempts)
  end
end

-- A request that failed for good: run on_error, or write an error record.
function M.failure(id, err)
  local entry = entries[id]
  entries[id] = nil
  if not spec.on_error then
    return error_record(entry, err.status,
      { kind = err.kind, message = err.message, cause = err.cause }, err.attempts)
  end
  local ok, e = xpcall(function()
    write_result(spec.on_error(err, entry, obj_for(entry)), entry, nil)
  end, traceback)
  if not ok then
    local msg = type(e) == "string" and e:match("^[^\n]*") or tostring(e)
    error_record(entry, err.status, { kind = "script", message = msg, traceback = e }, err.attempts)
  end
end

return M
