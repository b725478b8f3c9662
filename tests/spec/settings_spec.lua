-- settings_spec.lua - one settings table (core/settings.c): the same good and
-- bad values fed through every entry point that takes the setting (fetch's
-- and run's options, a spec field, an object pattern, engine.new, a request
-- of ft.get/ft.request, ft.run's options, an object's limits changed live:
-- obj:set_limits, E:set_limits, E:configure) get the same answer and the same
-- reason; unknown fields name the nearest known one; spec errors say
-- file:line without fetchtree's traceback; the man page and the README list
-- what the table has.
local H = require "helper"
local cjson = require "cjson"

-- Run a Lua program under `fetchtree lua`; returns stdout, stderr, rc.
local function lua(src)
  local path, out, err = H.tmpname(".lua"), H.tmpname(".out"), H.tmpname(".err")
  H.write(path, src)
  local rc = H.sh(string.format("timeout 60 %s lua %s > %s 2> %s < /dev/null", H.bin, path, out, err))
  return H.read(out) or "", H.read(err) or "", rc, path
end

-- The settings table, as the program has it.
local settings
local function table_rows()
  if not settings then
    local out, err, rc = lua([[
      local cjson = require "cjson"
      print(cjson.encode(require("fetchtree.engine").settings()))
    ]])
    assert(rc == 0, err)
    settings = cjson.decode(out)
  end
  return settings
end
local function row(name)
  for _, r in ipairs(table_rows()) do if r.name == name then return r end end
  error("no setting " .. name)
end

-- Each row: setting, the value as Lua source, as command-line text (nil:
-- the value has no command-line spelling), and true or the reason every
-- place must give.
local CASES = {
  { "concurrency", "8", "8", true },
  { "concurrency", "2.7", "2.7", "must be a whole number from 1 to 100000, got 2.7" },
  { "concurrency", "1e6", "1e6", "must be a whole number from 1 to 100000, got 1000000" },
  { "concurrency", "0", "0", "must be a whole number from 1 to 100000, got 0" },
  { "concurrency", "'4'", nil, "must be a whole number from 1 to 100000, got string" },
  { "host_connections", "2", "2", true },
  { "host_connections", "0", "0", "must be a whole number from 1 to 100000, got 0" },
  { "retries", "3", "3", true },
  { "retries", "1.5", "1.5", "must be a whole number from 0 to 1000, got 1.5" },
  { "retries", "-1", "-1", "must be a whole number from 0 to 1000, got -1" },
  { "rps", "50", "50", true },
  { "rps", "0", "0", "must be a number of requests per window above 0, at most 1000000000, got 0" },
  { "rps", "0/0", "nan", "must be a number of requests per window above 0, at most 1000000000, got nan" },
  { "rps", "1/0", "inf", "must be a number of requests per window above 0, at most 1000000000, got inf" },
  { "window", "500", "500", true },
  { "window", "0", "0", "must be a number of milliseconds from 1 to 86400000, got 0" },
  { "timeout", "2.5", "2.5", true },
  { "timeout", "0", "0", "must be a number of seconds from 0.001 to 1000000, got 0" },
  { "timeout", "-1/0", "-inf", "must be a number of seconds from 0.001 to 1000000, got -inf" },
  { "connect_timeout", "0.5", "0.5", true },
  { "connect_timeout", "-1", "-1", "must be a number of seconds from 0.001 to 1000000, got -1" },
  { "max_redirects", "0", "0", true },
  { "max_redirects", "-4", "-4", "must be a whole number from 0 to 1000, got -4" },
  { "max_body", "'64M'", "64M", true },
  { "max_body", "1048576", "1048576", true },
  { "max_body", "-1", "-1", "must be a size in bytes from 0 to 1000000000000000, such as 65536, 512K, 64M or 1G, got -1" },
  { "max_body", "'5X'", "5X", "must be a size in bytes from 0 to 1000000000000000, such as 65536, 512K, 64M or 1G, got '5X'" },
  { "backoff_base", "10", "10", true },
  { "backoff_base", "-1", "-1", "must be a number of milliseconds from 0 to 3600000, got -1" },
  { "backoff_cap", "1e9", "1e9", "must be a number of milliseconds from 0 to 86400000, got 1000000000" },
  { "max_retry_after", "1e7", "1e7", "must be a number of seconds from 0 to 2592000, got 10000000" },
  { "retry_on", "{429, 503}", "429,503", true },
  { "retry_on", "'429,503'", "429,503", true },
  { "sensitive_headers", "'X-A,X-B'", nil, true },
  { "retry_on", "{429, 99}", "429,99", "must be a list of HTTP statuses 100..599, such as 429,503, got '429,99'" },
  { "sensitive_headers", "{'X-Api-Key'}", "X-Api-Key", true },
  { "sensitive_headers", "{'b c'}", "b c", "must be a list of header names, got 'b c'" },
  { "user_agent", "'x/1'", "x/1", true },
  { "user_agent", "5", nil, "must be a string, got number" },
  { "compressed", "'yes'", nil, "must be a boolean, got string" },
  { "seed", "7", "7", true },
  { "seed", "1.5", "1.5", "must be a whole number from 1 to 1e+18, got 1.5" },
  { "max_depth", "2", nil, true },
  { "max_depth", "-1", nil, "must be a whole number from 0 to 1000000000, got -1" },
  { "dedupe", "1", nil, "must be a boolean, got number" },
  { "on_response", "5", nil, "must be a function, got number" },
  { "allow_hosts", "{1}", nil, "must be a list of strings, got number (item 1)" },
}

