-- fetchtree.storage: an object's key-value storage as handlers see it
-- (obj.storage): get, put, delete, list and sql, over the handle C makes
-- for the object (core.storage), with values that keep their Lua type.
--
-- The handle is kept here, not in the table a script holds: a script
-- cannot point one object's storage at another's, through the metatable
-- or by editing a field.
local cjson = require "cjson"

local M = {}

-- A value as stored: a tag byte, then the payload. Raises (level 3: the
-- script's line calling put) for a type storage cannot keep.
function M.pack(v, encode)
  local t = type(v)
  if t == "string" then return "s" .. v end
  if t == "number" then return "n" .. string.format("%.17g", v) end
  if t == "boolean" then return v and "b1" or "b0" end
  if t == "table" then return "t" .. encode(v) end
  error("storage values are strings, numbers, booleans or tables of them, got " .. t, 3)
end

-- A stored value back (nil for none, or for a tag this does not know).
function M.unpack(b)
  if b == nil then return nil end
  local tag, rest = b:sub(1, 1), b:sub(2)
  if tag == "s" then return rest end
  if tag == "n" then return tonumber(rest) end
  if tag == "b" then return rest == "1" end
  if tag == "t" then return cjson.decode(rest) end
  return nil
end

-- core: { storage(name) -> handle, store_get, store_put, store_delete,
-- store_list, store_sql, encode } (fetchtree.core). Returns open(name),
-- which makes the storage table of object name.
function M.new(core)
  local pack, unpack_value = M.pack, M.unpack
  local encode = core.encode
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
  function Storage:put(k, v) local h = handle(self); check_key(k); core.store_put(h, k, pack(v, encode)) end
  function Storage:delete(k) local h = handle(self); check_key(k); core.store_delete(h, k) end

  -- { {key, value}, ... } in key order, from o.prefix, at most o.limit (0: all).
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

  return function(name)
    local st = setmetatable({}, Storage)
    handles[st] = core.storage(name)
    return st
  end
end

return M
