-- robots_spec.lua - robots.txt in crawls (robots = true; fetchtree.robots
-- and core/robots.c): fetched first, obeyed for every request and
-- redirect, Crawl-delay, statuses, and kept in --state across a kill -9.
local H = require "helper"

-- Percent-encode s for a query value.
local function enc(s)
  return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end

-- Make the fixture server answer /robots.txt with body (and status).
local function set_robots(srv, body, status)
  local r = H.fetch({ srv.base .. "/robots-set?body=" .. enc(body) .. (status and "&status=" .. status or "") },
                    "-q --no-headers")
  assert.equal(200, r.records[1].status)
end

-- Write a crawl script and run it; returns records and the exit code.
local function run(src, args)
  local path, out, err = H.tmpname(".lua"), H.tmpname(".out"), H.tmpname(".err")
  H.write(path, src)
  local rc = H.sh(string.format("%s run %s %s > %s 2> %s < /dev/null", H.bin, path,
                                args or "-q --no-headers", out, err))
  local res = { rc = rc, stderr = H.read(err) or "", records = {}, by_url = {} }
  for line in (H.read(out) or ""):gmatch("[^\n]+") do
    local rec = H.json.decode(line)
    res.records[#res.records + 1] = rec
    if type(rec.url) == "string" then res.by_url[rec.url] = rec end
  end
  return res
end

-- The targets the server was asked for since the robots-set call.
local function targets(srv, min)
  local out = {}
  for _, row in ipairs(srv.log(min)) do
    if not row.target:match("^/robots%-set") then out[#out + 1] = row end
  end
  return out
end

local function count(rows, pattern)
  local n = 0
  for _, r in ipairs(rows) do if r.target:match(pattern) then n = n + 1 end end
  return n
end

describe("robots.txt", function()
  local srv
  before_each(function() srv = H.server { hosts = { "127.0.0.1", "127.0.0.2" } } end)
  after_each(function() srv.stop() end)

  it("is fetched first and obeyed for start requests and follow-ups, one record per request", function()
    set_robots(srv, "User-agent: *\nDisallow: /private/\nAllow: /private/ok$\nDisallow: /*.gif$\n")
    local b = srv.base
    local r = run(string.format([[
      return {
        robots = true, max_depth = 1,
        start = function(emit)
          emit "%s/item/1.json"
          emit "%s/private/1"
          emit "%s/private/ok"
          emit "%s/item/2.gif"
          emit "%s/page/0?m=3"
        end,
        on_response = function(res, obj)
          if res.url:find("/page/", 1, true) then
            for _, l in ipairs(res:links()) do obj:fetch(l) end
          end
          return { url = res.request.url, status = res.status }
        end,
        on_error = function(err, req) return { url = req.url, kind = err.kind, message = err.message } end,
      }]], b, b, b, b, b))
    assert.equal(0, r.rc, r.stderr)
    local rows = targets(srv, 7)
    assert.equal("/robots.txt", rows[1].target) -- before any other request
    assert.equal(1, count(rows, "^/robots%.txt$"))
    assert.equal(0, count(rows, "^/private/%d"))
    assert.equal(0, count(rows, "%.gif$"))
    assert.equal(1, count(rows, "^/private/ok$"))
    assert.equal(200, r.by_url[b .. "/item/1.json"].status)
    assert.equal(200, r.by_url[b .. "/private/ok"].status)
    for _, u in ipairs { "/private/1", "/item/2.gif", "/private/0" } do -- /private/0: a follow-up
      local rec = r.by_url[b .. u]
      assert.truthy(rec, u)
      assert.equal("robots", rec.kind)
      assert.equal("robots.txt disallows " .. b .. u, rec.message)
    end
    -- page 0 links to pages 1 and 2 (fetched) and /private/0 (refused)
    local n = 0
    for _, rec in ipairs(r.records) do if rec.url:find("/page/", 1, true) then n = n + 1 end end
    assert.equal(3, n)
    assert.equal(3 + 3 + 2, #r.records) -- every request has exactly one
  end)

  it("takes the group of the user agent's product token, else the * group", function()
    set_robots(srv, "User-agent: FetchTree\nDisallow: /item/1\n\nUser-agent: *\nDisallow: /item/2\n")
    local src = string.format([[return { robots = true,
      start = function(emit) emit "%s/item/1.json"; emit "%s/item/2.json" end }]], srv.base, srv.base)
    local r = run(src) -- fetchtree/VERSION
    assert.equal("robots", r.by_url[srv.base .. "/item/1.json"].error.kind)
    assert.equal(200, r.by_url[srv.base .. "/item/2.json"].status)
    r = run(src, "-q --no-headers --user-agent 'OtherBot/2.0 (+http://x.invalid)'")
    assert.equal(200, r.by_url[srv.base .. "/item/1.json"].status)
    assert.equal("robots", r.by_url[srv.base .. "/item/2.json"].error.kind)
    local rows = targets(srv, 5)
    assert.equal(2, count(rows, "^/robots%.txt$")) -- one per run
    assert.equal(1, count(rows, "^/item/1%.json$"))
    assert.equal(1, count(rows, "^/item/2%.json$"))
  end)

  it("does not follow a redirect into a disallowed path, on this host or another", function()
    set_robots(srv, "User-agent: *\nDisallow: /private/\n")
    local b, b2 = srv.base, srv.base2
    local r = run(string.format([[return { robots = true,
      start = function(emit)
        emit "%s/redirect-to?url=/private/1"
        emit "%s/redirect-to?url=/item/3.json"
        emit "%s/redirect-to?url=%s/private/2"
        emit "%s/redirect-to?url=%s/item/4.json"
      end }]], b, b, b, b2, b, b2))
    assert.equal(0, r.rc, r.stderr)
    assert.equal(4, #r.records)
    local rec = r.by_url[b .. "/redirect-to?url=/private/1"]
    assert.equal("robots", rec.error.kind)
    assert.equal(302, rec.status)
    assert.equal("robots.txt disallows " .. b .. "/private/1 (a redirect of " .. rec.url .. ")", rec.error.message)
    rec = r.by_url[b .. "/redirect-to?url=" .. b2 .. "/private/2"]
    assert.equal("robots", rec.error.kind)
    assert.truthy(rec.error.message:find(b2 .. "/private/2", 1, true))
    assert.equal(b .. "/item/3.json", r.by_url[b .. "/redirect-to?url=/item/3.json"].final_url)
    assert.equal(b2 .. "/item/4.json", r.by_url[b .. "/redirect-to?url=" .. b2 .. "/item/4.json"].final_url)
    local rows = targets(srv, 9)
    assert.equal(0, count(rows, "^/private/"))
    local robots_by_addr = {}
    for _, row in ipairs(rows) do
      if row.target == "/robots.txt" then robots_by_addr[row.addr] = (robots_by_addr[row.addr] or 0) + 1 end
    end
    assert.same({ ["127.0.0.1"] = 1, ["127.0.0.2"] = 1 }, robots_by_addr) -- the target host's too
    assert.equal(1, count(rows, "^/item/4%.json$"))
  end)

  it("a 4xx robots.txt allows everything, a 5xx one disallows everything", function()
    local src = string.format([[return { robots = true, retries = 0,
      start = function(emit) emit "%s/private/1"; emit "%s/item/1.json" end }]], srv.base, srv.base)
    set_robots(srv, "gone", 404)
    local r = run(src)
    assert.equal(200, r.by_url[srv.base .. "/private/1"].status)
    assert.equal(200, r.by_url[srv.base .. "/item/1.json"].status)
    set_robots(srv, "User-agent: *\nAllow: /\n", 503)
    r = run(src)
    assert.equal(2, #r.records)
    for _, rec in ipairs(r.records) do
      assert.equal("robots", rec.error.kind)
      assert.truthy(rec.error.message:find("unreachable", 1, true), rec.error.message)
    end
    local rows = targets(srv, 6)
    assert.equal(2, count(rows, "^/robots%.txt$"))
    assert.equal(1, count(rows, "^/private/1$")) -- the first run's only
    assert.equal(1, count(rows, "^/item/1%.json$"))
  end)

  it("Crawl-delay sets the host's rate, unless the spec sets one for that object", function()
    set_robots(srv, "User-agent: *\nCrawl-delay: 0.3\n")
    local items = {}
    for i = 1, 4 do items[#items + 1] = string.format("emit '%s/item/%d.json'", srv.base, i) end
    local r = run("return { robots = true, start = function(emit) " .. table.concat(items, "; ") .. " end }")
    assert.equal(4, #r.records)
    local times = {}
    for _, row in ipairs(targets(srv, 5)) do
      if row.target:match("^/item/") then times[#times + 1] = row.t end
    end
    table.sort(times)
    for i = 2, #times do
      assert.is_true(times[i] - times[i - 1] >= 0.28, "requests " .. (times[i] - times[i - 1]) .. " s apart")
    end
    -- an object pattern's rate wins over a long Crawl-delay
    set_robots(srv, "User-agent: *\nCrawl-delay: 5\n")
    local t0 = os.time()
    r = run("return { robots = true, objects = { ['/host/*'] = { rps = 100 } }, start = function(emit) "
            .. table.concat(items, "; ") .. " end }")
    assert.equal(4, #r.records)
    assert.is_true(os.time() - t0 < 10, "Crawl-delay 5 was obeyed over the spec's rate")
  end)

  it("works in ft.run too, redirects included", function()
    set_robots(srv, "User-agent: *\nDisallow: /private/\n")
    local path, out = H.tmpname(".lua"), H.tmpname(".out")
    H.write(path, string.format([[
      local cjson = require "cjson"
      local recs = {}
      assert(ft.run({ robots = true,
        start = function(emit)
          emit "%s/redirect-to?url=/private/1"
          emit "%s/private/2"
          emit "%s/item/1.json"
        end }, { out = function(rec) recs[#recs + 1] = rec end }))
      local f = io.open(%q, "w")
      for _, rec in ipairs(recs) do
        f:write(rec.url, " ", rec.error ~= cjson.null and rec.error.kind or tostring(rec.status), "\n")
      end
      f:close()
    ]], srv.base, srv.base, srv.base, out))
    assert.equal(0, H.sh(string.format("%s lua %s > /dev/null 2>&1", H.bin, path)))
    local got = {}
    for line in (H.read(out) or ""):gmatch("[^\n]+") do
      local url, what = line:match("^(%S+) (%S+)$")
      got[url] = what
    end
    assert.same({ [srv.base .. "/redirect-to?url=/private/1"] = "robots",
                  [srv.base .. "/private/2"] = "robots",
                  [srv.base .. "/item/1.json"] = "200" }, got)
    local rows = targets(srv, 4)
    assert.equal(0, count(rows, "^/private/"))
    assert.equal(1, count(rows, "^/robots%.txt$"))
  end)

  it("applies per object pattern: only the requests of those objects obey it", function()
    set_robots(srv, "User-agent: *\nDisallow: /private/\n")
    local r = run(string.format([[return {
      objects = { ["/host/127.0.0.2"] = { robots = true } },
      start = function(emit) emit "%s/private/1"; emit "%s/private/2" end }]], srv.base, srv.base2))
    assert.equal(0, r.rc, r.stderr)
    assert.equal(200, r.by_url[srv.base .. "/private/1"].status)
    assert.equal("robots", r.by_url[srv.base2 .. "/private/2"].error.kind)
    local rows = targets(srv, 3)
    assert.equal(1, count(rows, "^/robots%.txt$"))
    assert.equal(1, count(rows, "^/private/1$"))
    assert.equal(0, count(rows, "^/private/2$"))
  end)

  it("an unreachable robots.txt disallows all until it is fetched again after recheck", function()
    set_robots(srv, "down", 503)
    local fix = srv.base .. "/robots-set?body=" .. enc("User-agent: *\nDisallow: /private/\n")
    local r = run(string.format([[return { robots = { recheck = 1 }, retries = 0,
      start = function(emit) emit "%s/item/1.json" end,
      on_response = function(res) return { url = res.request.url, status = res.status } end,
      on_error = function(err, req, obj)
        if req.url:find("/item/1.json", 1, true) then
          obj:after(1100, function(o)
            assert(ft.get(%q)) -- the server's robots.txt is back
            o:fetch "%s/item/2.json"
            o:fetch "%s/private/3"
          end)
        end
        return { url = req.url, kind = err.kind, message = err.message }
      end }]], srv.base, fix, srv.base, srv.base))
    assert.equal(0, r.rc, r.stderr)
    assert.equal("robots", r.by_url[srv.base .. "/item/1.json"].kind)
    assert.truthy(r.by_url[srv.base .. "/item/1.json"].message:find("unreachable", 1, true))
    assert.equal(200, r.by_url[srv.base .. "/item/2.json"].status)
    assert.equal("robots", r.by_url[srv.base .. "/private/3"].kind)
    local rows = targets(srv, 5)
    assert.equal(2, count(rows, "^/robots%.txt$"))
    assert.equal(0, count(rows, "^/item/1"))
    assert.equal(0, count(rows, "^/private/"))
  end)

  it("uses the copy kept in the host's storage, unless it is older than 24 hours", function()
    local path, state = H.tmpname(".lua"), H.tmpname(".db")
    H.write(path, [[
      local base, mode, at = arg[1], arg[2], arg[3]
      if mode == "seed" then -- a kept robots.txt that disallows /item/, fetched at time `at`
        return { start = function(emit) emit(base .. "/bytes/1") end,
          on_response = function(res, obj)
            obj.storage:put("robots.txt " .. base, "200 " .. at .. "\nUser-agent: *\nDisallow: /item/\n")
          end }
      end
      return { robots = true, start = function(emit) emit(base .. "/item/1.json") end }
    ]])
    local function go(mode, at)
      local out = H.tmpname(".out")
      assert.equal(0, H.sh(string.format("%s run %s -q --restart --state %s -o %s -- %s %s %s",
                                         H.bin, path, state, out, srv.base, mode, at or "")))
      local line = (H.read(out) or ""):match("[^\n]+")
      return line and H.json.decode(line)
    end
    go("seed", os.time() - 60)
    local rec = go("crawl")
    assert.equal("robots", rec.error.kind) -- the kept copy, not the server's robots.txt
    assert.equal(0, count(targets(srv, 1), "^/robots%.txt$"))
    go("seed", os.time() - 2 * 86400)
    rec = go("crawl")
    assert.equal(200, rec.status) -- fetched anew: the fixture's robots.txt allows /item/
    local rows = targets(srv, 3)
    assert.equal(1, count(rows, "^/robots%.txt$"))
    assert.equal(1, count(rows, "^/item/1%.json$"))
  end)

  it("refuses a robots setting that is neither true nor a table", function()
    local r = run("return { robots = 'yes', start = function() end }")
    assert.equal(1, r.rc)
    assert.truthy(r.stderr:find("field 'robots': must be true, false or { agent = string, recheck = seconds }, got string", 1, true), r.stderr)
  end)

  it("is kept in --state: a crawl killed and resumed fetches no disallowed page and not robots.txt again", function()
    -- the fixture's default robots.txt: Disallow: /private/; every page links to one
    local state, out = H.tmpname(".db"), H.tmpname(".jsonl")
    local cmd = string.format("%s run scripts/crawl.lua -q --rps 10 --state %s -o %s -- %s/page/0?m=30 30",
                              H.bin, state, out, srv.base)
    -- first run: killed once records (so a checkpoint, after robots.txt) are out
    local pidfile = H.tmpname(".pid")
    os.execute(string.format("(%s & echo $! > %s) 2>/dev/null", cmd, pidfile))
    local pid
    for _ = 1, 100 do pid = tonumber(H.read(pidfile) or ""); if pid then break end; H.sleep(0.02) end
    local function lines_out() return select(2, (H.read(out) or ""):gsub("\n", "")) end
    local lines = 0
    for _ = 1, 500 do
      lines = lines_out()
      if lines >= 3 then break end
      H.sleep(0.02)
    end
    assert.is_true(lines >= 3, "the first run wrote no records")
    -- a checkpoint writes its records, then commits: records of a later
    -- checkpoint mean the first one's commit (robots.txt with it) is done
    for _ = 1, 500 do
      if lines_out() > lines then break end
      H.sleep(0.02)
    end
    H.sh("kill -9 " .. pid .. " 2>/dev/null")
    H.sleep(0.2)
    local pages_before = count(targets(srv, 1), "^/page/")
    assert.is_true(pages_before < 30, "the first run finished before it was killed")
    -- second run: resumes and finishes
    assert.equal(0, H.sh(cmd .. " 2>/dev/null"))
    local rows = targets(srv, 30)
    assert.equal(1, count(rows, "^/robots%.txt$"))
    assert.equal(0, count(rows, "^/private/"))
    local pages, refused = {}, 0
    for line in (H.read(out) or ""):gmatch("[^\n]+") do
      local rec = H.json.decode(line)
      if rec.error == "robots" then
        refused = refused + 1
      else
        assert.equal(200, rec.status)
        assert.is_nil(pages[rec.url], "twice: " .. rec.url)
        pages[rec.url] = true
      end
    end
    local n = 0
    for _ in pairs(pages) do n = n + 1 end
    assert.equal(30, n)
    assert.equal(30, refused) -- each page's /private/ link, once
  end)
end)
