-- crawl_spec.lua - one crawl driver: `fetchtree run` and ft.run run the same crawl (core/crawl.c).
local H = require "helper"
local null = H.null

-- Records of a JSON Lines file, each re-encoded with sorted keys, sorted:
-- two runs that wrote the same records in another order compare equal.
local function canon(v)
  if type(v) ~= "table" or v == null then return H.json.encode(v) end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  local parts = {}
  for _, k in ipairs(keys) do parts[#parts + 1] = H.json.encode(tostring(k)) .. ":" .. canon(v[k]) end
  return "{" .. table.concat(parts, ",") .. "}"
end

local function records(path)
  local out = {}
  for line in (H.read(path) or ""):gmatch("[^\n]+") do out[#out + 1] = canon(H.json.decode(line)) end
  table.sort(out)
  return out
end

-- `fetchtree run SCRIPT opts -- args`, records into out; returns rc, stderr.
local function cli_run(script, opts, out, args)
  local err = H.tmpname(".err")
  local rc = H.sh(string.format("timeout 60 %s run %s -q %s -o %s -- %s > /dev/null 2> %s < /dev/null",
    H.bin, script, opts, out, table.concat(args, " "), err))
  return rc, H.read(err) or ""
end

-- ft.run of the spec the same script returns (loaded with the same
-- arguments), with options opts (Lua source of a table); prints ft.run's
-- results (stats, or nil, err) as JSON on stdout; returns rc, stdout, stderr.
local function api_run(script, opts, args)
  local prog = H.tmpname(".lua")
  H.write(prog, string.format([[
    local cjson = require "cjson"
    arg = { [0] = %q, %s }
    local spec = dofile(%q)
    local st, err = ft.run(spec, %s)
    print(cjson.encode({ stats = st or cjson.null, err = err or cjson.null }))
  ]], script, table.concat((function()
    local q = {}
    for i, a in ipairs(args) do q[i] = string.format("%q", a) end
    return q
  end)(), ", "), script, opts))
  local out, err = H.tmpname(".out"), H.tmpname(".err")
  local rc = H.sh(string.format("timeout 60 %s lua %s > %s 2> %s < /dev/null", H.bin, prog, out, err))
  return rc, H.read(out) or "", H.read(err) or ""
end

describe("one crawl driver", function()
  local srv
  setup(function() srv = H.server() end)
  teardown(function() srv.stop() end)

  -- follow-ups, object storage, obj:after alarms (one per object, writing
  -- a record), and a state file: all of `fetchtree run`'s machinery
  local crawl = [[
    local base = arg[1]
    return {
      concurrency = 4, max_depth = 2,
      start = function(emit) emit { url = base .. "/page/0?m=12" } end,
      on_response = function(res, obj)
        for _, l in ipairs(res:links()) do
          if l:find("/page/", 1, true) then obj:fetch { url = l } end
        end
        local n = (obj.storage:get("pages") or 0) + 1
        obj.storage:put("pages", n)
        if n == 1 then
          obj:after(30, function(o) return { alarm = o.name } end)
        end
        return { url = res.url, depth = res.request.depth, status = res.status }
      end,
    }
  ]]

  it("gives the same records through `fetchtree run` and ft.run, with obj:after and a state file", function()
    local script = H.tmpname(".lua")
    H.write(script, crawl)
    local out1, db1 = H.tmpname(".jsonl"), H.tmpname(".db")
    local rc, err = cli_run(script, "--state " .. db1, out1, { srv.base })
    assert.equal(0, rc, err)
    local out2, db2 = H.tmpname(".jsonl"), H.tmpname(".db")
    local rc2, stdout, err2 = api_run(script, string.format("{ out = %q, state = %q }", out2, db2), { srv.base })
    assert.equal(0, rc2, err2)
    local res = H.json.decode(stdout)
    assert.equal(null, res.err)

    local a, b = records(out1), records(out2)
    assert.same(a, b)
    -- the pages max_depth 2 reaches, and one alarm record for the one
    -- object (the host's)
    local alarms = 0
    for _, r in ipairs(a) do if r:find('"alarm"', 1, true) then alarms = alarms + 1 end end
    assert.equal(1, alarms)
    assert.is_true(#a >= 4)
    assert.equal(#a - 1, res.stats.requests)
    assert.equal(#a, res.stats.records)
    assert.is_true(res.stats.elapsed_s > 0 and res.stats.elapsed_s < 60)

    -- both states say the crawl has finished: run again, nothing is fetched
    local out3 = H.tmpname(".jsonl")
    rc, err = cli_run(script, "--state " .. db1, out3, { srv.base })
    assert.equal(0, rc, err)
    assert.same({}, records(out3))
    local rc4, stdout4, err4 = api_run(script, string.format("{ out = %q, state = %q }", out3, db2), { srv.base })
    assert.equal(0, rc4, err4)
    assert.equal(0, H.json.decode(stdout4).stats.requests)
    -- with restart, both run again the same way (object storage is kept:
    -- no alarm this time)
    local out5, out6 = H.tmpname(".jsonl"), H.tmpname(".jsonl")
    local rc5, _, err5 = api_run(script, string.format("{ out = %q, state = %q, restart = true }", out5, db2),
                                 { srv.base })
    assert.equal(0, rc5, err5)
    rc, err = cli_run(script, "--restart --state " .. db1, out6, { srv.base })
    assert.equal(0, rc, err)
    assert.same(records(out6), records(out5))
    assert.equal(#a - 1, #records(out5))
  end)

  -- one request per setting with an effect a record shows
  local settings = [[
    local base, with_fields = arg[1], arg[2] == "spec"
    local spec = {
      start = function(emit)
        emit(base .. "/echo")
        emit(base .. "/status/503")
        emit(base .. "/status/500")
        emit(base .. "/bytes/5000")
        emit(base .. "/redirect/3")
        emit(base .. "/delay/3000")
      end,
      on_response = function(res)
        local ua = res.url:find("/echo", 1, true) and res:json().headers["user-agent"] or nil
        return { url = res.url, status = res.status, attempts = res.attempts, ua = ua }
      end,
      on_error = function(err, req)
        return { url = req.url, kind = err.kind, status = err.status, attempts = err.attempts }
      end,
    }
    if with_fields then
      spec.user_agent = "spec-agent/1"
      spec.retries, spec.retry_on, spec.backoff_base, spec.backoff_cap = 1, { 503 }, 1, 1
      spec.max_body, spec.max_redirects, spec.timeout = 1000, 1, 0.5
      spec.concurrency, spec.host_connections, spec.rps = 3, 2, 500
      spec.connect_timeout, spec.max_retry_after = 5, 1
    end
    return spec
  ]]

  local function expect(recs)
    local by = {}
    for _, line in ipairs(recs) do
      local r = H.json.decode(line)
      by[r.url:match("^https?://[^/]+(.*)$")] = r
    end
    assert.equal("spec-agent/1", by["/echo"].ua)
    assert.equal(2, by["/status/503"].attempts) -- retries 1, 503 retried
    assert.equal(1, by["/status/500"].attempts) -- not in retry_on
    assert.equal("too_large", by["/bytes/5000"].kind)
    assert.equal("redirect", by["/redirect/3"].kind)
    -- timed out twice (timeout 0.5 s, retries 1), not a 200 after 3 s
    assert.equal("retries_exhausted", by["/delay/3000"].kind)
    assert.equal(2, by["/delay/3000"].attempts)
  end

  it("honours every setting the same way, as spec fields and as options over the spec", function()
    local script = H.tmpname(".lua")
    H.write(script, settings)
    -- spec fields
    local out1 = H.tmpname(".jsonl")
    local rc, err = cli_run(script, "", out1, { srv.base, "spec" })
    assert.equal(0, rc, err)
    local out2 = H.tmpname(".jsonl")
    local rc2, _, err2 = api_run(script, string.format("{ out = %q }", out2), { srv.base, "spec" })
    assert.equal(0, rc2, err2)
    local a = records(out1)
    assert.same(a, records(out2))
    assert.equal(6, #a)
    expect(a)
    -- the same values as command-line options and as ft.run's options
    local out3 = H.tmpname(".jsonl")
    rc, err = cli_run(script, "-A spec-agent/1 --retries 1 --retry-on 503 --backoff-base 1 --backoff-cap 1"
      .. " --max-body 1000 --max-redirects 1 --timeout 0.5 -c 3 --host-connections 2 --rps 500"
      .. " --connect-timeout 5 --max-retry-after 1", out3, { srv.base, "none" })
    assert.equal(0, rc, err)
    local out4 = H.tmpname(".jsonl")
    rc2, _, err2 = api_run(script, string.format([[{ out = %q, user_agent = "spec-agent/1", retries = 1,
      retry_on = { 503 }, backoff_base = 1, backoff_cap = 1, max_body = 1000, max_redirects = 1,
      timeout = 0.5, concurrency = 3, host_connections = 2, rps = 500, connect_timeout = 5,
      max_retry_after = 1 }]], out4), { srv.base, "none" })
    assert.equal(0, rc2, err2)
    assert.same(a, records(out3))
    assert.same(a, records(out4))
  end)

  it("reports a start that raised the same way: records so far, then nil and a script error from ft.run", function()
    local script = H.tmpname(".lua")
    H.write(script, [[
      local base = arg[1]
      return { start = function(emit) emit(base .. "/item/1.json"); error("start broke") end }
    ]])
    local out1 = H.tmpname(".jsonl")
    local rc, err = cli_run(script, "", out1, { srv.base })
    assert.equal(1, rc)
    assert.truthy(err:find("start broke", 1, true))
    local out2 = H.tmpname(".jsonl")
    local rc2, stdout = api_run(script, string.format("{ out = %q }", out2), { srv.base })
    assert.equal(0, rc2)
    local res = H.json.decode(stdout)
    assert.equal(null, res.stats)
    assert.equal("script", res.err.kind)
    assert.truthy(res.err.message:find("start broke", 1, true))
    assert.same(records(out1), records(out2))
  end)

  it("refuses a run it cannot start the same way: exit 2, or nil and the same message from ft.run", function()
    local script = H.tmpname(".lua")
    H.write(script, [[
      local base = arg[1]
      return { start = function(emit) emit(base .. "/item/1.json") end }
    ]])
    -- --restart without a state
    local rc, err = cli_run(script, "--restart", H.tmpname(".jsonl"), { srv.base })
    assert.equal(2, rc)
    assert.truthy(err:find("--restart goes with --state", 1, true), err)
    local rc2, stdout = api_run(script, string.format("{ out = %q, restart = true }", H.tmpname(".jsonl")),
                                { srv.base })
    assert.equal(0, rc2)
    local res = H.json.decode(stdout)
    assert.equal(null, res.stats)
    assert.equal("input", res.err.kind)
    assert.equal("--restart goes with --state", res.err.message)
    -- an output that cannot be opened
    local bad = "/nonexistent-dir/out.jsonl"
    rc, err = cli_run(script, "", bad, { srv.base })
    assert.equal(2, rc)
    assert.truthy(err:find(bad, 1, true), err)
    rc2, stdout = api_run(script, string.format("{ out = %q }", bad), { srv.base })
    assert.equal(0, rc2)
    res = H.json.decode(stdout)
    assert.equal("input", res.err.kind)
    assert.truthy(res.err.message:find(bad, 1, true))
  end)

  it("times ft.run in wall time, not CPU time", function()
    local script = H.tmpname(".lua")
    H.write(script, [[
      local base = arg[1]
      return { start = function(emit) emit(base .. "/delay/400") end }
    ]])
    local rc, stdout, err = api_run(script, "{ out = function() end }", { srv.base })
    assert.equal(0, rc, err)
    local st = H.json.decode(stdout).stats
    assert.equal(1, st.requests)
    assert.is_true(st.elapsed_s >= 0.4, "elapsed_s " .. st.elapsed_s) -- the wait counts
  end)

  it("refuses ft.run inside a crawl's handler, as a script error record", function()
    local script = H.tmpname(".lua")
    H.write(script, [[
      local base = arg[1]
      return {
        start = function(emit) emit(base .. "/item/1.json") end,
        on_response = function() ft.run({ start = function() end }) end,
      }
    ]])
    local out = H.tmpname(".jsonl")
    local rc, err = cli_run(script, "", out, { srv.base })
    assert.equal(0, rc, err)
    local recs = records(out)
    assert.equal(1, #recs)
    local r = H.json.decode(recs[1])
    assert.equal("script", r.error.kind)
    assert.truthy(r.error.message:find("ft.run", 1, true))
  end)
end)
