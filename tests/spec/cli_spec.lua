-- cli_spec.lua - the command line as a process: failed writes of records,
-- closed standard descriptors, unreadable inputs, the open files limit,
-- input errors and comments, the Ctrl-C summary, and that every option is
-- documented.
local H = require "helper"
local null = H.null

-- Occurrences of plain text needle in s.
local function count(s, needle)
  local n, i = 0, 1
  while true do
    local a, b = s:find(needle, i, true)
    if not a then return n end
    n, i = n + 1, b + 1
  end
end

local function lines_of(s)
  local n = 0
  for _ in (s or ""):gmatch("[^\n]+") do n = n + 1 end
  return n
end

describe("fetchtree (the command line)", function()
  local srv
  setup(function() srv = H.server() end)
  teardown(function() srv.stop() end)

  -- 20,000 URLs, a run script that emits each, and one that also handles
  -- each response in Lua (its records are written by fetchtree.core)
  local urls, plain_script, handler_script
  local function inputs()
    if urls then return end
    urls = H.tmpname(".urls")
    local t = {}
    for i = 1, 20000 do t[i] = srv.base .. "/item/" .. i .. ".json" end
    H.write(urls, table.concat(t, "\n") .. "\n")
    local emit_all = [[
      local file = arg[1]
      return {
        concurrency = 64,
        start = function(emit)
          for line in io.lines(file) do emit { url = line } end
        end,
        %s
      }
    ]]
    plain_script, handler_script = H.tmpname(".lua"), H.tmpname(".lua")
    H.write(plain_script, emit_all:format(""))
    H.write(handler_script, emit_all:format(
      "on_response = function(res) return { url = res.url, n = #res.body } end,"))
  end

  -- Runs cmd (its records to sink, a shell redirection or pipe); returns
  -- fetchtree's exit code and its stderr.
  local function failing_write(cmd, sink)
    local err, rcf = H.tmpname(".err"), H.tmpname(".rc")
    H.sh(string.format("(%s 2> %s; echo $? > %s) %s", cmd, err, rcf, sink))
    return tonumber(H.read(rcf)), H.read(err) or ""
  end

  local sinks = {
    { "| head -c1 > /dev/null", "Broken pipe" },
    { "> /dev/full", "No space left on device" },
  }

  for _, sink in ipairs(sinks) do
    it("fetch ends cleanly when records cannot be written (" .. sink[1] .. ")", function()
      inputs()
      for _, args in ipairs { "-q", "-q --ordered" } do
        local rc, err = failing_write(string.format("%s fetch %s %s", H.bin, args, urls), sink[1])
        assert.equal(1, rc, err)
        assert.equal(1, count(err, "fetchtree: writing records: " .. sink[2]), err)
        assert.equal(1, count(err, "writing records"), err)
      end
    end)

    it("run ends cleanly when records cannot be written (" .. sink[1] .. ")", function()
      inputs()
      for _, script in ipairs { plain_script, handler_script } do
        local rc, err = failing_write(string.format("%s run %s -q -- %s < /dev/null", H.bin, script, urls),
          sink[1])
        assert.equal(1, rc, err)
        assert.equal(1, count(err, "fetchtree: writing records: " .. sink[2]), err)
        assert.equal(1, count(err, "writing records"), err)
        assert.falsy(err:find("state", 1, true), err)
      end
    end)
  end

  it("run --state commits nothing after a failed write and says so once", function()
    inputs()
    local db = H.tmpname(".db")
    local rc, err = failing_write(string.format("%s run %s -q --state %s -o /dev/full -- %s < /dev/null",
      H.bin, handler_script, db, urls), "")
    assert.equal(1, rc, err)
    assert.equal(1, count(err, "fetchtree: writing records: No space left on device"), err)
    assert.falsy(err:find("could not save", 1, true), err)
    -- the crawl is not marked finished: the same command runs it again
    local rc2, err2 = failing_write(string.format("%s run %s -q --state %s -o /dev/full -- %s < /dev/null",
      H.bin, handler_script, db, urls), "")
    assert.equal(1, rc2, err2)
    assert.falsy(err2:find("has finished", 1, true), err2)
  end)

  for _, closed in ipairs { ">&-", "<&-", "2>&-" } do
    it("starts with a closed standard descriptor (" .. closed .. ")", function()
      local url = srv.base .. "/item/1.json"
      -- fetch: with stdout closed the record goes nowhere, but nothing aborts
      local sink = closed == ">&-" and "" or "> /dev/null"
      assert.equal(0, H.sh(string.format("echo %s | %s fetch -q %s %s", url, H.bin, closed, sink)))
      local out = H.tmpname(".out")
      assert.equal(0, H.sh(string.format("echo %s | %s fetch -q -o %s %s", url, H.bin, out, closed)))
      local want = closed == "<&-" and 0 or 1 -- stdin closed reads as empty
      assert.equal(want, lines_of(H.read(out)))
      -- run
      local script = H.tmpname(".lua")
      H.write(script, [[return { start = function(emit) emit { url = arg[1] } end }]])
      local out2 = H.tmpname(".out")
      assert.equal(0, H.sh(string.format("%s run %s -q -o %s -- %s %s", H.bin, script, out2, url, closed)))
      assert.equal(1, lines_of(H.read(out2)))
      -- repl
      assert.equal(0, H.sh(string.format("echo 'x = 1' | %s repl %s %s", H.bin, closed, sink)))
    end)
  end

  it("refuses an input FILE that is a directory, and reports one on standard input", function()
    local dir = H.tmpname(".d")
    assert.equal(0, H.sh("mkdir " .. dir))
    local err = H.tmpname(".err")
    assert.equal(2, H.sh(string.format("%s fetch -q %s > /dev/null 2> %s", H.bin, dir, err)))
    assert.truthy(H.read(err):find(dir .. ": Is a directory", 1, true), H.read(err))
    -- other files given with it are not fetched either
    local list = H.tmpname(".in")
    H.write(list, srv.base .. "/item/1.json\n")
    local out = H.tmpname(".out")
    assert.equal(2, H.sh(string.format("%s fetch -q %s %s > %s 2> %s", H.bin, list, dir, out, err)))
    assert.equal(0, lines_of(H.read(out)))
    -- standard input can only be found out by reading it
    assert.equal(1, H.sh(string.format("%s fetch -q < %s > %s 2> %s", H.bin, dir, out, err)))
    assert.truthy(H.read(err):find("standard input: Is a directory", 1, true), H.read(err))
  end)

  it("lowers the concurrency to the open files limit, with a warning, instead of failing connects", function()
    local list = H.tmpname(".in")
    local t = {}
    for i = 1, 200 do t[i] = srv.base .. "/delay/100?fd" .. i end
    H.write(list, table.concat(t, "\n") .. "\n")
    local out, err = H.tmpname(".out"), H.tmpname(".err")
    -- ulimit -n sets the hard limit too: raising the soft one cannot help
    local rc = H.sh(string.format("ulimit -n 64 && %s fetch -q -c 64 --retries 0 %s > %s 2> %s",
      H.bin, list, out, err))
    local e = H.read(err)
    assert.equal(0, rc, e)
    assert.truthy(e:find("warning: the open files limit (ulimit -n 64) allows a concurrency of 16, not 64",
      1, true), e)
    local n = 0
    for line in H.read(out):gmatch("[^\n]+") do
      local rec = H.json.decode(line)
      assert.equal(null, rec.error, line)
      n = n + 1
    end
    assert.equal(200, n)
  end)

  it("says EMFILE when a socket cannot be opened for want of descriptors", function()
    local script = H.tmpname(".lua")
    -- the script takes every descriptor left before the first request
    H.write(script, [[
      local base, held = arg[1], {}
      return {
        retries = 0,
        start = function(emit)
          for _ = 1, 100000 do
            local f = io.open("/dev/null")
            if not f then break end
            held[#held + 1] = f
          end
          emit { url = base .. "/item/1.json" }
        end,
      }
    ]])
    local out, err = H.tmpname(".out"), H.tmpname(".err")
    local rc = H.sh(string.format("ulimit -n 256 && %s run %s -q -c 8 -- %s > %s 2> %s < /dev/null",
      H.bin, script, srv.base, out, err))
    assert.equal(0, rc, H.read(err))
    local rec = H.json.decode(H.read(out))
    assert.equal("connect", rec.error.kind)
    assert.truthy(rec.error.message:find("Too many open files (EMFILE)", 1, true), rec.error.message)
  end)

  it("gives every URL input error kind url and no attempt; skips comments and blank lines", function()
    local r = H.fetch({
      "# a comment",
      "   # an indented comment",
      "",
      "not a url",
      "http://[::1",
      "http://",
      "ftp://x/",
      '{"url":"http://[::1"}',
      '{"url":"https://exa mple.com/"}',
      srv.base .. "/item/1.json",
    }, "-q")
    assert.equal(0, r.rc, r.stderr)
    assert.equal(7, #r.records)
    for i = 0, 5 do
      local rec = r.by_index[i]
      assert.equal("url", rec.error.kind, H.json.encode(rec))
      assert.equal(0, rec.attempts, H.json.encode(rec))
      assert.equal(null, rec.status)
    end
    assert.equal(null, r.by_index[6].error)
    assert.equal(srv.base .. "/item/1.json", r.by_index[6].url)
    -- comments were not sent anywhere
    for _, row in ipairs(srv.log()) do assert.falsy(row.target:find("comment", 1, true)) end
  end)

  it("counts the records written, not the requests, and sane retries in the Ctrl-C summary", function()
    local script = H.tmpname(".lua")
    -- the rate keeps requests queued, never started, when Ctrl-C comes
    H.write(script, [[
      local base = arg[1]
      return {
        concurrency = 5, rps = 2,
        start = function(emit)
          emit { url = base .. "/item/1.json?sum" }
          emit { url = base .. "/item/2.json?sum" }
          for i = 1, 100 do emit { url = base .. "/stall?sum" .. i } end
        end,
        on_response = function(res) return { url = res.url } end,
      }
    ]])
    local out, err, pidf = H.tmpname(".out"), H.tmpname(".err"), H.tmpname(".pid")
    os.execute(string.format("%s run %s -- %s > %s 2> %s < /dev/null & echo $! > %s",
      H.bin, script, srv.base, out, err, pidf))
    local pid
    for _ = 1, 500 do
      pid = tonumber(H.read(pidf) or "")
      if pid then break end
      H.sleep(0.01)
    end
    assert.truthy(pid)
    -- both items answered (bounded wait), then a moment for their records
    assert.equal(2, #srv.log_for(".json?sum", 2, true))
    H.sleep(0.3)
    assert.equal(0, H.sh("kill -INT " .. pid))
    local e
    for _ = 1, 1000 do -- the summary is the last thing written
      e = H.read(err) or ""
      if e:find("interrupted after", 1, true) then break end
      H.sleep(0.01)
    end
    H.sleep(0.2)
    e = H.read(err)
    local n = tonumber(e:match("interrupted after (%d+) records"))
    assert.truthy(n, e)
    assert.equal(lines_of(H.read(out)), n)
    assert.equal(2, n)
    local seen = 0
    for r in e:gmatch("(%d+) retries") do
      assert.equal("0", r, e)
      seen = seen + 1
    end
    assert.truthy(seen > 0, e)
  end)

  -- that --help, the man page and the README document every option: in
  -- settings_spec.lua, against the settings table the options come from
end)
