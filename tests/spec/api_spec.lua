-- api_spec.lua - the Lua API (`require "fetchtree"`), run twice: under a
-- plain luajit with the module build/fetchtree.so, and inside fetchtree
-- itself (`fetchtree lua FILE`).
local H = require "helper"

local module_dir = os.getenv("FT_MODULE_DIR") or "build"

-- Run a Lua program under `how` ("luajit" or "fetchtree"); returns its
-- stdout, stderr and exit code.
local function lua(how, src, ...)
  local path = H.tmpname(".lua")
  H.write(path, "local ft = require 'fetchtree'\n" .. src)
  local out, err = H.tmpname(".out"), H.tmpname(".err")
  local args = table.concat({ ... }, " ")
  local cmd
  if how == "luajit" then
    cmd = string.format("LUA_CPATH='%s/?.so;;' timeout 60 luajit %s %s", module_dir, path, args)
  else
    cmd = string.format("timeout 60 %s lua %s %s", H.bin, path, args)
  end
  -- bounded: a hang fails the test (exit 124) rather than the suite
  local rc = H.sh(string.format("%s > %s 2> %s < /dev/null", cmd, out, err))
  return H.read(out) or "", H.read(err) or "", rc
end

for _, how in ipairs { "luajit", "fetchtree" } do
  describe("the Lua API under " .. how, function()
    local srv
    setup(function() srv = H.server() end)
    teardown(function() srv.stop() end)

    it("ft.get returns a response with fields and methods", function()
      local out, err, rc = lua(how, [[
        local base = arg[1]
        local r = ft.get(base .. "/item/5.json")
        print(r.status, r.url == base .. "/item/5.json", r.headers["content-type"], r:json().title)
        print(r.attempts, type(r.elapsed_ms), r.request.url == base .. "/item/5.json")
        local p = ft.get(base .. "/page/3?m=10")
        print(#p:links(), p:xpath("//title")[1])
      ]], srv.base)
      assert.equal(0, rc, err)
      assert.equal("200\ttrue\tapplication/json\tItem 5\n1\tnumber\ttrue\n5\tPage 3\n", out)
    end)

    it("ft.get and ft.request return nil and an error with kind and message", function()
      local dead = H.server()
      local base = dead.base
      dead.stop()
      H.sleep(0.1)
      local out, err, rc = lua(how, [[
        local r, e = ft.get(arg[1] .. "/x", { retries = 0 })
        print(r, e.kind, type(e.message))
        local r2, e2 = ft.request { url = arg[2] .. "/stall", timeout = 0.3, retries = 0 }
        print(r2, e2.kind)
        local r3 = ft.request { url = arg[2] .. "/echo", method = "POST", body = "hi", headers = { ["X-A"] = "b" } }
        local echo = r3:json()
        print(echo.method, echo.body, echo.headers["x-a"])
        print(pcall(ft.get, 42))
      ]], base, srv.base)
      assert.equal(0, rc, err)
      local lines = {}
      for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
      assert.equal("nil\tconnect\tstring", lines[1])
      assert.equal("nil\ttimeout", lines[2])
      assert.equal("POST\thi\tb", lines[3])
      assert.truthy(lines[4]:match("^false\t.*url must be a string"))
    end)

    it("ft.fetch_all returns responses in request order, failures in place", function()
      local out, err, rc = lua(how, [[
        local base = arg[1]
        local list = {}
        for i = 1, 30 do list[i] = base .. "/item/" .. i .. ".json" end
        list[10] = base .. "/delay/200"
        list[20] = { url = "ftp://nope/" }
        local t0 = os.clock()
        local all = ft.fetch_all(list, { concurrency = 8, rps = 1000, retries = 0 })
        local ok = true
        for i, r in ipairs(all) do
          if i == 10 then ok = ok and r.body == "delayed 200\n"
          elseif i == 20 then ok = ok and r.error.kind == "url"
          else ok = ok and r:json().id == i end
        end
        print(#all, ok)
      ]], srv.base)
      assert.equal(0, rc, err)
      assert.equal("30\ttrue\n", out)
    end)

    it("ft.fetch_all: a request that fails as it is submitted is its error in place, never a hang", function()
      local out, err, rc = lua(how, [[
        local base = arg[1]
        local all = ft.fetch_all { base .. "/item/1.json", "ftp://x/" }
        print(#all, all[1].status, all[2].error.kind)
        local one = ft.fetch_all { "ftp://y/" }
        print(#one, one[1].error.kind)
        local t = ft.spawn(function()
          local r = ft.fetch_all { "ftp://z/", base .. "/item/2.json" }
          return r[1].error.kind .. " " .. r[2].status
        end)
        print(ft.wait(t))
        -- misuse raises before anything is sent: a hole, a bad table
        print(pcall(ft.fetch_all, { base .. "/item/3.json", nil, base .. "/item/4.json" }))
        print(pcall(ft.fetch_all, { base .. "/item/3.json", { method = "GET" } }))
        print(ft.step(0))
      ]], srv.base)
      assert.equal(0, rc, err)
      local lines = {}
      for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
      assert.equal("2\t200\turl", lines[1])
      assert.equal("1\turl", lines[2])
      assert.equal("url 200", lines[3])
      assert.truthy(lines[4]:match("^false\t.*ft%.fetch_all: request 2: a request must be a table"), lines[4])
      assert.truthy(lines[5]:match("^false\t.*ft%.fetch_all: request 2: a request needs a url"), lines[5])
      assert.equal("false", lines[6]) -- nothing left outstanding
    end)

    it("the engine answers a request whose header it refuses once, as an input error", function()
      -- (a refusal raised from submit left the request's waiter registered
      -- for ever; now the request is taken and ends through on_done)
      local out, err, rc = lua(how, [[
        local engine = require "fetchtree.engine"
        local reported = {}
        engine.on_done(function(id, res, e)
          reported[#reported + 1] = id .. ":" .. (res and res.status or e.kind)
        end)
        local e = engine.new {}
        print(e:submit(1, arg[1] .. "/item/1.json", nil, { "no colon here" }))
        print(e:submit(2, arg[1] .. "/item/1.json"))
        while e:pending() > 0 do engine.step(-1) end
        table.sort(reported)
        print(table.concat(reported, " "))
        e:close()
      ]], srv.base)
      assert.equal(0, rc, err)
      assert.equal("true\ntrue\n1:input 2:200\n", out)
    end)

    it("E:set_limits with false removes a limit: the waiting requests then go unlimited", function()
      -- one request per 10 s for object /h: after the first, the other two
      -- wait until the rate is removed; they are then done at once
      local out, err, rc = lua(how, [[
        local engine = require "fetchtree.engine"
        local done = 0
        engine.on_done(function() done = done + 1 end)
        local e = engine.new {}
        assert(e:configure("/h", 1, 10000))
        for i = 1, 3 do assert(e:submit(i, arg[1] .. "/item/" .. i .. ".json", nil, nil, nil, nil, nil, "/h")) end
        while done < 1 do engine.step(-1) end
        print(pcall(e.set_limits, e, "/h", 0))
        assert(e:set_limits("/h", false))
        local t0 = os.time()
        while e:pending() > 0 and os.time() - t0 < 5 do engine.step(100) end
        print(done)
        e:close()
      ]], srv.base)
      assert.equal(0, rc, err)
      assert.equal("false\tset_limits: field 'rps': must be a number of requests per window above 0, " ..
                   "at most 1000000000, got 0\n3\n", out)
    end)

    it("the engine ends a request whose object cannot be made with that error, not as the root's", function()
      local out, err, rc = lua(how, [[
        local engine = require "fetchtree.engine"
        local reported = {}
        engine.on_done(function(id, res, e)
          reported[#reported + 1] = id .. ":" .. (res and res.status or (e.kind .. ": " .. e.message))
        end)
        local e = engine.new {}
        print(e:submit(1, arg[1] .. "/item/1.json", nil, nil, nil, nil, nil, "//bad"))
        print(e:submit(2, arg[1] .. "/item/1.json", nil, nil, nil, nil, nil, "/host/good"))
        while e:pending() > 0 do engine.step(-1) end
        table.sort(reported)
        print(table.concat(reported, "\n"))
        e:close()
      ]], srv.base)
      assert.equal(0, rc, err)
      assert.equal("true\ntrue\n1:input: cannot make object '//bad': not an object name such as " ..
                   "/host/example.com\n2:200\n", out)
    end)

    it("ft.fetch_all inside a task: its engine outlives the callback that resumes the task", function()
      local out, err, rc = lua(how, [[
        local base = arg[1]
        print(ft.wait(ft.spawn(function() return #ft.fetch_all { base .. "/item/1.json", base .. "/item/2.json" } end)))
        local ts = {}
        for i = 1, 20 do
          ts[i] = ft.spawn(function()
            local a = ft.fetch_all { base .. "/item/" .. i .. ".json" }
            local b = ft.fetch_all({ base .. "/item/" .. (i + 100) .. ".json", base .. "/delay/10" }, { concurrency = 1 })
            collectgarbage()
            return a[1]:json().id + b[1]:json().id
          end)
        end
        local sum = 0
        for i = 1, 20 do sum = sum + ft.wait(ts[i]) end
        print(sum)
      ]], srv.base)
      assert.equal(0, rc, err)
      local want = 0
      for i = 1, 20 do want = want + 2 * i + 100 end
      assert.equal("2\n" .. want .. "\n", out)
    end)

    it("a task that yields outside fetchtree's calls fails with a clear error, never a hang", function()
      local out, err, rc = lua(how, [[
        local base = arg[1]
        local bad = ft.spawn(function() coroutine.yield(); return "never" end)
        local bad2 = ft.spawn(function() ft.get(base .. "/item/1.json"); coroutine.yield(42) end)
        local good = ft.spawn(function() return ft.get(base .. "/item/2.json").status end)
        print(ft.wait(bad, bad2, good))
        print(bad.ok, bad2.ok, (bad.error:match("^[^\n]*")))
        -- a coroutine of the task's own may yield as it likes
        local gen = ft.spawn(function()
          local co = coroutine.wrap(function() coroutine.yield(1); coroutine.yield(2) end)
          return co() + co()
        end)
        print(ft.wait(gen))
        -- tasks that wait for each other: an error, not a spin
        local a, b
        -- (a response may come in at once: the delay makes sure b exists)
        a = ft.spawn(function() ft.get(base .. "/delay/50"); return ft.wait(b) end)
        b = ft.spawn(function() return ft.wait(a) end)
        local ok, e = pcall(ft.wait, a)
        print(ok, e:match("can never finish") ~= nil)
      ]], srv.base)
      assert.equal(0, rc, err)
      assert.equal("nil\tnil\t200\nfalse\tfalse\tcoroutine.yield() in a task: a task may only be "
        .. "suspended by fetchtree's calls (ft.get, ft.request, ft.fetch_all, ft.wait)\n3\nfalse\ttrue\n", out)
    end)

    it("ft.wait() waits for every task and returns their first results in the order spawned", function()
      local out, err, rc = lua(how, [[
        local base = arg[1]
        ft.spawn(function() return ft.get(base .. "/delay/100").status end)
        ft.spawn(function() ft.get(base .. "/item/1.json"); error("broke") end)
        ft.spawn(function() return ft.get(base .. "/item/7.json"):json().id end)
        print(ft.wait())
        print(select("#", ft.wait()))
      ]], srv.base)
      assert.equal(0, rc, err)
      assert.equal("200\tnil\t7\n0\n", out)
    end)

    it("res:json() gives nil for a null body; a null inside is ft.null", function()
      local out, err, rc = lua(how, [[
        local function res(body) return setmetatable({ body = body }, ft.Response) end
        local v = res('{"a":null,"b":[null]}'):json()
        print(res("null"):json(), res(" null "):json(), v.a == ft.null, v.b[1] == ft.null, not not v.a)
        print(pcall(res("nul").json, res("nul")))
      ]])
      assert.equal(0, rc, err)
      local lines = {}
      for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
      assert.equal("nil\tnil\ttrue\ttrue\ttrue", lines[1])
      assert.truthy(lines[2]:match("^false\t.*res:json%(%)"), lines[2])
    end)

    it("runs ten thousand tasks, each doing a few ft.get calls", function()
      local out, err, rc = lua(how, [[
        local base = arg[1]
        local tasks = {}
        for i = 1, 10000 do
          tasks[i] = ft.spawn(function(n)
            local a = ft.get(base .. "/item/" .. n .. ".json")
            local b = ft.get(base .. "/item/" .. (n + 20000) .. ".json")
            return a:json().id + b:json().id
          end, i)
        end
        local sum = 0
        for i = 1, #tasks, 1000 do sum = sum + ft.wait(tasks[i]) end
        ft.wait()
        local all_done = true
        for _, t in ipairs(tasks) do all_done = all_done and t.done and t.ok end
        print(sum, all_done)
      ]], srv.base)
      assert.equal(0, rc, err)
      -- tasks 1, 1001, ..., 9001: sum of 2n + 20000
      local want = 0
      for i = 1, 10000, 1000 do want = want + 2 * i + 20000 end
      assert.equal(want .. "\ttrue\n", out)
    end)

    it("ft.wait waits for the given tasks, or all; a failing task reports nil", function()
      local out, err, rc = lua(how, [[
        local base = arg[1]
        local slow = ft.spawn(function() return ft.get(base .. "/delay/300").status end)
        local fast = ft.spawn(function() return ft.get(base .. "/item/1.json").status end)
        local bad = ft.spawn(function() error("task broke") end)
        print(ft.wait(fast), fast.done, slow.done)
        print(ft.wait(slow, bad))
        print(bad.ok, bad.error:match("task broke") ~= nil)
        ft.wait()
      ]], srv.base)
      assert.equal(0, rc, err)
      assert.equal("200\ttrue\tfalse\n200\tnil\nfalse\ttrue\n", out)
    end)

    it("ft.step and ft.fd let an application drive fetchtree from its own loop", function()
      local out, err, rc = lua(how, [[
        local base = arg[1]
        local got
        ft.spawn(function() got = ft.get(base .. "/delay/100").status end)
        print(type(ft.fd()), ft.fd() >= 0)
        local rounds = 0
        while ft.step(10) do rounds = rounds + 1 end
        print(got, rounds > 1)
      ]], srv.base)
      assert.equal(0, rc, err)
      assert.equal("number\ttrue\n200\ttrue\n", out)
    end)

    it("ft.run runs a crawl spec, records to a function or a file, and returns stats", function()
      local file = H.tmpname(".jsonl")
      local out, err, rc = lua(how, [[
        local base, file = arg[1], arg[2]
        local recs = {}
        local st = ft.run({
          concurrency = 4, max_depth = 1,
          objects = { ["/host/*"] = { concurrency = 2 } },
          start = function(emit) emit { url = base .. "/page/0?m=10" } end,
          on_response = function(res, obj)
            for _, l in ipairs(res:links()) do if l:find("/page/") then obj:fetch { url = l } end end
            return { url = res.url, obj = obj.name, depth = res.request.depth }
          end,
        }, { out = function(r) recs[#recs + 1] = r end })
        table.sort(recs, function(a, b) return a.url < b.url end)
        print(st.requests, st.ok, st.records, #recs, recs[1].obj, recs[1].depth)
        local st2 = ft.run({ start = function(emit) emit { url = base .. "/item/2.json" } end }, { out = file })
        print(st2.requests, st2.records)
        local ok, e = pcall(ft.run, 5)
        print(ok, e:match("spec must be a table") ~= nil)
      ]], srv.base, file)
      assert.equal(0, rc, err)
      assert.equal("3\t3\t3\t3\t/host/127.0.0.1\t0\n1\t1\nfalse\ttrue\n", out)
      local rec = H.json.decode(H.read(file))
      assert.equal(200, rec.status)
      assert.equal(2, H.json.decode(rec.body).id)
    end)

    it("ft.unique_name gives fresh names", function()
      local out, err, rc = lua(how, [[
        local a, b = ft.unique_name("/jobs"), ft.unique_name("/jobs")
        print(a ~= b, a:match("^/jobs/") ~= nil, pcall(ft.unique_name, "bad"))
      ]])
      assert.equal(0, rc, err)
      assert.truthy(out:match("^true\ttrue\tfalse"))
    end)
  end)
end
