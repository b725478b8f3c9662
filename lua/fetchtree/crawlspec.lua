-- fetchtree.crawlspec: a crawl script and the spec it returns: loading the
-- script (its arguments, the ft global), checking the spec's fields by
-- type, and the settings C takes from it. Ranges are C's to check
-- (core/script.c), the robots field and objects the crawl's.
local M = {}

-- The spec fields and their Lua types (robots: true or a table, checked
-- by fetchtree.crawl with the objects' robots).
M.FIELDS = {
  rps = "number", window = "number", concurrency = "number", retries = "number",
  timeout = "number", connect_timeout = "number", max_redirects = "number",
  max_body = "number", host_connections = "number", backoff_base = "number",
  backoff_cap = "number", max_retry_after = "number", max_depth = "number",
  user_agent = "string", retry_on = "table", allow_hosts = "table", compressed = "boolean",
  sensitive_headers = "table",
  dedupe = "boolean", start = "function", on_response = "function",
  on_error = "function", route = "function", objects = "table", state = "string",
}

-- Run the script at path with the script arguments args (a list) and
-- return the spec it returns. The script sees arg (arg[0]: path), the
-- whole API as the global ft (ft.get in a handler yields), and modules
-- beside it through require. Raises "file:line: message" (with the
-- script's traceback when it raised).
function M.load(path, args)
  local chunk, err = loadfile(path)
  if not chunk then error(err, 0) end
  local a = { [0] = path }
  for i, v in ipairs(args) do a[i] = v end
  _G.arg = a
  _G.ft = require "fetchtree"
  local dir = path:match("^(.*)/[^/]*$")
  if dir then package.path = dir .. "/?.lua;" .. package.path end
  local ok, s = xpcall(chunk, debug.traceback)
  if not ok then error(s, 0) end
  if type(s) ~= "table" then
    error(path .. ": a crawl script must return a table (the crawl spec), got " .. type(s), 0)
  end
  return s
end

-- Check spec s's fields by type, and that it has start. Raises
-- "path: spec field 'k' must be a T, got U".
function M.check(s, path)
  for k, v in pairs(s) do
    local want = M.FIELDS[k]
    if want and type(v) ~= want then
      error(string.format("%s: spec field '%s' must be a %s, got %s", path, k, want, type(v)), 0)
    end
  end
  if not s.start then error(path .. ": the crawl spec needs a start function", 0) end
end

-- The settings C takes from a checked spec s: its numbers and strings as
-- they are, retry_on and sensitive_headers as comma-separated lists.
-- Raises "path: ..." for a sensitive header that is not a header name.
function M.settings(s, path)
  local retry_on
  if s.retry_on then
    local l = {}
    for _, v in ipairs(s.retry_on) do l[#l + 1] = tostring(v) end
    retry_on = table.concat(l, ",")
  end
  local sensitive
  if s.sensitive_headers then
    local l = {}
    for i, v in ipairs(s.sensitive_headers) do
      if type(v) ~= "string" or not v:match("^[%w!#$%%&'*+%-.^_`|~]+$") then
        error(path .. ": spec field 'sensitive_headers' wants header names, item " .. i .. " is not one", 0)
      end
      l[#l + 1] = v
    end
    sensitive = table.concat(l, ",")
  end
  return {
    sensitive_headers = sensitive,
    rps = s.rps, window = s.window, concurrency = s.concurrency, retries = s.retries,
    timeout = s.timeout, connect_timeout = s.connect_timeout,
    max_redirects = s.max_redirects, max_body = s.max_body,
    host_connections = s.host_connections, backoff_base = s.backoff_base,
    backoff_cap = s.backoff_cap, max_retry_after = s.max_retry_after,
    user_agent = s.user_agent, retry_on = retry_on, compressed = s.compressed,
    state = s.state,
  }
end

return M
