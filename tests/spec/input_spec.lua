-- input_spec.lua - request input that cannot be sent as given (framing
-- headers, header injection, NUL bytes, bad methods, bodies that are not
-- strings or tables) ends as an `input` or `url` error in every way a
-- request comes in: fetch lines, --header, the Lua API, emit and obj:fetch.
-- Nothing of it reaches the server: its request log says so.
local H = require "helper"
local null = H.null

local module_dir = os.getenv("FT_MODULE_DIR") or "build"

-- The requests the server logged whose target contains tag.
local function logged(srv, tag)
  H.sleep(0.1) -- the server writes its log within 50 ms
  local n = 0
  for _, row in ipairs(srv.log()) do
    if row.target:find(tag, 1, true) then n = n + 1 end
  end
  return n
end

-- Requests that must be refused, with the kind and a pattern of the
-- message; `headers`, `method` and `body` as in a JSON request line.
local refused = {
  { headers = { ["Content-Length"] = "5" }, body = "helloGET /echo?smuggled HTTP/1.1\r\nX: ",
    method = "POST", msg = "Content%-Length" },
  { headers = { ["content-length"] = "0" }, msg = "Content%-Length" },
  { headers = { ["Transfer-Encoding"] = "chunked" }, body = "0\r\n\r\n", msg = "Transfer%-Encoding" },
  { headers = { "Transfer-Encoding;" }, msg = "Transfer%-Encoding" },
  { headers = { TE = "trailers" }, msg = "TE" },
  { headers = { Connection = "close" }, msg = "Connection" },
  { headers = { ["Keep-Alive"] = "timeout=5" }, msg = "Keep%-Alive" },
  { headers = { Upgrade = "h2c" }, msg = "Upgrade" },
  { headers = { Expect = "100-continue" }, body = "x", msg = "Expect" },
  { headers = { Host = "other.example" }, msg = "Host" },
  { headers = { "Host:" }, msg = "Host" },
  { headers = { ["X-A"] = "a\r\nContent-Length: 0" }, msg = "line break" },
  { headers = { ["X-A"] = "a\nb" }, msg = "line break" },
  { headers = { ["X-A"] = "a\0b" }, msg = "NUL" },
  { headers = { ["X-A"] = "a\1b" }, msg = "control byte" },
  { headers = { ["X A"] = "b" }, msg = "not a token" },
  { headers = { ["X-A\r\nY"] = "b" }, msg = "not a token" },
  { headers = { "no colon here" }, msg = "not a token" },
  { headers = { "NoColon" }, msg = "no ':'" },
  { headers = { ": empty name" }, msg = "empty name" },
  { method = "GET /x HTTP/1.1\r\nX:", msg = "bad method" },
  { method = "G ET", msg = "bad method" },
  { method = "GE\0T", msg = "bad method.*NUL" },
  { method = "CONNECT", msg = "CONNECT" },
  { method = "HEAD", body = "x", msg = "HEAD with a body" },
}