-- Command-line entry points: the message is "fetchtree CMD: --opt: reason".
local function cli(cmd, opt, text, spec)
  local err = H.tmpname(".err")
  local target = cmd == "run" and (spec .. " -q") or "-q"
  local rc = H.sh(string.format("%s %s %s --%s %s > /dev/null 2> %s < /dev/null",
    H.bin, cmd, target, opt, H.q(text), err))
  return rc, (H.read(err) or ""):match("^[^\n]*")
end

-- A spec file with the field (line 3), or an object pattern holding it
-- (line 5); run; returns rc, the first stderr line, the file.
local function spec_run(name, value, in_object)
  local path = H.tmpname(".lua")
  if in_object then
    H.write(path, "return {\n  start = function() end,\n  objects = {\n    [\"/host/*\"] = {\n"
      .. "      " .. name .. " = " .. value .. ",\n    },\n  },\n}\n")
  else
    H.write(path, "return {\n  start = function() end,\n  " .. name .. " = " .. value .. ",\n}\n")
  end
  local err = H.tmpname(".err")
  local rc = H.sh(string.format("%s run %s -q > /dev/null 2> %s < /dev/null", H.bin, path, err))
  local stderr = H.read(err) or ""
  return rc, stderr:match("^[^\n]*"), path, stderr
end

