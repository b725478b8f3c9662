-- crawl.lua - a polite same-site crawler: follows links on the start URL's
-- host down to max_depth, obeys the site's robots.txt (robots = true:
-- fetchtree's robots module, kept in --state), and writes url, status and
-- title per page.
--
--   fetchtree run scripts/crawl.lua -- https://example.com/ [max_depth]
local start_url = assert(arg[1], "usage: fetchtree run scripts/crawl.lua -- URL [max_depth]")
local depth = tonumber(arg[2]) or 3
local host = start_url:match("^https?://([^/:?#]+)")
assert(host, "not an http(s) URL: " .. start_url)

local function is_html(res)
  return (res.headers["content-type"] or ""):find("html", 1, true) ~= nil
end

return {
  concurrency = 8, retries = 3,
  max_depth = depth,                -- the start page is depth 0
  allow_hosts = { host },
  robots = true,                    -- fetched first; disallowed pages get a "robots" error

  start = function(emit)
    emit { url = start_url }
  end,

  on_response = function(res, obj)
    if is_html(res) then
      for _, link in ipairs(res:links()) do obj:fetch { url = link } end
    end
    local title = is_html(res) and res:xpath("//title")[1] or nil
    return { url = res.url, status = res.status, title = title and title:gsub("%s+", " ") or nil }
  end,

  on_error = function(err, req)
    return { url = req.url, status = err.status, error = err.kind }
  end,
}
