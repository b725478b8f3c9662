-- fetch_spec.lua - `fetchtree fetch` against the fixture server: records,
-- input forms, every failure yielding its record, security defaults.
local H = require "helper"
local null = H.null

describe("fetchtree fetch", function()
  local srv
  setup(function() srv = H.server { hosts = { "127.0.0.1", "127.0.0.2" } } end)
  teardown(function() srv.stop() end)

  it("writes one record per URL line with the documented fields", function()
    local r = H.fetch({ srv.base .. "/item/1.json", srv.base .. "/item/2.json" }, "-q")
    assert.equal(0, r.rc)
    assert.equal(2, #r.records)
    local rec = r.by_index[0]
    assert.equal(srv.base .. "/item/1.json", rec.url)
    assert.equal(200, rec.status)
    assert.equal("application/json", rec.headers["content-type"])
    assert.equal(1, H.json.decode(rec.body).id)
    assert.equal(1, rec.attempts)
    assert.is_number(rec.elapsed_ms)
    assert.equal(null, rec.error)
    assert.equal(2, H.json.decode(r.by_index[1].body).id)
  end)

  it("takes JSON request lines: method, headers, body, meta passed through", function()
    local line = H.json.encode {
      url = srv.base .. "/echo", method = "PUT",
      headers = { ["X-Test"] = "yes" }, body = "hello body",
      meta = { tag = "t1", n = 7, list = { 1, 2 } },
    }
    local r = H.fetch({ line }, "-q")
    local rec = r.records[1]
    assert.equal(200, rec.status)
    local echo = H.json.decode(rec.body)
    assert.equal("PUT", echo.method)
    assert.equal("yes", echo.headers["x-test"])
    assert.equal("hello body", echo.body)
    assert.same({ tag = "t1", n = 7, list = { 1, 2 } }, rec.meta)
  end)

  it("writes meta and a table body back with exact numbers and plain slashes", function()
    local line = '{"url":"' .. srv.base .. '/echo","method":"POST",'
      .. '"body":{"id":1234567890123456,"p":"/a"},"meta":{"id":1234567890123456,"f":0.1,"p":"/a/b"}}'
    local r = H.fetch({ line }, "-q")
    assert.truthy(r.stdout:find('"meta":{', 1, true), r.stdout)
    assert.truthy(r.stdout:find('"id":1234567890123456', 1, true), r.stdout)
    assert.truthy(r.stdout:find('"p":"/a/b"', 1, true), r.stdout)
    assert.truthy(r.stdout:find('"f":0.1', 1, true), r.stdout)
    local sent = H.json.decode(r.records[1].body).body
    assert.truthy(sent:find('"id":1234567890123456', 1, true), sent)
    assert.truthy(sent:find('"p":"/a"', 1, true), sent)
  end)

  it("adds --header to every request and sends a fetchtree User-Agent", function()
    local r = H.fetch({ srv.base .. "/echo" }, "-q -H 'X-Api-Key: k1'")
    local echo = H.json.decode(r.records[1].body)
    assert.equal("k1", echo.headers["x-api-key"])
    assert.truthy(echo.headers["user-agent"]:match("^fetchtree/"))
  end)

  it("sends a User-Agent, and Accept-Encoding with --compressed only, with or without headers of its own", function()
    local function echo_of(args)
      local r = H.fetch({ srv.base .. "/echo" }, "-q " .. (args or ""))
      return H.json.decode(r.records[1].body).headers
    end
    local h = echo_of()
    assert.truthy(h["user-agent"]:match("^fetchtree/%d"))
    assert.is_nil(h["accept-encoding"])
    assert.truthy(echo_of("--compressed")["accept-encoding"]:match("gzip"))
    assert.equal("probe/2", echo_of("-A probe/2")["user-agent"])
    h = echo_of("-A probe/2 -H 'User-Agent: mine'")
    assert.equal("mine", h["user-agent"])
    assert.is_nil(h["accept-encoding"])
    h = echo_of("--compressed -H 'X-A: 1'")
    assert.truthy(h["accept-encoding"]:match("gzip"))
    assert.equal("identity", echo_of("-H 'Accept-Encoding: identity'")["accept-encoding"])
  end)

  it("writes records in completion order, or input order with --ordered", function()
    local lines = { srv.base .. "/delay/400" }
    for i = 1, 5 do lines[#lines + 1] = srv.base .. "/item/" .. i .. ".json" end
    local r = H.fetch(lines, "-q")
    assert.equal(6, #r.records)
    assert.equal(0, r.records[6].index) -- the slow one finishes last
    r = H.fetch(lines, "-q --ordered")
    for i, rec in ipairs(r.records) do assert.equal(i - 1, rec.index) end
  end)

  it("writes a body that is not UTF-8 as body_base64, and drops parts on request", function()
    local r = H.fetch({ srv.base .. "/bytes/300?binary=1", srv.base .. "/bytes/10" }, "-q --ordered")
    local bin = r.records[1]
    assert.is_nil(bin.body)
    assert.is_string(bin.body_base64)
    assert.equal(400, #bin.body_base64) -- 300 bytes -> 400 base64 characters
    assert.equal("abcdefghij", r.records[2].body)
    r = H.fetch({ srv.base .. "/bytes/10" }, "-q --no-body --no-headers")
    assert.is_nil(r.records[1].body)
    assert.is_nil(r.records[1].headers)
    assert.equal(200, r.records[1].status)
  end)

  it("treats HTTP statuses as results, not errors", function()
    local r = H.fetch({ srv.base .. "/status/404", srv.base .. "/status/418" }, "-q --ordered")
    assert.equal(404, r.records[1].status)
    assert.equal(null, r.records[1].error)
    assert.equal(418, r.records[2].status)
  end)

  it("yields exactly one record per line whatever goes wrong", function()
    local dead = H.server()
    local dead_base = dead.base
    dead.stop()
    H.sleep(0.1)
    local lines = {
      "{not json",                                   -- 0 input
      "this is not a url",                           -- 1 url
      "file:///etc/passwd",                          -- 2 url (scheme)
      dead_base .. "/item/1.json",                   -- 3 connect
      srv.base .. "/stall",                          -- 4 timeout
      srv.base .. "/reset",                          -- 5 reset
      srv.base .. "/bytes/5000",                     -- 6 too_large
      srv.base .. "/truncated",                      -- 7 protocol
      srv.base .. "/malformed",                      -- 8 protocol
      srv.base .. "/gzip-big/10000000",              -- 9 too_large after decoding
      '{"url": 5}',                                  -- 10 input
      srv.base .. "/item/3.json",                    -- 11 fine
    }
    local r = H.fetch(lines, "-q --retries 0 --timeout 0.5 --max-body 4096")
    assert.equal(0, r.rc)
    assert.equal(#lines, #r.records)
    local kinds = {}
    for i = 0, #lines - 1 do
      local rec = r.by_index[i]
      assert.truthy(rec, "no record for line " .. i)
      kinds[i] = rec.error ~= null and rec.error.kind or "ok"
      if rec.error ~= null then assert.is_string(rec.error.message) end
    end
    assert.same({
      [0] = "input", "url", "url", "connect", "timeout", "reset", "too_large",
      "protocol", "protocol", "too_large", "input", "ok",
    }, kinds)
    -- no response arrived: status is null
    for _, i in ipairs { 0, 1, 2, 3, 4, 5, 8 } do
      assert.equal(null, r.by_index[i].status, "line " .. i)
    end
    assert.truthy(r.by_index[2].error.message:match("scheme"))
  end)

  it("follows redirects up to the limit", function()
    local r = H.fetch({ srv.base .. "/redirect/3", srv.base .. "/redirect/12" }, "-q --ordered")
    assert.equal(200, r.records[1].status)
    assert.equal(srv.base .. "/redirect/0", r.records[1].final_url)
    assert.equal("done\n", r.records[1].body)
    assert.equal("redirect", r.records[2].error.kind)
    r = H.fetch({ srv.base .. "/redirect/3" }, "-q --max-redirects 2")
    assert.equal("redirect", r.records[1].error.kind)
    r = H.fetch({ srv.base .. "/redirect/3" }, "-q --max-redirects 0")
    assert.equal(302, r.records[1].status)
  end)

  it("refuses redirects to schemes other than http and https", function()
    local lines = {
      srv.base .. "/redirect-to?url=file%3A%2F%2F%2Fetc%2Fpasswd",
      srv.base .. "/redirect-to?url=ftp%3A%2F%2F127.0.0.1%2Fx",
    }
    local r = H.fetch(lines, "-q --ordered")
    for _, rec in ipairs(r.records) do
      assert.equal("redirect", rec.error.kind)
      assert.equal(302, rec.status)
      assert.falsy((rec.body or ""):match("root:"))
    end
  end)

  it("does not send credentials to another host on redirect", function()
    local function via(target)
      return H.json.encode {
        url = srv.base .. "/redirect-to?url=" .. target:gsub("[:/]", function(c)
          return string.format("%%%02X", c:byte())
        end),
        headers = { Authorization = "Bearer secret", Cookie = "s=1" },
      }
    end
    local r = H.fetch({ via(srv.base2 .. "/echo"), via(srv.base .. "/echo") }, "-q --ordered")
    local other = H.json.decode(r.records[1].body)
    assert.equal("127.0.0.2:" .. srv.port, other.headers.host)
    assert.is_nil(other.headers.authorization)
    assert.is_nil(other.headers.cookie)
    -- same host: the credentials stay (so the check above is meaningful)
    local same = H.json.decode(r.records[2].body)
    assert.equal("Bearer secret", same.headers.authorization)
  end)

  it("goes through the proxy http_proxy names, and straight when none is set", function()
    local url = srv.base .. "/item/1.json?proxy"
    -- port 1 on loopback: nothing listens, so going through it fails to connect
    local r = H.fetch({ url }, "-q --retries 0", { bin = "http_proxy=http://127.0.0.1:1 " .. H.bin })
    assert.equal("connect", r.records[1].error.kind)
    r = H.fetch({ url }, "-q --retries 0", { bin = "env -u http_proxy -u all_proxy " .. H.bin })
    assert.equal(200, r.records[1].status)
  end)

  it("decodes compressed bodies, asked for with --compressed or not", function()
    for _, args in ipairs { "-q --ordered", "-q --ordered --compressed" } do
      local r = H.fetch({ srv.base .. "/gzip/5", '{"url":"' .. srv.base .. '/gzip/6","headers":{"X-A":"1"}}' }, args)
      assert.equal("gzip", r.records[1].headers["content-encoding"])
      assert.equal(5, H.json.decode(r.records[1].body).id)
      assert.equal(6, H.json.decode(r.records[2].body).id)
    end
  end)

  it("keeps connections alive and reuses them", function()
    local lines = {}
    for i = 1, 200 do lines[i] = srv.base .. "/item/" .. i .. ".json?reuse" end
    local r = H.fetch(lines, "-q -c 4")
    assert.equal(200, #r.records)
    local conns = {}
    for _, row in ipairs(srv.log_for("/item/", 200)) do
      if row.target:match("%?reuse$") then conns[row.conn] = true end
    end
    local n = 0
    for _ in pairs(conns) do n = n + 1 end
    assert.truthy(n >= 1 and n <= 4, "connections used: " .. n)
  end)

  it("caps requests in flight with --concurrency and per host with --host-connections", function()
    local function peak(tag)
      -- every request of this tag takes 300 ms; count arrivals closer than that
      local times = {}
      for _, row in ipairs(srv.log_for("/delay/300?" .. tag)) do times[#times + 1] = row.t end
      return H.max_in_window(times, 0.25), #times
    end
    local lines = {}
    for i = 1, 12 do lines[i] = srv.base .. "/delay/300?c" .. i end
    H.fetch(lines, "-q -c 3")
    local p, n = peak("c")
    assert.equal(12, n)
    assert.equal(3, p)
    lines = {}
    for i = 1, 8 do lines[i] = srv.base .. "/delay/300?h" .. i end
    H.fetch(lines, "-q -c 8 --host-connections 2")
    p, n = peak("h")
    assert.equal(8, n)
    assert.equal(2, p)
  end)

  it("writes to --out and exits 0 after failures", function()
    local out = H.tmpname(".jsonl")
    local r = H.fetch({ srv.base .. "/status/500" }, "-q --retries 0 --out " .. out)
    assert.equal(0, r.rc)
    assert.equal("", r.stdout)
    local rec = H.json.decode(H.read(out))
    assert.equal(500, rec.status)
  end)

  it("reports usage errors clearly with a non-zero exit, and has --help and --version", function()
    local r = H.fetch({}, "--concurrency zero")
    assert.equal(2, r.rc)
    assert.truthy(r.stderr:match("%-%-concurrency"))
    r = H.fetch({}, "/no/such/file")
    assert.equal(2, r.rc)
    assert.truthy(r.stderr:match("/no/such/file"))
    assert.equal(0, H.sh(H.bin .. " fetch --help | grep -q -- --ordered"))
    assert.equal(0, H.sh(H.bin .. " --version | grep -q '^fetchtree '"))
    assert.equal(2, H.sh(H.bin .. " frobnicate 2>/dev/null"))
  end)

  it("ends with a summary on stderr: statuses, error kinds, latency", function()
    local r = H.fetch({ srv.base .. "/item/1.json", srv.base .. "/status/404", "bad url" }, "")
    assert.truthy(r.stderr:match("3 requests"))
    assert.truthy(r.stderr:match("200: 1"))
    assert.truthy(r.stderr:match("404: 1"))
    assert.truthy(r.stderr:match("url: 1"))
    assert.truthy(r.stderr:match("p99"))
    assert.is_nil(r.stderr:find("\r", 1, true)) -- no progress line off a terminal
  end)

  it("shows a progress line on a terminal, and not with --quiet", function()
    local input = H.tmpname(".in")
    H.write(input, srv.base .. "/delay/700\n" .. srv.base .. "/item/1.json\n")
    local typescript = H.tmpname(".tty")
    local cmd = string.format("%s fetch %s > /dev/null", H.bin, input)
    H.sh(string.format("script -qec %s %s > /dev/null 2>&1 < /dev/null", H.q(cmd), typescript))
    local screen = H.read(typescript) or ""
    assert.truthy(screen:match("%d/2%s+%d+/s%s+errors 0"), screen)
    H.sh(string.format("script -qec %s %s > /dev/null 2>&1 < /dev/null",
      H.q(cmd:gsub(" fetch ", " fetch -q ")), typescript))
    assert.is_nil((H.read(typescript) or ""):match("/s"))
  end)

  it("stops on SIGINT: in-flight requests get records, the summary says so", function()
    local input = H.tmpname(".in")
    local lines = { srv.base .. "/item/1.json" }
    for i = 1, 50 do lines[#lines + 1] = srv.base .. "/stall?i" .. i end
    H.write(input, table.concat(lines, "\n") .. "\n")
    local out, err = H.tmpname(".out"), H.tmpname(".err")
    local rc = H.sh(string.format("%s fetch -c 10 %s > %s 2> %s & pid=$!; sleep 0.8; kill -INT $pid; wait $pid",
      H.bin, input, out, err))
    assert.equal(130, rc)
    local n, cancelled = 0, 0
    for line in H.read(out):gmatch("[^\n]+") do
      local rec = H.json.decode(line)
      n = n + 1
      if rec.error ~= null and rec.error.kind == "cancelled" then cancelled = cancelled + 1 end
    end
    assert.equal(11, n) -- the finished one and the ten in flight; the rest were never read
    assert.equal(10, cancelled)
    assert.truthy(H.read(err):match("interrupted after 11 records"))
  end)

  it("multiplexes over HTTP/2 when an https server offers it", function()
    local dir, port = H.tls_fixture()
    assert.equal(0, H.sh(string.format("mkdir -p %s/docs && echo hello > %s/docs/a.txt", dir, dir)))
    H.sh(string.format("cd %s && (timeout 20 nghttpd -v --address=127.0.0.1 --htdocs=docs %d k.pem c.pem > log.txt 2>&1 &)", dir, port))
    H.sleep(0.5)
    local lines = {}
    for i = 1, 20 do lines[i] = "https://127.0.0.1:" .. port .. "/a.txt" end
    local r = H.fetch(lines, "-q -c 20 --cacert " .. dir .. "/c.pem")
    H.sh("pkill -f 'nghttpd -v --address=127.0.0.1 --htdocs=docs " .. port .. "'")
    assert.equal(20, #r.records)
    for _, rec in ipairs(r.records) do
      assert.equal(200, rec.status) -- verified against --cacert
      assert.equal("hello\n", rec.body)
    end
    -- nghttpd tags each connection [id=N]: all twenty on one
    local ids = {}
    for id in (H.read(dir .. "/log.txt") or ""):gmatch("%[id=(%d+)%]") do ids[id] = true end
    local n = 0
    for _ in pairs(ids) do n = n + 1 end
    assert.equal(1, n)
  end)

  it("keeps memory flat in the length of the input", function()
    -- the release build: the sanitizers' own memory would hide the signal
    local function peak(n, args)
      local lines = {}
      for i = 1, n do lines[i] = srv.base .. "/item/" .. i .. ".json" end
      local r = H.fetch(lines, "--no-body " .. args, { bin = H.release_bin })
      assert.equal(n, #r.records)
      return tonumber(r.stderr:match("peak RSS ([%d.]+) MB"))
    end
    for _, args in ipairs { "", "--ordered" } do
      local small, large = peak(5000, args), peak(50000, args)
      assert.truthy(large < small * 1.15 + 1, string.format("%s: 5k %.1f MB, 50k %.1f MB", args, small, large))
    end
  end)

  it("verifies TLS certificates", function()
    local dir, port = H.tls_fixture()
    H.sh(string.format("cd %s && (timeout 20 openssl s_server -quiet -accept 127.0.0.1:%d -cert c.pem -key k.pem -www >/dev/null 2>&1 &)", dir, port))
    H.sleep(0.5)
    local r = H.fetch({ "https://127.0.0.1:" .. port .. "/" }, "-q --retries 0")
    H.sh("pkill -f 'openssl s_server -quiet -accept 127.0.0.1:" .. port .. "'")
    assert.equal("tls", r.records[1].error.kind)
  end)
end)
