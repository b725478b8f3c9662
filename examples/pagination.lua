-- pagination.lua - walk a paginated JSON API: each page lists items and
-- names the next page; follow "next" until it is null, one record per item.
--
--   fetchtree run examples/pagination.lua -- http://127.0.0.1:8080
local base = arg[1] or "http://127.0.0.1:8080"

return {
  concurrency = 4,
  start = function(emit)
    emit { url = base .. "/api/items?per=10&total=95" }
  end,
  on_response = function(res, obj)
    local page = res:json()
    if type(page.next) == "string" then
      obj:fetch { url = page.next }   -- relative: resolved against res.url
    end
    local records = {}
    for _, item in ipairs(page.items) do
      records[#records + 1] = { id = item.id, name = item.name, price = item.price, page = page.page }
    end
    return records                    -- a list: one record each
  end,
}
