-- csv.lua - turn JSON responses into flat, CSV-ready records: the same
-- columns in every record, scalars only, missing values as "".
--
--   fetchtree run examples/csv.lua -- http://127.0.0.1:8080 100 > items.jsonl
--   # then, for example: jq -r '[.id,.title,.author,.score,.kids,.posted] | @csv' items.jsonl
local base = arg[1] or "http://127.0.0.1:8080"
local n = tonumber(arg[2]) or 100

return {
  concurrency = 16,
  start = function(emit)
    for i = 1, n do emit { url = base .. "/item/" .. i .. ".json" } end
  end,
  on_response = function(res)
    if res.status ~= 200 then return nil end
    local item = res:json()
    return {
      id = item.id,
      title = item.title or "",
      author = item.by or "",
      score = item.score or 0,
      kids = #(item.kids or {}),
      posted = os.date("!%Y-%m-%dT%H:%M:%SZ", item.time or 0),
    }
  end,
}
