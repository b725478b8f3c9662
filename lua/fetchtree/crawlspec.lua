-- fetchtree.crawlspec: a crawl script and the spec it returns: loading the
-- script (its arguments, the ft global), checking the spec's fields
-- against the one settings table (core/settings.c, through
-- core.check_settings), and the settings C takes from it.
local M = {}

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
  local ok, s = xpcall(chunk, require("fetchtree.trace").handler)
  if not ok then error(s, 0) end
  if type(s) ~= "table" then
    error(path .. ": a crawl script must return a table (the crawl spec), got " .. type(s), 0)
  end
  return s
end

-- Check spec s's fields, its objects' too, with check_settings (C's
-- core.check_settings over the one settings table: type, range, unknown
-- fields with the nearest name, path:line), and that it has start.
-- Raises its message.
function M.check(s, path, check_settings)
  local ok, why = check_settings("spec", s, path)
  if not ok then error(why, 0) end
  if not s.start then error(path .. ": the crawl spec needs a start function", 0) end
end

-- A list setting (retry_on, sensitive_headers) as C reads it, "429,503"
-- (ft.run's options are made so too):
-- check_settings took a list of statuses or names, or that text already.
function M.list_text(v) return type(v) == "table" and table.concat(v, ",") or v end
local joined = M.list_text

-- The settings C takes from a checked spec s: its numbers and strings as
-- they are, retry_on and sensitive_headers as comma-separated lists.
function M.settings(s)
  return {
    sensitive_headers = joined(s.sensitive_headers),
    rps = s.rps, window = s.window, concurrency = s.concurrency, retries = s.retries,
    timeout = s.timeout, connect_timeout = s.connect_timeout,
    max_redirects = s.max_redirects, max_body = s.max_body,
    host_connections = s.host_connections, backoff_base = s.backoff_base,
    backoff_cap = s.backoff_cap, max_retry_after = s.max_retry_after,
    user_agent = s.user_agent, retry_on = joined(s.retry_on), compressed = s.compressed,
    state = s.state,
  }
end

return M
