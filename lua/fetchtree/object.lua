-- fetchtree.object: the objects of a crawl as handlers see them (obj):
-- name, parent, state, storage, and the methods fetch, emit, after and
-- set_limits; with object names and the patterns of spec.objects.
--
-- Every request belongs to one object, named by a path ("/host/example.com"
-- is a child of "/host", a child of "/"). The C tree (core/tree.c) enforces
-- the limits; here lives each object's Lua face, made on first use.
--
-- Besides what scripts see, an obj holds _handlers ({ on_response,
-- on_error }), and while one of its jobs runs, the request it serves:
-- _entry, _depth and _base (what obj:fetch resolves against); the
-- workers keep its queue of jobs in it too (fetchtree.workers).
local M = {}

-- Whether name is an object name: "/", or "/a/b..." with no empty
-- segment, the rule of core/tree.c, and no NUL byte (C would read the
-- name cut short at it, another object).
function M.valid_name(name)
  if type(name) ~= "string" then return false end
  if name == "/" then return true end
  return name:byte(1) == 47 and name:byte(-1) ~= 47 and not name:find("//", 1, true)
         and not name:find("\0", 1, true)
end

-- The parent of a valid name; nil for "/".
function M.parent_name(name)
  if name == "/" then return nil end
  local p = name:match("^(.*)/[^/]*$")
  if p == "" then p = "/" end
  return p
end

-- An object pattern ("/host/*": "*" is one whole segment) as a Lua pattern.
function M.pattern_to_lua(p)
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

-- spec.objects ({ ["/pattern/*"] = settings }) as a list of
-- { pattern, lua = Lua pattern, cfg = settings }, in a stable order, most
-- wildcards first: where several match, the last one wins, so the most
-- specific one does. Raises "label: ..." for a bad pattern or entry.
function M.patterns(objects, label)
  local list = {}
  for pattern, cfg in pairs(objects or {}) do
    if type(pattern) ~= "string" or not (pattern == "/" or pattern:match("^/[^/]")) or type(cfg) ~= "table" then
      error(label .. ": objects wants { [\"/pattern/*\"] = { rps = ..., ... } }", 0)
    end
    list[#list + 1] = { pattern = pattern, lua = M.pattern_to_lua(pattern), cfg = cfg }
  end
  table.sort(list, function(a, b)
    local wa, wb = select(2, a.pattern:gsub("%*", "")), select(2, b.pattern:gsub("%*", ""))
    if wa ~= wb then return wa > wb end
    return a.pattern < b.pattern
  end)
  return list
end

-- The value of setting key for object name: from the most specific
-- pattern of name that sets it, else of its nearest ancestor's; nil when
-- none does.
function M.inherited(patterns, name, key)
  local n = name
  while n do
    local found
    for _, pt in ipairs(patterns) do -- most specific last
      if pt.cfg[key] ~= nil and n:match(pt.lua) then found = pt.cfg[key] end
    end
    if found ~= nil then return found end
    n = M.parent_name(n)
  end
  return nil
end

-- The objects of one crawl. o:
--   spec: its on_response and on_error, every object's unless a pattern
--         (or an ancestor) sets its own
--   patterns: M.patterns(spec.objects)
--   storage: function(name) -> obj.storage (fetchtree.storage)
--   enqueue: function(request, depth, base) -> true | false, why (the frontier's)
--   records: the crawl's record writer (fetchtree.records)
--   after: function(id, ms): ask for alarm id in ms (core.after)
--   set_limits: function(name, limits) -> true | nil, err (core.set_limits:
--               limits checked by the settings table, err "set_limits: ...")
-- Returns { get = get(name) -> obj, for_entry = for_entry(entry, base) ->
-- obj, take_alarm = take_alarm(id) -> obj, fn | nil, Obj = the metatable }.
function M.new(o)
  local spec, patterns, open_storage = o.spec, o.patterns, o.storage
  local enqueue, records, after, set_limits = o.enqueue, o.records, o.after, o.set_limits
  local write_record, NO_ENTRY = records.write, records.NO_ENTRY
  local parent_name = M.parent_name

  local Obj = {}
  Obj.__index = Obj
  local objects = {}              -- name -> obj
  local alarms, next_alarm = {}, 0 -- id -> { fn, obj }

  -- The object of a valid name, made (with its ancestors) on first use.
  -- Its handlers are its parent's, or the spec's, unless a pattern of its
  -- own sets them. (A name is checked where it comes in: route, a journal row.)
  local function get(name)
    local obj = objects[name]
    if obj then return obj end
    local pn = parent_name(name)
    local parent = pn and get(pn) or nil
    local h = parent and { on_response = parent._handlers.on_response, on_error = parent._handlers.on_error }
              or { on_response = spec.on_response, on_error = spec.on_error }
    for _, pt in ipairs(patterns) do
      if name:match(pt.lua) then
        if pt.cfg.on_response then h.on_response = pt.cfg.on_response end
        if pt.cfg.on_error then h.on_error = pt.cfg.on_error end
      end
    end
    obj = setmetatable({ name = name, parent = parent, state = {}, _handlers = h,
                         storage = open_storage(name) }, Obj)
    objects[name] = obj
    return obj
  end

  -- The object of request entry, set to run its handler: obj:fetch makes
  -- follow-ups one deeper, relative URLs resolved against base (the final
  -- URL of a response), else the request's.
  local function for_entry(entry, base)
    local obj = get(entry.obj)
    obj._depth = entry.depth
    obj._entry = entry
    obj._base = base or entry.url
    return obj
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
    after(next_alarm, ms)
    return next_alarm
  end

  -- Change this object's limits live: rps, window, concurrency, retries
  -- (false removes one); an unknown field or a bad value raises.
  function Obj:set_limits(t)
    if type(t) ~= "table" then error("obj:set_limits{...} takes a table", 2) end
    local ok, err = set_limits(self.name, t)
    if not ok then error(tostring(err), 2) end
    return true
  end

  -- Alarm id, once: its object and function; nil for one that fired.
  local function take_alarm(id)
    local a = alarms[id]
    alarms[id] = nil
    if not a then return nil end
    return a.obj, a.fn
  end

  return { get = get, for_entry = for_entry, take_alarm = take_alarm, Obj = Obj }
end

return M
