-- wrk_items.lua - wrk's request generator for the benchmark: cycles over
-- /item/1.json .. /item/N.json (N is the first script argument).
local n, i = 10000, 0

function init(args)
  n = tonumber(args[1]) or n
end

function request()
  i = i % n + 1
  return wrk.format(nil, "/item/" .. i .. ".json")
end
