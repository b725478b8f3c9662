-- run_spec.lua - `fetchtree run`: crawl scripts against the fixture server.
local H = require "helper"
local null = H.null

-- Write a crawl script and run it; returns H.fetch-like results.
local function run(script_src, args, script_args, opts)
  opts = opts or {}
  local path = H.tmpname(".lua")
  H.write(path, script_src)
  local out, err = H.tmpname(".out"), H.tmpname(".err")
  local sargs = ""
  if script_args then sargs = " -- " .. table.concat(script_args, " ") end
  local rc = H.sh(string.format("%s run %s %s%s > %s 2> %s < /dev/null",
    opts.bin or H.bin, path, args or "-q", sargs, out, err))
  local res = { rc = rc, stdout = H.read(out) or "", stderr = H.read(err) or "", records = {}, path = path }
  for line in res.stdout:gmatch("[^\n]+") do
    res.records[#res.records + 1] = H.json.decode(line)
  end
  return res
end

describe("fetchtree run", function()
  local srv
  setup(function() srv = H.server { hosts = { "127.0.0.1", "127.0.0.2" } } end)
  teardown(function() srv.stop() end)

  local graph = [[
    local base, m, depth = arg[1], arg[2], tonumber(arg[3])
    return {
      concurrency = 8, max_depth = depth,
      allow_hosts = { "127.0.0.1" },
      start = function(emit) emit { url = base .. "/page/0?m=" .. m } end,
      on_response = function(res, obj)
        for _, link in ipairs(res:links()) do
          if link:find("/page/", 1, true) then obj:fetch { url = link } end
        end
        return { url = res.url, depth = res.request.depth, title = res:xpath("//title")[1] }
      end,
    }
  ]]

  it("crawls a link graph with cycles, fetching and recording each page once", function()
    local r = run(graph, "-q", { srv.base, 30, 100 })
    assert.equal(0, r.rc, r.stderr)
    local seen = {}
    for _, rec in ipairs(r.records) do
      assert.is_nil(seen[rec.url], "recorded twice: " .. rec.url)
      seen[rec.url] = true
      assert.truthy(rec.title:match("^Page %d+$"))
    end
    assert.equal(30, #r.records)
    local fetched = {}
    for _, row in ipairs(srv.log_for("/page/", 30)) do
      if row.target:find("?m=30", 1, true) then
        fetched[row.target] = (fetched[row.target] or 0) + 1
      end
    end
    local n = 0
    for target, count in pairs(fetched) do
      n = n + 1
      assert.equal(1, count, target .. " fetched " .. count .. " times")
    end
    assert.equal(30, n)
  end)

  it("does not follow links deeper than max_depth", function()
    local r = run(graph, "-q", { srv.base, 31, 1 })
    local depths = {}
    for _, rec in ipairs(r.records) do
      assert.truthy(rec.depth <= 1)
      depths[rec.depth] = (depths[rec.depth] or 0) + 1
    end
    -- page 0 links to pages 1 and 2 (and itself): depth 0 one page, depth 1 two
    assert.same({ [0] = 1, [1] = 2 }, depths)
  end)

  it("keeps a crawl on allow_hosts", function()
    local r = run([[
      local base, base2 = arg[1], arg[2]
      return {
        allow_hosts = { "127.0.0.1" },
        start = function(emit)
          emit { url = base .. "/item/1.json?ah" }
          emit { url = base2 .. "/item/2.json?ah" }
        end,
        on_response = function(res, obj)
          obj:fetch { url = base2 .. "/item/3.json?ah" }
          obj:fetch { url = base .. "/item/4.json?ah" }
          return { url = res.url }
        end,
      }
    ]], "-q", { srv.base, srv.base2 })
    assert.equal(2, #r.records)
    for _, row in ipairs(srv.log_for("/item/", 0)) do
      if row.target:find("?ah", 1, true) then assert.equal("127.0.0.1", row.addr) end
    end
  end)

  it("gives handlers the response: fields, headers, json, links, xpath, request", function()
    local r = run([[
      local base = arg[1]
      return {
        start = function(emit)
          emit { url = base .. "/redirect-to?url=%2Fpage%2F5%3Fm%3D10", meta = { tag = "x" } }
          emit { url = base .. "/item/7.json" }
        end,
        on_response = function(res)
          local rec = {
            status = res.status, url = res.url, ct = res.headers["content-type"],
            attempts = res.attempts, ms = res.elapsed_ms, depth = res.request.depth,
            tag = res.request.meta and res.request.meta.tag,
          }
          if res.url:find("item") then
            rec.id = res:json().id
          else
            rec.links = res:links()
            rec.hrefs = res:xpath("//a/@href")
            rec.count = res:xpath("count(//a)")[1]
          end
          return rec
        end,
      }
    ]], "-q", { srv.base })
    assert.equal(2, #r.records)
    local page, item
    for _, rec in ipairs(r.records) do
      if rec.id then item = rec else page = rec end
    end
    assert.equal(7, item.id)
    assert.equal("application/json", item.ct)
    assert.equal(200, page.status)
    assert.equal(srv.base .. "/page/5?m=10", page.url) -- final URL, after the redirect
    assert.equal("text/html", page.ct)
    assert.equal("x", page.tag)
    assert.equal(0, page.depth)
    assert.equal(1, page.attempts)
    assert.is_number(page.ms)
    assert.equal("6", page.count)
    assert.equal(6, #page.hrefs)
    assert.equal("/page/1?m=10", page.hrefs[1])
    assert.equal("mailto:someone@example.invalid", page.hrefs[6])
    -- links: absolute, resolved against the final URL, fragment dropped,
    -- mailto left out, each once
    assert.same({
      srv.base .. "/page/1?m=10", srv.base .. "/page/7?m=10", srv.base .. "/page/6?m=10",
      srv.base .. "/page/5?m=10", srv.base .. "/private/5",
    }, page.links)
  end)

  it("de-duplicates follow-ups by method, URL and body unless told not to", function()
    local src = [[
      local base, dd = arg[1], arg[2] == "on"
      return {
        dedupe = dd,
        start = function(emit)
          emit { url = base .. "/echo?dd" }
          emit { url = base .. "/echo?dd" }                  -- same: once
          emit { url = base .. "/echo?dd#frag" }             -- same after normalising
          emit { url = base .. "/echo?dd", method = "POST", body = "a" }
          emit { url = base .. "/echo?dd", method = "POST", body = "b" }
          emit { url = base .. "/echo?dd", method = "POST", body = "b" } -- same
          emit { url = base .. "/echo?dd", dedupe = false }  -- asked for again
        end,
        on_response = function(res) return { m = res:json().method } end,
      }
    ]]
    local r = run(src, "-q", { srv.base, "on" })
    assert.equal(4, #r.records)
    r = run(src, "-q", { srv.base, "off" })
    assert.equal(7, #r.records)
  end)

  it("writes an object without a handler the default record fetch writes, when other objects have one", function()
    -- 127.0.0.2's object has a handler, 127.0.0.1's has none: its records
    -- must be the ones a spec without handlers gets (field order,
    -- --no-body, --no-headers, body_base64 for a body that is not UTF-8)
    local script = [[
      local base, base2 = arg[1], arg[2]
      local mixed = arg[3] == "mixed"
      local spec = {
        start = function(emit)
          emit { url = base .. "/item/1.json", meta = { k = 1 } }
          emit { url = base .. "/bytes/64?binary=1" }
          if mixed then emit { url = base2 .. "/item/2.json" } end
        end,
      }
      if mixed then
        spec.objects = { ["/host/127.0.0.2"] = { on_response = function(res) return { two = true } end } }
      end
      return spec
    ]]
    for _, flags in ipairs { "-q", "-q --no-body", "-q --no-headers" } do
      local plain = run(script, flags, { srv.base, srv.base2, "plain" })
      local mixed = run(script, flags, { srv.base, srv.base2, "mixed" })
      assert.equal(0, plain.rc, plain.stderr)
      assert.equal(0, mixed.rc, mixed.stderr)
      local function lines(r) -- the records of 127.0.0.1 by index, times and dates left out
        local out = {}
        for line in r.stdout:gmatch("[^\n]+") do
          if not line:find('"two"', 1, true) then
            out[#out + 1] = line:gsub('"elapsed_ms":[%d.]+', ""):gsub('"date":"[^"]*"', "")
          end
        end
        table.sort(out)
        return out
      end
      assert.same(lines(plain), lines(mixed))
      assert.equal(3, #mixed.records)
    end
    local r = run(script, "-q", { srv.base, srv.base2, "mixed" })
    local bytes
    for _, rec in ipairs(r.records) do if rec.url and rec.url:find("/bytes/", 1, true) then bytes = rec end end
    assert.truthy(bytes.body_base64)
    assert.is_nil(bytes.body)
  end)

  it("writes default records without on_response, and provenance with --with-meta", function()
    local r = run([[
      local base = arg[1]
      return { start = function(emit) emit { url = base .. "/item/3.json", meta = { k = 1 } } end }
    ]], "-q", { srv.base })
    local rec = r.records[1]
    assert.equal(200, rec.status)
    assert.equal(3, H.json.decode(rec.body).id)
    assert.same({ k = 1 }, rec.meta)
    assert.equal(null, rec.error)
    r = run([[
      local base = arg[1]
      return {
        start = function(emit) emit { url = base .. "/item/3.json" } end,
        on_response = function(res, obj)
          obj:emit { extra = true }
          return { { a = 1 }, { a = 2 } }
        end,
      }
    ]], "-q --with-meta", { srv.base })
    assert.equal(3, #r.records)
    for _, x in ipairs(r.records) do
      if not x.extra then
        assert.equal(srv.base .. "/item/3.json", x._url)
        assert.equal(200, x._status)
        assert.equal(0, x._index)
        assert.equal(0, x._depth)
      end
    end
  end)

  it("turns an error in on_response into a script record and goes on", function()
    local r = run([[
      local base = arg[1]
      return {
        start = function(emit)
          for i = 1, 5 do emit { url = base .. "/item/" .. i .. ".json" } end
          emit { url = base .. "/bytes/10" }
        end,
        on_response = function(res)
          local item = res:json()       -- raises on /bytes/10
          if item.id == 3 then error("boom on three") end
          return { id = item.id }
        end,
      }
    ]], "-q", { srv.base })
    assert.equal(0, r.rc)
    assert.equal(6, #r.records)
    local ok, script_errors = 0, {}
    for _, rec in ipairs(r.records) do
      if rec.error and rec.error ~= null then
        assert.equal("script", rec.error.kind)
        assert.truthy(rec.error.traceback:match("traceback"))
        script_errors[#script_errors + 1] = rec.error.message
      else
        ok = ok + 1
      end
    end
    assert.equal(4, ok)
    table.sort(script_errors)
    assert.truthy(script_errors[1]:match("boom on three") or script_errors[2]:match("boom on three"))
    -- the handler's line, then lua-cjson's reason
    assert.truthy((script_errors[1] .. script_errors[2]):match(":%d+: res:json%(%): Expected value"))
  end)

  it("runs ft.fetch_all in handlers, in tasks they spawn and in alarms", function()
    -- the engine of a fetch_all is closed by the handler the engine's own
    -- completion resumed: it used to be freed under that callback
    local r = run([[
      local base = arg[1]
      return {
        retries = 0,
        start = function(emit) for i = 1, 4 do emit { url = base .. "/item/" .. i .. ".json" } end end,
        on_response = function(res, obj)
          local id = res:json().id
          local all = ft.fetch_all { base .. "/item/" .. (id + 10) .. ".json", "ftp://x/" }
          local n = ft.wait(ft.spawn(function()
            return #ft.fetch_all { base .. "/item/" .. (id + 20) .. ".json", base .. "/item/" .. (id + 30) .. ".json" }
          end))
          if id == 1 then
            obj:after(1, function(o)
              local l = ft.fetch_all { base .. "/item/50.json" }
              o:emit { alarm = l[1]:json().id }
            end)
          end
          return { id = id, a = all[1]:json().id, k = all[2].error.kind, n = n }
        end,
      }
    ]], "-q", { srv.base }, { bin = "timeout 60 " .. H.bin })
    assert.equal(0, r.rc, r.stderr)
    assert.equal(5, #r.records, r.stdout)
    local by = {}
    for _, rec in ipairs(r.records) do by[rec.id or "alarm"] = rec end
    for i = 1, 4 do assert.same({ id = i, a = i + 10, k = "url", n = 2 }, by[i]) end
    assert.same({ alarm = 50 }, by.alarm)
  end)

  it("makes a handler or alarm that yields outside fetchtree's calls a script error, and goes on", function()
    local r = run([[
      local base = arg[1]
      return {
        retries = 0,
        start = function(emit)
          emit { url = base .. "/item/1.json", meta = { n = 1 } }
          emit { url = base .. "/item/2.json" }
          emit { url = base .. "/status/404" }
          emit { url = "ftp://x/" }
        end,
        on_response = function(res, obj)
          if res.status == 404 then
            obj:after(1, function() coroutine.yield() end)
            return { status = 404 }
          end
          local id = res:json().id
          if id == 1 then coroutine.yield() end
          -- after a wait of fetchtree's own, a bare yield is still one
          local again = ft.get(base .. "/item/3.json")
          if id == 2 then coroutine.yield("x") end
          return { never = true }
        end,
        on_error = function(err) coroutine.yield() end,
      }
    ]], "-q", { srv.base }, { bin = "timeout 60 " .. H.bin })
    assert.equal(0, r.rc, r.stderr)
    assert.equal(5, #r.records, r.stdout) -- one per request, and the alarm's
    local msgs = {}
    for _, rec in ipairs(r.records) do
      assert.is_nil(rec.never)
      if rec.status ~= 404 then
        assert.equal("script", rec.error.kind)
        assert.truthy(rec.error.message:match("^coroutine%.yield%(%) in a handler"), rec.error.message)
        msgs[#msgs + 1] = rec.object or rec.url
      end
    end
    table.sort(msgs)
    assert.same({ "/host/127.0.0.1", "ftp://x/", srv.base .. "/item/1.json", srv.base .. "/item/2.json" }, msgs)
    for _, rec in ipairs(r.records) do
      if rec.url == srv.base .. "/item/1.json" then assert.same({ n = 1 }, rec.meta) end
    end
  end)

  it("gives a request whose meta is not JSON exactly one record, whatever fails", function()
    local src = [[
      local base, mode = arg[1], arg[2]
      local spec = {
        retries = 0,
        start = function(emit)
          emit { url = base .. "/item/1.json", meta = function() end }
          emit { url = base .. "/item/2.json", meta = 0/0 }
          emit { url = "ftp://x/", meta = print }
          emit { url = base .. "/status/500", meta = { f = print } }
        end,
      }
      if mode == "raise" then spec.on_response = function() error("boom") end end
      if mode == "raise_value" then spec.on_response = function() error({}) end end
      if mode == "on_error" then spec.on_error = function() error("boom") end end
      return spec
    ]]
    for _, mode in ipairs { "none", "raise", "raise_value", "on_error" } do
      local r = run(src, "-q", { srv.base, mode })
      assert.equal(0, r.rc, mode .. ": " .. r.stderr)
      assert.equal(4, #r.records, mode .. ": " .. r.stdout .. r.stderr)
      local errors = 0
      for _, rec in ipairs(r.records) do
        if rec.error ~= null then errors = errors + 1 end
        assert.equal("string", type(rec.meta), mode)
        assert.truthy(rec.meta:match("^meta not written: cannot write"), rec.meta)
      end
      assert.equal((mode == "none" or mode == "on_error") and 1 or 4, errors, mode)
    end
  end)

  it("writes records as fetch does: exact numbers, plain slashes, valid UTF-8; what JSON cannot hold fails that response", function()
    local r = run([[
      local base = arg[1]
      return {
        start = function(emit)
          emit { url = base .. "/item/1.json" }
          emit { url = base .. "/item/2.json" }
        end,
        on_response = function(res)
          if res:json().id == 2 then return { bad = print } end
          return { big = 2^62 + 2^10, id = 123456789012345, f = 0.1, path = "/a/b",
                   raw = "caf\195\169 \255", list = { 1, nil, 3 } }
        end,
      }
    ]], "-q", { srv.base })
    assert.equal(0, r.rc)
    assert.equal(2, #r.records)
    local good, bad = r.records[1], r.records[2]
    if good.error then good, bad = bad, good end
    local line = r.stdout:match("[^\n]*\"big\"[^\n]*")
    assert.truthy(line:find('"big":4611686018427388928', 1, true), line)
    assert.truthy(line:find('"id":123456789012345', 1, true), line)
    assert.truthy(line:find('"f":0.1', 1, true), line)
    assert.truthy(line:find('"path":"/a/b"', 1, true), line)
    assert.truthy(line:find('"list":[1,null,3]', 1, true), line)
    assert.equal("caf\195\169 \239\191\189", good.raw) -- the bad byte is U+FFFD
    assert.equal("script", bad.error.kind)
    assert.truthy(bad.error.message:match("cannot write a function as JSON"), bad.error.message)
  end)

  it("asks for compressed bodies when the spec says compressed = true", function()
    local src = [[
      local base, c = arg[1], arg[2] == "yes"
      return {
        compressed = c,
        start = function(emit) emit { url = base .. "/echo?c=" .. arg[2] } end,
        on_response = function(res) return { ae = res:json().headers["accept-encoding"] or "none" } end,
      }
    ]]
    assert.truthy(run(src, "-q", { srv.base, "yes" }).records[1].ae:match("gzip"))
    assert.equal("none", run(src, "-q", { srv.base, "no" }).records[1].ae)
    assert.truthy(run(src, "-q --compressed", { srv.base, "cli" }).records[1].ae:match("gzip"))
  end)

  it("calls on_error for requests that failed for good, and survives its errors", function()
    local r = run([[
      local base = arg[1]
      return {
        retries = 0,
        start = function(emit)
          emit { url = base .. "/reset" }
          emit { url = base .. "/drop" }
          emit { url = "ftp://x/" }
        end,
        on_response = function(res) return { ok = true } end,
        on_error = function(err, req)
          if req.url:find("drop") then error("on_error failed") end
          return { failed = req.url, kind = err.kind, attempts = err.attempts }
        end,
      }
    ]], "-q", { srv.base })
    assert.equal(0, r.rc)
    assert.equal(3, #r.records)
    local kinds = {}
    for _, rec in ipairs(r.records) do
      if rec.failed then kinds[#kinds + 1] = rec.kind
      else kinds[#kinds + 1] = rec.error.kind end
    end
    table.sort(kinds)
    assert.same({ "reset", "script", "url" }, kinds)
  end)

  it("stops issuing requests when start raises, finishes the rest, exits non-zero", function()
    local r = run([[
      local base = arg[1]
      return {
        concurrency = 2,
        start = function(emit)
          for i = 1, 4 do emit { url = base .. "/delay/100?s" .. i } end
          error("start broke")
        end,
        on_response = function(res) return { url = res.url } end,
      }
    ]], "-q", { srv.base })
    assert.equal(1, r.rc)
    assert.equal(4, #r.records)
    assert.truthy(r.stderr:match("start broke"))
  end)

  it("names the script's line for a bad request from start's emit and from obj:fetch", function()
    -- obj:fetch: a request table without a URL, and (with --state) meta that
    -- is not JSON; each fails that response, naming the handler's line
    local db = H.tmpname(".db")
    local r = run([[
      local base = arg[1]
      return {
        start = function(emit)
          emit { url = base .. "/item/1.json" }
          emit { url = base .. "/item/2.json" }
        end,
        on_response = function(res, obj)
          if res.request.url:find("/1.json", 1, true) then
            obj:fetch { url = 42 }                                   -- line 9
          else
            obj:fetch { url = base .. "/item/3.json", meta = print } -- line 11
          end
        end,
      }
    ]], "-q --state " .. db, { srv.base })
    assert.equal(0, r.rc, r.stderr)
    local messages = {}
    for _, rec in ipairs(r.records) do messages[#messages + 1] = rec.error.message end
    assert.equal(2, #messages)
    local all = table.concat(messages, "\n")
    assert.truthy(all:find(r.path .. ":9: a request needs a url string", 1, true), all)
    assert.truthy(all:find(r.path .. ":11: with --state, meta must be JSON", 1, true), all)
    -- start's emit: the same mistakes stop the run, naming start's line
    for _, case in ipairs { { "url = 42", "a request needs a url string" },
                            { "url = arg[1] .. '/item/1.json', meta = print", "with --state, meta must be JSON" } } do
      r = run("return { start = function(emit)\n emit { " .. case[1] .. " }\n end }",
              "-q --state " .. H.tmpname(".db"), { srv.base })
      assert.equal(1, r.rc)
      assert.truthy(r.stderr:find(r.path .. ":2: " .. case[2], 1, true), r.stderr)
    end
  end)

  it("lets a handler wait for ft.fetch_all after the script used ft.get while loading", function()
    -- ft.get at load time gives the API a loop of its own; fetch_all in a
    -- handler then steps that loop instead of yielding to the run's (it
    -- used to yield and hang: the timeout turns a hang into a failure)
    local r = run([[
      local base = arg[1]
      local first = ft.get(base .. "/item/1.json")
      return {
        start = function(emit) emit { url = base .. "/item/2.json" } end,
        on_response = function(res)
          local list = ft.fetch_all { base .. "/item/3.json", base .. "/item/4.json" }
          return { first = first.status, a = list[1]:json().id, b = list[2]:json().id }
        end,
      }
    ]], "-q", { srv.base }, { bin = "timeout 30 " .. H.bin })
    assert.equal(0, r.rc, r.stderr)
    assert.equal(1, #r.records)
    assert.same({ first = 200, a = 3, b = 4 }, r.records[1])
  end)

  it("refuses a script that does not load, before any request", function()
    H.sleep(0.1) -- past the server's 50 ms log flush: the previous test's requests are in
    local before = #srv.log()
    local cases = {
      { "return {", "1: " },                                       -- syntax error, file:line
      { "error('no')", ":1: no" },                                 -- raises while loading
      { "return 42", "must return a table" },
      { "return { start = 5 }", "field 'start': must be a function" },
      { "return { concurrency = 0, start = function() end }", "concurrency" },
    }
    for _, c in ipairs(cases) do
      local r = run(c[1], "-q")
      assert.are_not.equal(0, r.rc, c[1])
      assert.truthy(r.stderr:find(c[2], 1, true), c[1] .. " -> " .. r.stderr)
      assert.truthy(r.stderr:find(r.path, 1, true), "names the file: " .. r.stderr)
    end
    local r = run("", "-q")
    assert.are_not.equal(0, r.rc)
    assert.equal(1, H.sh(H.bin .. " run /no/such/script.lua 2>/dev/null"))
    assert.equal(before, #srv.log())
  end)

  it("consumes start lazily, as slots free up", function()
    local r = run([[
      local base = arg[1]
      local emitted = 0
      return {
        concurrency = 4,
        start = function(emit)
          for i = 1, 2000 do
            emitted = emitted + 1
            emit { url = base .. "/item/" .. i .. ".json?lazy" }
          end
        end,
        on_response = function(res) return { emitted = emitted } end,
      }
    ]], "-q", { srv.base })
    assert.equal(2000, #r.records)
    -- when the first response came back, start had emitted about the
    -- concurrency's worth of requests, not the whole list
    assert.truthy(r.records[1].emitted <= 4 + 2, "emitted " .. r.records[1].emitted)
  end)

  it("lets command-line options override the spec", function()
    local src = [[
      local base = arg[1]
      return {
        retries = 5, backoff_base = 1,
        start = function(emit) emit { url = base .. "/flaky/ovr" .. arg[2] .. "?fails=3" } end,
        on_response = function(res) return { status = res.status, attempts = res.attempts } end,
        on_error = function(err) return { status = err.status, attempts = err.attempts } end,
      }
    ]]
    local r = run(src, "-q", { srv.base, "a" })
    assert.equal(4, r.records[1].attempts)
    r = run(src, "-q --retries 1", { srv.base, "b" })
    assert.equal(2, r.records[1].attempts)
  end)

  it("stops a handler that never returns on SIGINT (interpreted code)", function()
    local path = H.tmpname(".lua")
    H.write(path, [[
      local base = arg[1]
      jit.off() -- a JIT-compiled loop cannot be interrupted: see the README
      return {
        start = function(emit) emit { url = base .. "/item/1.json?spin" } end,
        on_response = function(res) local x = 0 while true do x = x + 1 end end,
      }
    ]])
    local out, err = H.tmpname(".out"), H.tmpname(".err")
    local rc = H.sh(string.format("%s run %s -- %s > %s 2> %s & pid=$!; sleep 1; kill -INT $pid; wait $pid",
      H.bin, path, srv.base, out, err))
    assert.equal(130, rc)
    assert.truthy(H.read(err):match("interrupted after"))
  end)

  it("stops cleanly on SIGINT with the records so far", function()
    local path = H.tmpname(".lua")
    H.write(path, [[
      local base = arg[1]
      return {
        concurrency = 5,
        start = function(emit)
          emit { url = base .. "/item/1.json" }
          for i = 1, 100 do emit { url = base .. "/stall?int" .. i } end
        end,
        on_response = function(res) return { url = res.url } end,
      }
    ]])
    local out, err = H.tmpname(".out"), H.tmpname(".err")
    local rc = H.sh(string.format("%s run %s -- %s > %s 2> %s & pid=$!; sleep 0.8; kill -INT $pid; wait $pid",
      H.bin, path, srv.base, out, err))
    assert.equal(130, rc)
    local n = 0
    for _ in H.read(out):gmatch("[^\n]+") do n = n + 1 end
    assert.equal(1, n)
    assert.truthy(H.read(err):match("interrupted after"))
  end)
end)
