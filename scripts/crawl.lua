-- crawl.lua - a polite same-site crawler: follows links on the start URL's
-- host down to max_depth, obeys the site's robots.txt (Disallow rules for
-- "*" and "fetchtree"), and writes url, status and title per page.
--
--   fetchtree run scripts/crawl.lua -- https://example.com/ [max_depth]
local start_url = assert(arg[1], "usage: fetchtree run scripts/crawl.lua -- URL [max_depth]")
local depth = tonumber(arg[2]) or 3
local scheme, host = start_url:match("^(https?)://([^/:?#]+)")
assert(host, "not an http(s) URL: " .. start_url)
local origin = start_url:match("^(https?://[^/?#]+)")

local disallow = {}       -- path prefixes robots.txt forbids

-- Parse robots.txt: the Disallow lines of the groups for "*" or "fetchtree".
local function parse_robots(text)
  local applies, rules = false, {}
  local in_agents = false
  for line in (text .. "\n"):gmatch("([^\n]*)\n") do
    line = line:gsub("#.*", ""):gsub("^%s+", ""):gsub("%s+$", "")
    local k, v = line:match("^([%w%-]+)%s*:%s*(.-)$")
    if k then
      k = k:lower()
      if k == "user-agent" then
        if not in_agents then applies = false end
        in_agents = true
        local ua = v:lower()
        if ua == "*" or ua:find("fetchtree", 1, true) then applies = true end
      else
        in_agents = false
        if applies and k == "disallow" and v ~= "" then rules[#rules + 1] = v end
      end
    end
  end
  return rules
end

local function allowed(url)
  local path = url:match("^https?://[^/?#]+(.*)$") or "/"
  if path == "" then path = "/" end
  for _, prefix in ipairs(disallow) do
    if path:sub(1, #prefix) == prefix then return false end
  end
  return true
end

local function is_html(res)
  return (res.headers["content-type"] or ""):find("html", 1, true) ~= nil
end

return {
  concurrency = 8, retries = 3,
  max_depth = depth + 1,            -- robots.txt is depth 0, the start page 1
  allow_hosts = { host },

  start = function(emit)
    emit { url = origin .. "/robots.txt", meta = { robots = true }, dedupe = false }
  end,

  on_response = function(res, obj)
    local meta = res.request.meta
    if meta and meta.robots then
      if res.status == 200 then disallow = parse_robots(res.body) end
      obj:fetch { url = start_url }
      return nil
    end
    if is_html(res) then
      for _, link in ipairs(res:links()) do
        if allowed(link) then obj:fetch { url = link } end
      end
    end
    local title = is_html(res) and res:xpath("//title")[1] or nil
    return { url = res.url, status = res.status, title = title and title:gsub("%s+", " ") or nil }
  end,

  on_error = function(err, req, obj)
    if req.meta and req.meta.robots then
      obj:fetch { url = start_url }   -- no robots.txt: everything allowed
      return nil
    end
    return { url = req.url, status = err.status, error = err.kind }
  end,
}
