-- fetchtree.request: turns a request description (a Lua table, or a JSON
-- input line) into the flat fields the C engine needs, with clear errors.
local cjson = require "cjson.safe"
local core = require "fetchtree.core"

local M = {}

local null = cjson.null
local function absent(v) return v == nil or v == null end

local function bad(msg) return nil, msg end

-- A body or meta table as JSON, as records are written (core/lua_record.c:
-- exact numbers, "/" as it is); nil and why for what JSON cannot hold.
local function encode(v)
  local ok, s = pcall(core.encode, v)
  if ok then return s end
  return nil, s
end

-- One "Name: value" line from a headers-table entry. Only the types are
-- checked here: what the line holds (a name that is not a token, a line
-- break, a NUL byte, a framing header such as Content-Length) is judged by
-- the C side for every way a request comes in (core/request.c,
-- ft_header_check), and such a request ends as an `input` error.
local function header_line(name, value)
  if type(name) ~= "string" then
    return nil, "bad header name: " .. tostring(name) .. " (names are strings)"
  end
  local tv = type(value)
  if tv == "number" or tv == "boolean" then value = tostring(value) end
  if type(value) ~= "string" then
    return nil, "header " .. name .. " must be a string, not a " .. tv
  end
  return name .. ": " .. value
end

-- Whether one of the header lines sets Content-Type.
local function has_content_type(headers)
  for _, line in ipairs(headers or {}) do
    local name = line:match("^([^:;]*)[:;]")
    if name and name:lower() == "content-type" then return true end
  end
  return false
end

-- Check a request table. Returns url, method, headers (list of
-- "Name: value", or nil), body, meta_json (or, with raw_meta, the meta value
-- itself); or nil and a message. A table body is sent as JSON, with
-- "Content-Type: application/json" unless the headers set a Content-Type.
function M.check(t, raw_meta)
  if type(t) ~= "table" then return bad("a request must be a table") end
  local url = t.url
  if type(url) ~= "string" or url == "" then
    return bad("a request needs a url string")
  end
  local method = t.method
  if absent(method) then
    method = nil
  elseif type(method) ~= "string" then
    return bad("bad method: a " .. type(method) .. ", not a string")
  else
    -- what it holds (spaces, line breaks) is judged with the headers
    method = method:upper()
  end
  local headers -- nil when there are none
  if not absent(t.headers) then
    headers = {}
    if type(t.headers) ~= "table" then return bad("headers must be an object") end
    for k, v in pairs(t.headers) do
      local line, err
      if type(k) == "number" then
        -- a list of "Name: value" strings, passed on as they are
        if type(v) ~= "string" then
          return bad("bad header line: a " .. type(v) .. ", not a string")
        end
        line = v
      else
        line, err = header_line(k, v)
      end
      if not line then return bad(err) end
      headers[#headers + 1] = line
    end
  end
  local body = t.body
  if absent(body) then
    body = nil
  elseif type(body) == "table" then
    local err
    body, err = encode(body)
    if not body then return bad("body: " .. tostring(err)) end
    if not has_content_type(headers) then
      headers = headers or {}
      headers[#headers + 1] = "Content-Type: application/json"
    end
  elseif type(body) ~= "string" then
    return bad("body must be a string, or a table (sent as JSON), not a " .. type(body))
  end
  if headers then table.sort(headers) end -- one order, whatever pairs() gives
  local meta
  if raw_meta then
    meta = t.meta
  elseif not absent(t.meta) then
    local err
    meta, err = encode(t.meta)
    if not meta then return bad("meta: " .. tostring(err)) end
  end
  return url, method, headers, body, meta
end

-- Parse one JSON input line.
-- The fields a request line may have (the settings table's place "line"),
-- looked up once.
local line_fields
local function check_line_fields(t)
  if not line_fields then
    line_fields = {}
    for _, st in ipairs(core.settings()) do
      if st.places.line then line_fields[st.name] = true end
    end
  end
  for k in next, t do
    if not line_fields[k] then
      local ok, why = core.check_settings("line", t, "request line")
      return nil, ok and ("request line: field '" .. tostring(k) .. "': unknown field") or why
    end
  end
  return true
end

function M.from_json(line)
  local t, err = cjson.decode(line)
  if t == nil then return bad("invalid JSON: " .. tostring(err)) end
  if type(t) ~= "table" or t[1] ~= nil then
    return bad("a request line must be a URL or a JSON object")
  end
  local ok, why = check_line_fields(t)
  if not ok then return bad(why) end
  return M.check(t)
end

return M