describe("request input", function()
  local srv
  setup(function() srv = H.server() end)
  teardown(function() srv.stop() end)

  it("refuses a Content-Length that would smuggle a request on a kept-alive connection (-c 1)", function()
    local line = H.json.encode {
      url = srv.base .. "/echo?smuggle=1", method = "POST",
      headers = { ["Content-Length"] = "5", Authorization = "Bearer s1" },
      body = "helloGET /echo?smuggled=1 HTTP/1.1\r\nHost: x\r\nX-S: ",
    }
    local r = H.fetch({ line, srv.base .. "/echo?next=1" }, "-q -c 1 --ordered --timeout 5")
    assert.equal(0, r.rc, r.stderr)
    assert.equal(2, #r.records)
    local bad, nxt = r.by_index[0], r.by_index[1]
    assert.equal(null, bad.status)
    assert.equal("input", bad.error.kind)
    assert.truthy(bad.error.message:find("Content-Length", 1, true), bad.error.message)
    assert.equal(0, bad.attempts)
    -- the next line's record is its own answer, with none of the first's headers
    assert.equal(200, nxt.status)
    local echo = H.json.decode(nxt.body)
    assert.equal("/echo?next=1", echo.target)
    assert.is_nil(echo.headers.authorization)
    assert.is_nil(echo.headers["x-s"])
    assert.equal("127.0.0.1:" .. srv.port, echo.headers.host)
    assert.equal(0, logged(srv, "smuggle"))
    assert.equal(1, logged(srv, "next=1"))
  end)

  it("refuses framing headers, header injection, bad names and bad methods in JSON lines", function()
    local lines = {}
    for i, c in ipairs(refused) do
      lines[i] = H.json.encode { url = srv.base .. "/echo?fl=" .. i, method = c.method,
                                 headers = c.headers, body = c.body }
    end
    local r = H.fetch(lines, "-q -c 1 --timeout 5")
    assert.equal(0, r.rc, r.stderr)
    assert.equal(#refused, #r.records)
    for i, c in ipairs(refused) do
      local rec = r.by_index[i - 1]
      assert.equal("table", type(rec.error), "line " .. i .. " was fetched")
      assert.equal("input", rec.error.kind, "line " .. i)
      assert.truthy(rec.error.message:find(c.msg), "line " .. i .. ": " .. rec.error.message)
      assert.equal(0, rec.attempts)
      assert.equal(srv.base .. "/echo?fl=" .. i, rec.url)
    end
    assert.equal(0, logged(srv, "fl="))
  end)

  it("sends what is allowed: a Host naming the URL's host, Expect: to turn 100-continue off", function()
    local lines = {
      H.json.encode { url = srv.base .. "/echo?ok=1", headers = { Host = "127.0.0.1:" .. srv.port } },
      H.json.encode { url = srv.base .. "/echo?ok=2", headers = { Expect = "" }, body = "b" },
      H.json.encode { url = srv.base .. "/echo?ok=3", headers = { "X-Empty;" } },
    }
    local r = H.fetch(lines, "-q")
    for i = 0, 2 do
      assert.equal(200, r.by_index[i].status, r.stdout)
    end
    assert.equal("", H.json.decode(r.by_index[2].body).headers["x-empty"])
  end)

  it("refuses a bad or framing --header before fetching anything", function()
    for _, h in ipairs { "Content-Length: 5", "Transfer-Encoding: chunked", "Connection: close",
                         "X A: b", "NoColon", ": v" } do
      local r = H.fetch({ srv.base .. "/echo?hopt=1" }, "-q --timeout 5 -H " .. H.q(h))
      assert.equal(2, r.rc, h)
      assert.equal(0, #r.records, h)
      assert.truthy(r.stderr:find("header", 1, true), r.stderr)
    end
    -- a Host that disagrees is judged per URL
    local r = H.fetch({ srv.base .. "/echo?hopt=2" }, "-q -H 'Host: elsewhere'")
    assert.equal("input", r.records[1].error.kind)
    assert.equal(0, logged(srv, "hopt="))
  end)

  it("refuses a URL with a NUL byte, raw or as \\u0000, rather than fetching it cut short", function()
    local input = srv.base .. "/echo?nul=1\0/more\n"
      .. '{"url":"' .. srv.base .. '/echo?nul=2\\u0000/more"}\n'
      .. srv.base .. "/echo?nul=3\n"
    local r = H.fetch(input, "-q --ordered")
    assert.equal(3, #r.records)
    for i = 0, 1 do
      local rec = r.by_index[i]
      assert.equal("url", rec.error.kind)
      assert.truthy(rec.error.message:find("NUL", 1, true))
      assert.truthy(rec.url:find("%00/more", 1, true), rec.url)
      assert.equal(0, rec.attempts)
    end
    assert.equal(200, r.by_index[2].status)
    assert.equal(0, logged(srv, "nul=1"))
    assert.equal(0, logged(srv, "nul=2"))
  end)

  it("sends a table body as JSON with Content-Type application/json, unless the request sets one", function()
    local lines = {
      '{"url":"' .. srv.base .. '/echo","method":"POST","body":{"a":1,"b":[1,2]}}',
      '{"url":"' .. srv.base .. '/echo","method":"POST","body":{"a":1},"headers":{"content-type":"text/x"}}',
      '{"url":"' .. srv.base .. '/echo?num=1","method":"POST","body":5}',
      '{"url":"' .. srv.base .. '/echo?num=2","method":"POST","body":true}',
    }
    local r = H.fetch(lines, "-q --ordered")
    local e1 = H.json.decode(r.by_index[0].body)
    assert.equal("application/json", e1.headers["content-type"])
    assert.same({ a = 1, b = { 1, 2 } }, H.json.decode(e1.body))
    local e2 = H.json.decode(r.by_index[1].body)
    assert.equal("text/x", e2.headers["content-type"])
    assert.same({ a = 1 }, H.json.decode(e2.body))
    for i = 2, 3 do
      assert.equal("input", r.by_index[i].error.kind)
      assert.truthy(r.by_index[i].error.message:find("body must be a string", 1, true))
    end
    assert.equal(0, logged(srv, "num="))
  end)

  for _, how in ipairs { "luajit", "fetchtree" } do
    it("refuses the same in the Lua API under " .. how .. " (ft.request, ft.get)", function()
      local src = [[
        local ft = require 'fetchtree'
        local B, T = arg[1], arg[2]
        local function show(tag, r, e)
          print(tag, r and r.status or "nil", e and e.kind or "-", e and e.attempts or "-",
                e and e.message or "-")
        end
        show("cl", ft.request { url = B .. "/echo?" .. T .. "=cl", method = "POST", body = "helloXX",
                                headers = { ["Content-Length"] = "5" } })
        show("te", ft.request { url = B .. "/echo?" .. T .. "=te", headers = { ["Transfer-Encoding"] = "chunked" } })
        show("crlf", ft.get(B .. "/echo?" .. T .. "=crlf", { headers = { X = "a\r\nY: b" } }))
        show("host", ft.get(B .. "/echo?" .. T .. "=host", { headers = { Host = "evil" } }))
        show("method", ft.request { url = B .. "/echo?" .. T .. "=method", method = "G ET" })
        show("nul", ft.get(B .. "/echo?" .. T .. "=nul\0x"))
        local r = ft.request { url = B .. "/echo?" .. T .. "=json", body = { a = 1 } }
        local echo = r:json()
        print("json", echo.headers["content-type"], echo.body)
        local ok, err = pcall(ft.request, { url = B .. "/echo?" .. T .. "=fn", body = function() end })
        print("fn", ok, err)
      ]]
      local path = H.tmpname(".lua")
      H.write(path, src)
      local out, errf = H.tmpname(".out"), H.tmpname(".err")
      local cmd = how == "luajit"
        and string.format("LUA_CPATH='%s/?.so;;' luajit %s %s", module_dir, path, srv.base .. " " .. how)
        or string.format("%s lua %s %s %s", H.bin, path, srv.base, how)
      local rc = H.sh(string.format("%s > %s 2> %s < /dev/null", cmd, out, errf))
      local stdout = H.read(out) or ""
      assert.equal(0, rc, H.read(errf))
      local got = {}
      for line in stdout:gmatch("[^\n]+") do
        local tag, rest = line:match("^(%S+)\t(.*)$")
        got[tag] = rest
      end
      for tag, want in pairs {
        cl = "^nil\tinput\t0\theader refused: Content%-Length",
        te = "^nil\tinput\t0\theader refused: Transfer%-Encoding",
        crlf = "^nil\tinput\t0\theader X: a line break",
        host = "^nil\tinput\t0\theader refused: Host",
        method = "^nil\tinput\t0\tbad method",
        nul = "^nil\turl\t0\tinvalid URL: it contains a NUL byte",
        json = '^application/json\t{"a":1}$',
        fn = "^false\t.*body must be a string, or a table",
      } do
        assert.truthy(got[tag] and got[tag]:find(want), tag .. ": " .. tostring(got[tag]))
      end
      assert.equal(1, logged(srv, how .. "="))  -- the JSON body only
    end)
  end

  it("refuses the same in emit and obj:fetch, each with its own record, never taken for a duplicate", function()
    local r = H.run([[
      local B = arg[1]
      return {
        concurrency = 1,
        start = function(emit)
          emit { url = B .. "/echo?run=cl", method = "POST", body = "helloXX",
                 headers = { ["Content-Length"] = "5" } }
          emit { url = B .. "/echo?run=nul\0x" }
          emit { url = B .. "/echo?run=json", method = "POST", body = { a = 1 } }
          emit { url = B .. "/echo?run=parent" }
        end,
        on_response = function(res, obj)
          if res.url:find("parent", 1, true) then
            obj:fetch { url = "/echo?run=te", headers = { ["Transfer-Encoding"] = "chunked" } }
            obj:fetch { url = "/echo?run=m", method = "GET\r\nX:" }
            -- not taken for the GET of this URL, fetched already
            obj:fetch { url = res.url, method = "GET\0X", meta = { tag = "dup" } }
            return { tag = "parent" }
          end
          local echo = res:json()
          return { tag = "json", ct = echo.headers["content-type"], body = echo.body }
        end,
        on_error = function(err, req)
          return { tag = req.meta and req.meta.tag or req.url:match("run=(%w+)"), kind = err.kind, message = err.message,
                   attempts = err.attempts }
        end,
      }
    ]], "-q -- " .. srv.base)
    assert.equal(0, r.rc, r.stderr)
    local by = {}
    for _, rec in ipairs(r.records) do by[rec.tag] = rec end
    assert.equal("input", by.cl and by.cl.kind)
    assert.truthy(by.cl.message:find("Content-Length", 1, true))
    assert.equal(0, by.cl.attempts)
    assert.equal("url", by.nul and by.nul.kind)
    assert.truthy(by.nul.message:find("NUL", 1, true))
    assert.equal("input", by.te and by.te.kind)
    assert.truthy(by.te.message:find("Transfer-Encoding", 1, true))
    assert.equal("input", by.m and by.m.kind)
    assert.truthy(by.m.message:find("bad method", 1, true))
    assert.equal("input", by.dup and by.dup.kind)
    assert.truthy(by.dup.message:find("NUL", 1, true))
    assert.equal("application/json", by.json and by.json.ct)
    assert.equal('{"a":1}', by.json.body)
    assert.truthy(by.parent)
    for _, tag in ipairs { "run=cl", "run=nul", "run=te", "run=m" } do
      assert.equal(0, logged(srv, tag), tag)
    end
  end)
end)