-- The Lua entry points of every case, in one program: one JSON line per
-- case and place, { ok = bool, msg = string }.
local function lua_places()
  local lines = { [[
    local cjson = require "cjson"
    local engine = require "fetchtree.engine"
    local function try(f, ...)
      local ok, e = pcall(f, ...)
      -- ft.get raises at its caller's line: the reason is what follows
      return { ok = ok, msg = not ok and tostring(e) or nil }
    end
    local out = {}
  ]] }
  for i, c in ipairs(CASES) do
    local name, value = c[1], c[2]
    lines[#lines + 1] = string.format([[
      out[%d] = {
        engine = try(function() engine.new { %s = %s }:close() end),
        request = try(function() local _ = ft.request { url = "ftp://x/", %s = %s } end),
        get = try(function() local _ = ft.get("ftp://x/", { %s = %s }) end),
        ["ft.run"] = try(function() ft.run({ start = function() end }, { out = function() end, %s = %s }) end),
      }
    ]], i, name, value, name, value, name, value, name, value)
  end
  -- an object's limits (place "limits"): obj:set_limits{...} (in on_error,
  -- where a handler has an object), the engine's positional set_limits and
  -- configure; a window goes with a rate
  local POS = { rps = 1, window = 2, concurrency = 3, retries = 4 }
  lines[#lines + 1] = "local LIM, E = {}, engine.new {}"
  for i, c in ipairs(CASES) do
    if POS[c[1]] then
      lines[#lines + 1] = string.format(
        "LIM[%d] = function() local t = { %s = %s }; if %q == 'window' then t.rps = 1 end; return t end",
        i, c[1], c[2], c[1])
    end
  end
  lines[#lines + 1] = [[
    local function args(t) return t.rps, t.window, t.concurrency, t.retries end
    ft.run({
      start = function(emit) emit { url = "ftp://x/" } end,
      on_error = function(_, _, obj) -- (err, req, obj)
        for i, mk in pairs(LIM) do
          out[i].obj = try(function() obj:set_limits(mk()) end)
          out[i].set_limits = try(function() E:set_limits("/h", args(mk())) end)
          out[i].configure = try(function() E:configure("/h/*", args(mk())) end)
        end
      end,
    }, { out = function() end })
    E:close()
  ]]
  lines[#lines + 1] = "print(cjson.encode(out))"
  local out, err, rc = lua(table.concat(lines, "\n"))
  assert(rc == 0, err)
  return cjson.decode(out)
end

-- The reason of a message: what follows "field 'x': " or "--x: ".
local function reason(msg)
  return msg and (msg:match("field '[^']*': (.*)$") or msg:match("%-%-[%w%-]+: (.*)$"))
end

describe("one settings table", function()
  it("gives each value the same answer and reason in every place that takes it", function()
    local spec = H.tmpname(".lua")
    H.write(spec, "return { start = function() end }\n")
    local from_lua = lua_places()
    local wrong = {}
    local function expect(c, place, ok, msg)
      local want = c[4]
      local label = string.format("%s = %s in %s", c[1], c[2], place)
      if want == true then
        if not ok then wrong[#wrong + 1] = label .. ": refused: " .. tostring(msg) end
      elseif ok then
        wrong[#wrong + 1] = label .. ": taken, wanted: " .. want
      elseif reason(msg) ~= want then
        wrong[#wrong + 1] = label .. ": said " .. tostring(msg) .. "\n    wanted: " .. want
      end
    end
    local counted = {}
    for i, c in ipairs(CASES) do
      local r = row(c[1])
      local p = r.places
      if c[3] and r.option and p.fetch then
        local rc, msg = cli("fetch", r.option, c[3])
        expect(c, "fetchtree fetch", rc == 0, msg)
        if rc ~= 0 then assert.truthy(msg:find("^fetchtree fetch: %-%-" .. r.option:gsub("%-", "%%-") .. ": "), msg) end
        counted.fetch = true
      end
      if c[3] and r.option and p.run then
        local rc, msg = cli("run", r.option, c[3], spec)
        expect(c, "fetchtree run", rc == 0, msg)
        counted.run = true
      end
      if p.spec then
        local rc, msg, path = spec_run(c[1], c[2], false)
        expect(c, "a spec", rc == 0, msg)
        if rc ~= 0 then -- file:line of the field
          local prefix = path .. ":3: field '" .. c[1] .. "': "
          assert.equal(prefix, msg:sub(1, #prefix))
        end
        counted.spec = true
      end
      if p.object then
        local rc, msg, path = spec_run(c[1], c[2], true)
        expect(c, "an object pattern", rc == 0, msg)
        if rc ~= 0 then
          local prefix = string.format("%s:5: field 'objects[\"/host/*\"].%s': ", path, c[1])
          assert.equal(prefix, msg:sub(1, #prefix))
        end
        counted.object = true
      end
      local l = from_lua[i]
      if p.engine then
        expect(c, "engine.new", l.engine.ok, l.engine.msg); counted.engine = true
        if not l.engine.ok then assert.truthy(l.engine.msg:find("engine.new: field '", 1, true), l.engine.msg) end
      end
      if p.request then
        expect(c, "ft.request", l.request.ok, l.request.msg)
        expect(c, "ft.get", l.get.ok, l.get.msg); counted.request = true
      end
      if p["ft.run"] then expect(c, "ft.run", l["ft.run"].ok, l["ft.run"].msg); counted["ft.run"] = true end
      if p.limits then
        assert.truthy(l.obj, c[1] .. ": obj:set_limits not reached")
        expect(c, "obj:set_limits", l.obj.ok, l.obj.msg)
        expect(c, "E:set_limits", l.set_limits.ok, l.set_limits.msg)
        expect(c, "E:configure", l.configure.ok, l.configure.msg)
        counted.limits = true
      end
    end
    assert.same({}, wrong)
    -- every place was exercised
    for _, place in ipairs { "fetch", "run", "spec", "object", "engine", "request", "ft.run", "limits" } do
      assert.truthy(counted[place], place)
    end
  end)

  it("refuses unknown fields everywhere, naming the nearest known one", function()
    -- a spec: the line of a function is its own, other fields' their line
    local rc, msg, path, stderr = spec_run("on_respnose", "function() end")
    assert.equal(1, rc)
    assert.equal(path .. ":3: field 'on_respnose': unknown field (did you mean 'on_response'?)", msg)
    assert.falsy(stderr:find("traceback", 1, true), stderr)
    rc, msg, path = spec_run("concurency", "4")
    assert.equal(path .. ":3: field 'concurency': unknown field (did you mean 'concurrency'?)", msg)
    rc, msg, path = spec_run("xyzzy", "4")
    assert.equal(path .. ":3: field 'xyzzy': unknown field", msg)
    rc, msg, path = spec_run("rsp", "2", true)
    assert.equal(path .. ":5: field 'objects[\"/host/*\"].rsp': unknown field (did you mean 'rps'?)", msg)
    rc, msg, path = spec_run("timeout", "2", true)
    assert.equal(path .. ":5: field 'objects[\"/host/*\"].timeout': not accepted in an object pattern", msg)
    -- the command line
    local rc2, line = cli("fetch", "concurency", "3")
    assert.equal(2, rc2)
    assert.equal("fetchtree fetch: unknown option '--concurency' (did you mean '--concurrency'?)", line)
    rc2, line = cli("fetch", "state", "x")
    assert.equal("fetchtree fetch: --state is an option of `fetchtree run`", line)
    -- the Lua API
    local out, err, lrc = lua([[
      local engine = require "fetchtree.engine"
      print(select(2, pcall(engine.new, { concurency = 4 })))
      print(select(2, pcall(engine.new, { start = function() end })))
      print(select(2, pcall(ft.get, "ftp://x/", { timout = 1 })))
      print(select(2, pcall(ft.request, { url = "ftp://x/", retires = 1 })))
      print(select(2, pcall(ft.fetch_all, { "ftp://x/" }, { windwo = 10 })))
      print(select(2, pcall(ft.fetch_all, { { url = "ftp://x/", bdy = "" } })))
      print(select(2, pcall(ft.run, { start = function() end }, { with_mta = true })))
      -- several: the least name, whatever the table's layout; a key that
      -- is not a name
      print(select(2, pcall(engine.new, { zz = 1, retires = 1, aa = 2, concurrency = 1 })))
      print(select(2, pcall(engine.new, { 5, rps = 1 })))
    ]])
    assert.equal(0, lrc, err)
    assert.same({
      "engine.new: field 'concurency': unknown field (did you mean 'concurrency'?)",
      "engine.new: field 'start': not accepted in engine.new",
      "ft.get: field 'timout': unknown field (did you mean 'timeout'?)",
      "ft.request: field 'retires': unknown field (did you mean 'retries'?)",
      "ft.fetch_all: field 'windwo': unknown field (did you mean 'window'?)",
      "ft.fetch_all: request 1: field 'bdy': unknown field (did you mean 'body'?)",
      "ft.run: field 'with_mta': unknown field (did you mean 'with_meta'?)",
      "engine.new: field 'aa': unknown field",
      "engine.new: field '[1]': unknown field (fields have names)",
    }, (function() local t = {} for l in out:gmatch("[^\n]+") do t[#t + 1] = l end return t end)())
  end)

  it("refuses unknown fields of a crawl's request tables, emit's and obj:fetch's, the same way", function()
    local srv = H.server()
    local path, out, err = H.tmpname(".lua"), H.tmpname(".out"), H.tmpname(".err")
    H.write(path, [[
local base = arg[1]
return {
  start = function(emit)
    emit { url = base .. "/item/1.json", mata = 1 }
  end,
}
]])
    local rc = H.sh(string.format("%s run %s -q -- %s > %s 2> %s < /dev/null", H.bin, path, srv.base, out, err))
    assert.equal(1, rc)
    local line = (H.read(err) or ""):match("^[^\n]*")
    assert.equal("fetchtree run: start failed: " .. path ..
                 ":4: request: field 'mata': unknown field (did you mean 'meta'?)", line)
    H.write(path, [[
local base = arg[1]
return {
  start = function(emit) emit { url = base .. "/item/1.json", dedupe = false } end,
  on_response = function(res, obj)
    obj:fetch { url = "/item/2.json", hedaers = { a = "b" } }
  end,
}
]])
    rc = H.sh(string.format("%s run %s -q -- %s > %s 2> %s < /dev/null", H.bin, path, srv.base, out, err))
    srv.stop()
    assert.equal(0, rc, H.read(err))
    local rec = H.json.decode((H.read(out) or ""):match("^[^\n]*"))
    assert.equal("script", rec.error.kind)
    assert.equal(path .. ":5: request: field 'hedaers': unknown field (did you mean 'headers'?)", rec.error.message)
  end)

  it("refuses unknown fields of fetch's JSON request lines, as the line's own error record", function()
    local srv = H.server()
    local input, out = H.tmpname(".in"), H.tmpname(".out")
    H.write(input, string.format('{"url":"%s/item/1.json","hedaers":{"a":"b"}}\n'
      .. '{"url":"%s/item/2.json","meta":{"x":1}}\n{"url":"%s/item/3.json","timeout":1}\n',
      srv.base, srv.base, srv.base))
    local rc = H.sh(string.format("%s fetch -q --no-body %s > %s 2>/dev/null", H.bin, input, out))
    assert.equal(0, rc)
    local by = {}
    for line in (H.read(out) or ""):gmatch("[^\n]+") do
      local rec = H.json.decode(line)
      by[rec.index] = rec
    end
    assert.equal("input", by[0].error.kind)
    assert.equal("request line: field 'hedaers': unknown field (did you mean 'headers'?)", by[0].error.message)
    assert.equal(200, by[1].status)
    assert.equal("request line: field 'timeout': not accepted in a request line", by[2].error.message)
    -- the requests that were refused were not sent
    H.sleep(0.1)
    local rows = srv.log(1)
    srv.stop()
    assert.equal(1, #rows)
    assert.equal("/item/2.json", rows[1].target)
  end)

  it("says file:line for spec errors, never with fetchtree's own traceback", function()
    local cases = {
      -- source, the first line of stderr (PATH: the script)
      { "return {\n  start = 5,\n}\n", "PATH:2: field 'start': must be a function, got number" },
      { "local x = 1\nerror('boom')\n", "PATH:2: boom" },
      { "return {\n  start = function() end,\n  objects = { nope = {} },\n}\n",
        "PATH:3: field 'objects': wants { [\"/pattern/*\"] = { rps = ..., ... } }" },
      { "return {\n  start = function() end,\n  robots = 'yes',\n}\n",
        "PATH:3: field 'robots': must be true, false or { agent = string, recheck = seconds }, got string" },
      { "return {\n  start = function() end,\n  objects = {\n    ['/a'] = { robots = {} },\n  },\n}\n",
        "PATH:4: field 'objects[\"/a\"].robots': must be a boolean, got table" },
    }
    for _, c in ipairs(cases) do
      local path, err = H.tmpname(".lua"), H.tmpname(".err")
      H.write(path, c[1])
      local rc = H.sh(string.format("%s run %s -q > /dev/null 2> %s < /dev/null", H.bin, path, err))
      local stderr = H.read(err) or ""
      assert.equal(1, rc, c[1])
      assert.equal(c[2]:gsub("PATH", path), stderr:match("^[^\n]*"))
      assert.falsy(stderr:find("traceback", 1, true), stderr)
      assert.falsy(stderr:find("fetchtree.crawl", 1, true), stderr)
      assert.falsy(stderr:find("crawl.lua", 1, true), stderr)
    end
    -- ft.run's spec, in a script: the script's file and the field's line
    local out, err, rc, path = lua([[
      local ok, e = pcall(ft.run, {
        start = function() end,
        concurrency = 2.7,
      })
      print(e)
    ]])
    assert.equal(0, rc, err)
    assert.equal(path .. ":3: field 'concurrency': must be a whole number from 1 to 100000, got 2.7\n", out)
  end)

  it("reaches ft.run's engine: settings it used to drop, from the spec or its options", function()
    local srv = H.server()
    local out, err, rc = lua(string.format([[
      local base = %q
      local seen, n = {}, 0
      local spec = {
        user_agent = "spec/1",
        start = function(emit) n = n + 1; emit { url = base .. "/echo?ua" .. n } end,
        on_response = function(res) return { ua = res:json().headers["user-agent"] } end,
        on_error = function(e) return { kind = e.kind } end,
      }
      local function put(r) seen[#seen + 1] = r.ua or r.kind end
      ft.run(spec, { out = put })
      ft.run(spec, { out = put, user_agent = "option/2" })
      spec.max_body = 10 -- the echo is longer
      ft.run(spec, { out = put })
      print(table.concat(seen, " "))
    ]], srv.base))
    srv.stop()
    assert.equal(0, rc, err)
    assert.equal("spec/1 option/2 too_large\n", out)
  end)

  it("is what --help, the man page and the README list", function()
    local man, readme = assert(H.read("docs/fetchtree.1")), assert(H.read("README.md"))
    local function help(cmd)
      local f = H.tmpname(".help")
      assert.equal(0, H.sh(string.format("%s %s --help > %s", H.bin, cmd, f)))
      return H.read(f)
    end
    local fetch_help, run_help = help("fetch"), help("run")
    local missing, options, n = {}, {}, 0
    for _, r in ipairs(table_rows()) do
      if r.option and r.name ~= "help" then
        n = n + 1
        options[r.option] = true
        local opt = "--" .. r.option
        local h = r.places.fetch and fetch_help or run_help
        if not h:find("%f[%w%-]" .. opt:gsub("%-", "%%-") .. "%f[^%w%-]") then
          missing[#missing + 1] = opt .. " (--help)"
        end
        if not man:find("\\-\\-" .. r.option:gsub("%-", "\\-"), 1, true) then
          missing[#missing + 1] = opt .. " (man page)"
        end
        if not readme:find(opt, 1, true) then missing[#missing + 1] = opt .. " (README)" end
        if r.short and not fetch_help:find("-" .. r.short .. ", " .. opt, 1, true) then
          missing[#missing + 1] = "-" .. r.short .. " (--help)"
        end
      elseif r.places.spec and not readme:find("`" .. r.name .. "`", 1, true)
          and not readme:find(r.name .. " =", 1, true) then
        missing[#missing + 1] = r.name .. " (README's spec fields)"
      end
    end
    assert.truthy(n >= 29, "found only " .. n .. " options")
    -- and the man page documents no option the table does not have
    local section = assert(man:match("\n%.SH OPTIONS\n(.-)\n%.SH "))
    for name in section:gmatch("\\%-\\%-([%w\\%-]+)") do
      name = name:gsub("\\%-", "-")
      if not options[name] then missing[#missing + 1] = "--" .. name .. " (man page, not in the table)" end
    end
    assert.same({}, missing)
  end)
end)
