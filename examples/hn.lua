-- hn.lua - crawl a Hacker-News-style item tree: fetch items 1..N, follow
-- each item's kids down to max_depth, record id, title, author and parent.
--
--   fetchtree run examples/hn.lua -- http://127.0.0.1:8080 1000
--
-- Against the real API the base would be https://hacker-news.firebaseio.com/v0
-- (mind its terms and keep a polite rps).
local base = arg[1] or "http://127.0.0.1:8080"
local n = tonumber(arg[2]) or 1000

return {
  rps = 5000, window = 1000, concurrency = 64, retries = 5,
  max_depth = 2,                     -- kids of kids, no deeper

  start = function(emit)             -- consumed lazily, as slots free up
    for i = 1, n do emit { url = base .. "/item/" .. i .. ".json" } end
  end,

  on_response = function(res, obj)
    if res.status ~= 200 then return nil end
    local item = res:json()
    for _, kid in ipairs(item.kids or {}) do
      -- the same item reached twice is fetched once (de-duplication)
      obj:fetch { url = base .. "/item/" .. kid .. ".json", meta = { parent = item.id } }
    end
    local meta = res.request.meta
    return {
      id = item.id, title = item.title, by = item.by,
      parent = meta and meta.parent, depth = res.request.depth,
    }
  end,
}
