-- state_spec.lua - crash-safe runs with --state: kill -9 at random points
-- and resume, finished runs, --restart, and a frontier that lives on disk.
local H = require "helper"

local graph = [[
  local base, m = arg[1], arg[2]
  return {
    rps = 400, window = 100, concurrency = 4,
    start = function(emit) emit { url = base .. "/page/0?m=" .. m } end,
    on_response = function(res, obj)
      for _, link in ipairs(res:links()) do
        if link:find("/page/", 1, true) then obj:fetch { url = link } end
      end
      obj.storage:put("pages", (obj.storage:get("pages") or 0) + 1)
      return { url = res.url, pages_so_far = obj.storage:get("pages") }
    end,
  }
]]

-- A fixture server, and the crawl script src written to a temporary file.
local function serve(src)
  local script = H.tmpname(".lua")
  H.write(script, src)
  return H.server(), script
end

local function lines_of(path)
  local t = {}
  for line in (H.read(path) or ""):gmatch("[^\n]+") do t[#t + 1] = line end
  return t
end

-- One value from the state database, read with the sqlite3 shell (nil when
-- there is none yet).
local function db_query(db, sql)
  local p = io.popen(string.format("sqlite3 -batch %s %s 2>/dev/null", H.q(db), H.q(sql)))
  local v = p:read("*l")
  p:close()
  return v
end

describe("crash-safe runs (--state)", function()
  local srv, script
  setup(function() srv, script = serve(graph) end)
  teardown(function() srv.stop() end)

  local function cmd(db, out, m, extra)
    return string.format("%s run %s -q --state %s --out %s %s -- %s %d",
      H.bin, script, db, out, extra or "", srv.base, m)
  end

  it("survives kill -9 at random points: every page recorded exactly once", function()
    local db, out = H.tmpname(".db"), H.tmpname(".jsonl")
    local m = 400
    math.randomseed(os.time())
    local kills = 0
    for _ = 1, 5 do
      local delay = 0.15 + math.random() * 0.5
      H.sh(string.format("(%s 2>/dev/null & pid=$!; sleep %.2f; kill -9 $pid; wait $pid) 2>/dev/null",
        cmd(db, out, m), delay))
      kills = kills + 1
    end
    local rc = H.sh(cmd(db, out, m) .. " 2>/dev/null")
    assert.equal(0, rc)
    local seen, n = {}, 0
    for _, line in ipairs(lines_of(out)) do
      local rec = H.json.decode(line)
      assert.is_nil(seen[rec.url], "recorded twice: " .. rec.url)
      seen[rec.url] = true
      n = n + 1
    end
    assert.equal(m, n)
    -- storage survived with the records: the counter saw every page once
    local max = 0
    for _, line in ipairs(lines_of(out)) do max = math.max(max, H.json.decode(line).pages_so_far) end
    assert.equal(m, max)
    assert.equal(5, kills)
  end)

  it("does nothing for a finished crawl unless --restart", function()
    local db, out = H.tmpname(".db"), H.tmpname(".jsonl")
    assert.equal(0, H.sh(cmd(db, out, 20) .. " 2>/dev/null"))
    assert.equal(20, #lines_of(out))
    H.sleep(0.15) -- the server's log is flushed within 50 ms
    local before = #srv.log_for("/page/", 0)
    local err = H.tmpname(".err")
    assert.equal(0, H.sh(cmd(db, out, 20):gsub(" %-q ", " ") .. " 2> " .. err))
    assert.truthy(H.read(err):match("finished"))
    assert.equal(20, #lines_of(out))
    H.sleep(0.1)
    assert.equal(before, #srv.log_for("/page/", 0))
    assert.equal(0, H.sh(cmd(db, out, 20, "--restart") .. " 2>/dev/null"))
    assert.equal(20, #lines_of(out))
    assert.truthy(#srv.log_for("/page/", before + 20) >= before + 20)
  end)

  it("refuses a state database of schema version 1 (other hashes), saying what to do", function()
    local db, out = H.tmpname(".db"), H.tmpname(".jsonl")
    assert.equal(0, H.sh(cmd(db, out, 5) .. " 2>/dev/null"))
    assert.equal("2", db_query(db, "SELECT val FROM ft_info WHERE key = 'schema_version'"))
    -- seen keys and table names of version 1 were FNV-1a hashes: a resume
    -- with XXH3 would fetch every seen request again
    db_query(db, "UPDATE ft_info SET val = '1' WHERE key = 'schema_version'")
    local err = H.tmpname(".err")
    assert.are_not.equal(0, H.sh(cmd(db, out, 5, "--restart") .. " 2> " .. err))
    local msg = H.read(err)
    assert.truthy(msg:find("schema version 1 is not supported (this fetchtree reads version 2)", 1, true), msg)
    assert.truthy(msg:find("start over with a new state file", 1, true), msg)
    assert.equal(5, #lines_of(out))
  end)

  it("takes the state database from the spec's state field too", function()
    local db, out = H.tmpname(".db"), H.tmpname(".jsonl")
    local src = H.tmpname(".lua")
    H.write(src, graph:gsub("rps = 400,", "state = " .. string.format("%q", db) .. ", rps = 400,"))
    local function go()
      local err = H.tmpname(".err")
      H.sh(string.format("%s run %s --out %s -- %s 10 2> %s", H.bin, src, out, srv.base, err))
      return H.read(err)
    end
    assert.falsy(go():match("finished"))
    assert.equal(10, #lines_of(out))
    assert.truthy(go():match("finished"))
    assert.equal(10, #lines_of(out))
  end)

  it("keeps numbers exact through the frontier and storage on disk", function()
    local db, out, src = H.tmpname(".db"), H.tmpname(".jsonl"), H.tmpname(".lua")
    H.write(src, [[
      local base = arg[1]
      return {
        start = function(emit) emit { url = base .. "/item/1.json?exact", meta = { id = 1234567890123456 } } end,
        on_response = function(res, obj)
          obj.storage:put("t", { n = 1234567890123457, f = 0.1 })
          local t = obj.storage:get("t")
          return { meta_id = res.request.meta.id, n = t.n, f = t.f }
        end,
      }
    ]])
    assert.equal(0, H.sh(string.format("%s run %s -q --state %s --out %s -- %s", H.bin, src, db, out, srv.base)))
    local line = lines_of(out)[1]
    assert.truthy(line:find('"meta_id":1234567890123456', 1, true), line)
    assert.truthy(line:find('"n":1234567890123457', 1, true), line)
    assert.truthy(line:find('"f":0.1', 1, true), line)
  end)

  it("keeps a large frontier on disk, not in memory", function()
    -- one response queues n follow-ups at once; with --state they wait in
    -- the database, so memory does not grow with n
    local src = H.tmpname(".lua")
    H.write(src, [[
      local base, n = arg[1], tonumber(arg[2])
      return {
        concurrency = 8,
        start = function(emit) emit { url = base .. "/item/1.json?fan" .. n } end,
        on_response = function(res, obj)
          if res.request.depth == 0 then
            for i = 1, n do
              obj:fetch { url = base .. "/item/" .. i .. ".json?f" .. n, meta = { pad = string.rep("x", 200) } }
            end
          end
          return nil
        end,
      }
    ]])
    local function peak(n)
      local db, err = H.tmpname(".db"), H.tmpname(".err")
      local rc = H.sh(string.format("%s run %s --no-body --state %s --out /dev/null -- %s %d 2> %s",
        H.release_bin, src, db, srv.base, n, err))
      assert.equal(0, rc, H.read(err))
      assert.truthy(H.read(err):match((n + 1) .. " requests"), H.read(err))
      return tonumber(H.read(err):match("peak RSS ([%d.]+) MB"))
    end
    local small, large = peak(2000), peak(40000)
    assert.truthy(large < small + 6, string.format("2k: %.1f MB, 40k: %.1f MB", small, large))
  end)
end)

-- ---- faults of the state itself (issue 12) ---------------------------------

-- A slow crawl: n requests to /delay/ms, each recorded as { i = n }.
local slow = [[
  local base, n, ms = arg[1], tonumber(arg[2]), arg[3]
  return {
    concurrency = 2, dedupe = false,
    start = function(emit)
      for i = 1, n do emit { url = base .. "/delay/" .. ms .. "?i=" .. i, meta = { i = i } } end
    end,
    on_response = function(res) return { i = res.request.meta.i } end,
  }
]]

-- Polls (up to 20 s) until sql on db gives a value for which ok(v) holds.
local function wait_db(db, sql, ok)
  for _ = 1, 400 do
    local v = db_query(db, sql)
    if v and ok(v) then return v end
    H.sleep(0.05)
  end
  error("timed out waiting for " .. sql)
end

local OFFSET = "SELECT val FROM ft_meta WHERE key = 'out_offset'"

-- Starts cmd in the background; returns its pid.
local function spawn(cmd)
  local pidfile = H.tmpname(".pid")
  os.execute(string.format("(%s) >/dev/null 2>&1 & echo $! > %s", cmd, pidfile))
  return tonumber(H.read(pidfile))
end

local function kill9(pid)
  H.sh(string.format("kill -9 %d 2>/dev/null; while kill -0 %d 2>/dev/null; do sleep 0.05; done", pid, pid))
end

-- The records' i values: a count per i.
local function count_i(path)
  local n, by = 0, {}
  for _, line in ipairs(lines_of(path)) do
    local rec = H.json.decode(line)
    n = n + 1
    if rec.i then by[rec.i] = (by[rec.i] or 0) + 1 end
  end
  return n, by
end

describe("the state's own faults", function()
  local srv, script
  setup(function() srv, script = serve(slow) end)
  teardown(function() srv.stop() end)

  local function cmd(db, n, ms, out)
    return string.format("%s run %s -q --state %s %s -- %s %d %d",
      H.bin, script, db, out, srv.base, n, ms)
  end

  it("refuses a second run on the same state file while the first runs; a killed one lets go", function()
    local db, out, err = H.tmpname(".db"), H.tmpname(".jsonl"), H.tmpname(".err")
    local first = spawn(cmd(db, 8, 300, "--out " .. out))
    wait_db(db, OFFSET, function(v) return tonumber(v) ~= nil end)
    local out2 = H.tmpname(".jsonl")
    local rc = H.sh(cmd(db, 8, 300, "--out " .. out2) .. " 2> " .. err)
    assert.equal(1, rc)
    assert.truthy(H.read(err):find("in use by another fetchtree process", 1, true), H.read(err))
    assert.is_nil(H.read(out2)) -- the refused run never opened its output
    kill9(first)
    assert.equal(0, H.sh(cmd(db, 8, 300, "--out " .. out) .. " 2> " .. err), H.read(err))
    local n, by = count_i(out)
    assert.equal(8, n)
    for i = 1, 8 do assert.equal(1, by[i], "i = " .. i) end
  end)

  it("keeps how far start got across two kills: start's requests are not repeated", function()
    local db, out = H.tmpname(".db"), H.tmpname(".jsonl")
    local pid = spawn(cmd(db, 2, 2500, "--out " .. out))
    wait_db(db, "SELECT val FROM ft_meta WHERE key = 'start_pos'", function(v) return v == "2" end)
    kill9(pid)
    -- the resumed run takes both requests from the frontier, so start does
    -- not run again before this kill; its checkpoints must keep start_pos
    pid = spawn(cmd(db, 2, 2500, "--out " .. out))
    -- the resumed run has sent both requests again (the server logs them
    -- on arrival); then a few checkpoints (every 200 ms) before the kill
    local sent = 0
    for _ = 1, 5 do -- up to 15 s on a loaded machine
      sent = #srv.log_for("/delay/2500", 4)
      if sent >= 4 then break end
    end
    assert.equal(4, sent)
    H.sleep(0.8)
    kill9(pid)
    assert.equal("2", db_query(db, "SELECT val FROM ft_meta WHERE key = 'start_pos'"))
    assert.equal(0, H.sh(cmd(db, 2, 50, "--out " .. out) .. " 2>/dev/null"))
    local n, by = count_i(out)
    assert.equal(2, n)
    assert.same({ 1, 1 }, { by[1], by[2] })
  end)

  it("skips a corrupt frontier row with an error record and a warning; the rest resumes", function()
    local db, out, err = H.tmpname(".db"), H.tmpname(".jsonl"), H.tmpname(".err")
    local pid = spawn(cmd(db, 3, 3000, "--out " .. out))
    -- concurrency 2: two requests in the frontier, the third not emitted yet
    wait_db(db, "SELECT count(*) FROM ft_pending", function(v) return v == "2" end)
    wait_db(db, OFFSET, function(v) return tonumber(v) ~= nil end)
    kill9(pid)
    local bad = db_query(db, "SELECT min(id) + 1 FROM ft_pending")
    db_query(db, "UPDATE ft_pending SET req = '{not json' WHERE id = " .. bad)
    assert.equal(0, H.sh(cmd(db, 3, 50, "--out " .. out) .. " 2> " .. err), H.read(err))
    assert.truthy(H.read(err):find("warning: state: frontier row " .. bad .. " is not a request", 1, true), H.read(err))
    local recs = {}
    for _, line in ipairs(lines_of(out)) do recs[#recs + 1] = H.json.decode(line) end
    assert.equal(3, #recs)
    local good, errs = 0, {}
    for _, r in ipairs(recs) do
      if r.i then good = good + 1 else errs[#errs + 1] = r end
    end
    assert.equal(2, good)
    assert.equal(1, #errs)
    assert.equal(tonumber(bad), errs[1].index)
    assert.equal("internal", errs[1].error.kind)
    assert.truthy(errs[1].error.message:find("frontier row " .. bad, 1, true))
    assert.equal("0", db_query(db, "SELECT count(*) FROM ft_pending"))
  end)

  it("keeps storage keys whole: a NUL byte does not cut a key", function()
    local db, out, src = H.tmpname(".db"), H.tmpname(".jsonl"), H.tmpname(".lua")
    H.write(src, [[
      local base = arg[1]
      return {
        start = function(emit) emit { url = base .. "/item/1.json?nul" } end,
        on_response = function(res, obj)
          local st = obj.storage
          st:put("a", "plain")
          st:put("a\0b", "nul")
          local keys = {}
          for _, e in ipairs(st:list { prefix = "a\0" }) do keys[#keys + 1] = e.key:gsub("%z", "\\0") end
          local a, ab = st:get("a"), st:get("a\0b")
          st:delete("a\0b")
          return { a = a, ab = ab, keys = table.concat(keys, ","), after = st:get("a"), gone = st:get("a\0b") == nil }
        end,
      }
    ]])
    assert.equal(0, H.sh(string.format("%s run %s -q --state %s --out %s -- %s", H.bin, src, db, out, srv.base)))
    local rec = H.json.decode(lines_of(out)[1])
    assert.same({ a = "plain", ab = "nul", keys = "a\\0b", after = "plain", gone = true }, rec)
  end)

  it("refuses to resume into an output that is not the one it wrote (> empties it); >> resumes", function()
    local db, out, err = H.tmpname(".db"), H.tmpname(".jsonl"), H.tmpname(".err")
    local pid = spawn(cmd(db, 6, 600, ">> " .. out))
    local off = tonumber(wait_db(db, OFFSET, function(v) return tonumber(v) > 0 end))
    kill9(pid)
    -- stdout redirected by >: the shell emptied the file; never padded
    local copy = H.tmpname(".jsonl")
    H.sh("cp " .. out .. " " .. copy)
    assert.equal(1, H.sh(cmd(db, 6, 50, "> " .. copy) .. " 2> " .. err))
    assert.truthy(H.read(err):find("is not the one the run being resumed wrote", 1, true), H.read(err))
    assert.equal("", H.read(copy))
    -- another file, longer than the records kept: refused, left alone
    local other = H.tmpname(".jsonl")
    H.write(other, string.rep("x", off + 100))
    assert.equal(1, H.sh(cmd(db, 6, 50, "--out " .. other) .. " 2> " .. err))
    assert.truthy(H.read(err):find("is not the one", 1, true), H.read(err))
    assert.equal(string.rep("x", off + 100), H.read(other))
    -- the same file with >> (or --out) resumes
    assert.equal(0, H.sh(cmd(db, 6, 50, ">> " .. out) .. " 2> " .. err), H.read(err))
    assert.falsy(H.read(out):find("%z"))
    local n, by = count_i(out)
    assert.equal(6, n)
    for i = 1, 6 do assert.equal(1, by[i], "i = " .. i) end
  end)
end)

-- The graph crawl, with a 4 KB storage value and a 300-byte pad per page:
-- the state database and the output grow fast enough to fill a small disk.
local heavy = [[
  local base, m = arg[1], arg[2]
  return {
    rps = 400, window = 100, concurrency = 4,
    start = function(emit) emit { url = base .. "/page/0?m=" .. m } end,
    on_response = function(res, obj)
      for _, link in ipairs(res:links()) do
        if link:find("/page/", 1, true) then obj:fetch { url = link } end
      end
      obj.storage:put("pages", (obj.storage:get("pages") or 0) + 1)
      obj.storage:put(res.url, string.rep("x", 4000))
      return { url = res.url, pages_so_far = obj.storage:get("pages"), pad = string.rep("y", 300) }
    end,
  }
]]

-- A disk that fills up: a small tmpfs (mounting one needs root; without it
-- these tests are pending).
describe("a full disk under --state", function()
  local srv, script, dir, mounted
  setup(function()
    srv, script = serve(heavy)
    dir = H.tmpname(".mnt")
    mounted = H.sh("mkdir -p " .. dir .. " && mount -t tmpfs -o size=4m tmpfs " .. dir .. " 2>/dev/null") == 0
  end)
  teardown(function()
    if mounted then H.sh("umount " .. dir) end
    srv.stop()
  end)

  -- Leaves kb KB free on the tmpfs (a filler file takes the rest).
  local function fill(kb)
    H.sh(string.format("rm -f %s/*.fill; dd if=/dev/zero of=%s/reserve.fill bs=1k count=%d 2>/dev/null;"
      .. " dd if=/dev/zero of=%s/filler.fill bs=4k 2>/dev/null; rm -f %s/reserve.fill", dir, dir, kb, dir, dir))
  end

  local function run(db, out, m)
    local err = H.tmpname(".err")
    local rc = H.sh(string.format("%s run %s -q --state %s --out %s -- %s %d 2> %s",
      H.bin, script, db, out, srv.base, m, err))
    return rc, H.read(err) or ""
  end

  -- Every page exactly once, whole lines only, and the storage counter saw
  -- each page once (it was saved with the records, not apart from them).
  local function check(out, m)
    local seen, n, max = {}, 0, 0
    local text = H.read(out)
    assert.falsy(text:find("%z"), "NUL bytes in the output")
    for _, line in ipairs(lines_of(out)) do
      local rec = H.json.decode(line)
      assert.is_nil(seen[rec.url], "recorded twice: " .. rec.url)
      seen[rec.url] = true
      n = n + 1
      max = math.max(max, rec.pages_so_far)
    end
    assert.equal(m, n)
    assert.equal(m, max)
  end

  it("a full state disk stops the run at its last good commit (exit 1); the rerun resumes from there", function()
    if not mounted then pending("cannot mount a tmpfs (needs root)") return end
    local db, out, m = dir .. "/state.db", H.tmpname(".jsonl"), 300
    fill(384)
    local rc, err = run(db, out, m)
    assert.equal(1, rc, err)
    assert.truthy(err:find("to the state database failed", 1, true), err)
    assert.truthy(err:find("full", 1, true), err)
    H.sh("rm -f " .. dir .. "/*.fill")
    rc, err = run(db, out, m)
    assert.equal(0, rc, err)
    check(out, m)
  end)

  it("a full output disk stops the run with no offset committed past what was written (exit 1); the rerun resumes", function()
    if not mounted then pending("cannot mount a tmpfs (needs root)") return end
    local db, out, m = H.tmpname(".db"), dir .. "/out.jsonl", 300
    fill(48)
    local rc, err = run(db, out, m)
    assert.equal(1, rc, err)
    assert.truthy(err:find("writing records: No space left on device", 1, true), err)
    H.sh("rm -f " .. dir .. "/*.fill")
    rc, err = run(db, out, m)
    assert.equal(0, rc, err)
    check(out, m)
  end)
end)
