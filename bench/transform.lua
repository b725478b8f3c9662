-- transform.lua - the benchmark's crawl: items 1..N, each response decoded
-- as JSON in Lua and turned into a record (arg[3] == "plain": no handler,
-- the default record, for the comparison).
local base, n, mode = arg[1], tonumber(arg[2]) or 100000, arg[3]
local spec = {
  start = function(emit)
    for i = 1, n do emit { url = base .. "/item/" .. i .. ".json" } end
  end,
}
if mode ~= "plain" then
  spec.on_response = function(res)
    local item = res:json()
    return { id = item.id, title = item.title, score = item.score }
  end
end
return spec
