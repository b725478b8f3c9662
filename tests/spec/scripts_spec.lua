-- scripts_spec.lua - the ready-made scripts (scripts/) and the teaching
-- examples (examples/) run as a user runs them, against the fixture server.
local H = require "helper"

local function run(script, script_args, args)
  local out, err = H.tmpname(".out"), H.tmpname(".err")
  local rc = H.sh(string.format("%s run %s %s -- %s > %s 2> %s < /dev/null",
    H.bin, script, args or "-q", table.concat(script_args, " "), out, err))
  local records = {}
  for line in (H.read(out) or ""):gmatch("[^\n]+") do records[#records + 1] = H.json.decode(line) end
  return { rc = rc, records = records, stderr = H.read(err) or "" }
end

describe("ready-made scripts and examples", function()
  local srv
  setup(function() srv = H.server() end)
  teardown(function() srv.stop() end)

  it("scripts/crawl.lua crawls one site within max_depth and obeys robots.txt", function()
    local r = run("scripts/crawl.lua", { srv.base .. "/page/0?m=12", "10" })
    assert.equal(0, r.rc, r.stderr)
    local urls, refused = {}, 0
    for _, rec in ipairs(r.records) do
      if rec.error == "robots" then -- each page's /private/ link: a record, no request
        assert.truthy(rec.url:match("/private/%d+$"), rec.url)
        refused = refused + 1
      else
        assert.equal(200, rec.status)
        assert.truthy(rec.title:match("^Page %d+$"), rec.url)
      end
      assert.is_nil(urls[rec.url], "twice: " .. rec.url)
      urls[rec.url] = true
    end
    assert.equal(12, refused)
    assert.equal(24, #r.records) -- every page of the graph, once
    assert.equal(1, #srv.log_for("/robots.txt", 1))
    local private = 0
    for _, row in ipairs(srv.log_for("/page/", 12)) do
      if row.target:match("^/private/") then private = private + 1 end
    end
    for _, row in ipairs(srv.log()) do
      if row.target:match("^/private/") then private = private + 1 end
    end
    assert.equal(0, private) -- Disallow: /private/
  end)

  it("scripts/crawl.lua stops at max_depth", function()
    local r = run("scripts/crawl.lua", { srv.base .. "/page/0?m=40", "1" })
    -- page 0 and the pages it links to (1 and 2, and /private/0, which
    -- robots.txt disallows), nothing further
    assert.equal(4, #r.records)
  end)

  it("scripts/sitemap.lua fetches every page the sitemap lists", function()
    local r = run("scripts/sitemap.lua", { srv.base .. "/sitemap.xml" })
    assert.equal(0, r.rc, r.stderr)
    assert.equal(10, #r.records)
    local pages = {}
    for _, rec in ipairs(r.records) do
      assert.equal(200, rec.status)
      assert.equal("text/html", rec.content_type)
      pages[tonumber(rec.url:match("/page/(%d+)"))] = true
    end
    for i = 0, 9 do assert.truthy(pages[i], "page " .. i) end
  end)

  it("examples/hn.lua crawls the item tree to max_depth, each item once", function()
    local r = run("examples/hn.lua", { srv.base, "30" })
    assert.equal(0, r.rc, r.stderr)
    local by_id = {}
    for _, rec in ipairs(r.records) do
      assert.is_nil(by_id[rec.id], "item twice: " .. rec.id)
      by_id[rec.id] = rec
      assert.truthy(rec.depth <= 2)
      assert.equal("Item " .. rec.id, rec.title)
    end
    for i = 1, 30 do assert.truthy(by_id[i], "start item " .. i) end
    -- every item above the depth limit had its kids fetched
    for id, rec in pairs(by_id) do
      if rec.depth < 2 then
        for k = 3 * id + 1, 3 * id + 3 do assert.truthy(by_id[k], "kid " .. k .. " of " .. id) end
      end
      if rec.depth > 0 then assert.truthy(by_id[rec.parent]) end
    end
  end)

  it("examples/pagination.lua walks every page of the API", function()
    local r = run("examples/pagination.lua", { srv.base })
    assert.equal(0, r.rc, r.stderr)
    assert.equal(95, #r.records)
    local ids = {}
    for _, rec in ipairs(r.records) do ids[rec.id] = true end
    for i = 1, 95 do assert.truthy(ids[i], "item " .. i) end
  end)

  it("examples/csv.lua writes flat records with the same columns", function()
    local r = run("examples/csv.lua", { srv.base, "12" })
    assert.equal(12, #r.records)
    local want = { "author", "id", "kids", "posted", "score", "title" }
    for _, rec in ipairs(r.records) do
      local keys = {}
      for k, v in pairs(rec) do
        keys[#keys + 1] = k
        assert.truthy(type(v) == "string" or type(v) == "number", k)
      end
      table.sort(keys)
      assert.same(want, keys)
      assert.truthy(rec.posted:match("^%d%d%d%d%-%d%d%-%d%dT"))
    end
  end)
end)
