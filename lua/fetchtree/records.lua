-- fetchtree.records: how a crawl's records go out: a handler's result, a
-- request's error record, the default record of a response no handler
-- took, each with its meta (and with_meta's fields) made writable.
--
-- Records are written by core.write_record (core/lua_record.c: the string and
-- number rules of fetch's records, not lua-cjson's), or handed to
-- opts.out when that is a function (ft.run).
local cjson = require "cjson"

local M = {}

local null = cjson.null

-- The entry of records written outside a response (obj:emit in an alarm).
M.NO_ENTRY = { id = null, depth = null, url = null }

-- The error of a handler (or route) that raised err, a string that may
-- carry a traceback: kind "script", the first line as the message.
function M.script_error(err)
  -- a handler may raise any value (error{...}): the record holds strings
  if type(err) ~= "string" then
    local ok, str = pcall(tostring, err)
    err = ok and type(str) == "string" and str or "(an error value without a message)"
  end
  return { kind = "script", message = err:match("^[^\n]*"), traceback = err }
end

-- core: { encode, write_record, write_default } (fetchtree.core);
-- opts: { out = function(record) or nil, with_meta = boolean }.
-- Returns the record writer of one crawl.
function M.new(core, opts)
  local R = {}
  local encode = core.encode
  local core_write_record, core_write_default = core.write_record, core.write_default
  local out_fn, with_meta = opts.out, opts.with_meta
  local NO_ENTRY = M.NO_ENTRY

  -- Every record goes out here: to opts.out when it is a function (ft.run),
  -- else as a JSON line to the run's output.
  local function out(rec)
    if out_fn then return out_fn(rec) end
    core_write_record(rec)
  end
  R.out = out

  -- A record a handler made for entry (the request; NO_ENTRY for none)
  -- from response res (nil for a failure or an alarm). Raises (level 0:
  -- the handler's job reports it) when rec is not a table.
  local function write(rec, entry, res)
    if type(rec) ~= "table" then
      error("a record must be a table, got " .. type(rec), 0)
    end
    if with_meta then
      rec._url = res and res.url or entry.url
      rec._status = res and res.status or null
      rec._index = entry.id
      rec._depth = entry.depth
    end
    out(rec)
  end
  R.write = write

  -- A handler's result: nil, one record, or a list of records.
  function R.write_result(result, entry, res)
    if result == nil then return end
    if type(result) ~= "table" then
      error("a handler must return a table, a list of tables or nil, got " .. type(result), 0)
    end
    if result[1] ~= nil then
      for _, rec in ipairs(result) do write(rec, entry, res) end
    else
      write(result, entry, res)
    end
  end

  -- A request's meta as records carry it: itself when JSON can hold it,
  -- else a string saying why not (a function, NaN, a cycle), so that a
  -- meta never costs a request its record. Returns the value and its JSON
  -- (nil for no meta).
  local function meta_of(meta)
    if meta == nil then return nil, nil end
    local ok, json = pcall(encode, meta)
    if ok then return meta, json end
    local why = "meta not written: " .. tostring(json):gsub("^.-:%d+: ", "")
    return why, encode(why)
  end
  R.meta = meta_of

  -- The record of a request that failed (or whose handler did): err is
  -- { kind, message, ... }; built with a meta that can be written whatever
  -- the request carried.
  function R.error(entry, status, err, attempts)
    out({
      index = entry.id, url = entry.url, status = status or null,
      attempts = attempts or 0, error = err, meta = (meta_of(entry.meta)),
    })
  end

  -- The record of a job that raised err and has no request: an alarm of
  -- object name.
  function R.object_error(name, err)
    out({ object = name, error = M.script_error(err) })
  end

  -- The record of a response no handler takes: for ft.run a table for its
  -- out function; for fetchtree run the record C writes when no object has
  -- a handler (its field order, --no-body, --no-headers, body_base64).
  function R.default(entry, res)
    if out_fn then
      return out_fn({
        index = entry.id, url = entry.url, final_url = res.url ~= entry.url and res.url or nil,
        status = res.status, headers = res.headers, body = res.body,
        attempts = res.attempts, elapsed_ms = res.elapsed_ms, error = null,
        meta = (meta_of(entry.meta)),
      })
    end
    return core_write_default(entry.id, entry.url, select(2, meta_of(entry.meta)), res.url,
                              res.status, rawget(res, "_h") or "", res.body, res.attempts,
                              res.elapsed_ms)
  end

  R.NO_ENTRY = NO_ENTRY
  return R
end

return M
