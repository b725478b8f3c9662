-- helper.lua - what the specs share: start and stop the fixture server,
-- run fetchtree, read its records and the server's request log.
local ffi = require "ffi"
local cjson = require "cjson"

ffi.cdef [[
int usleep(unsigned int usec);
int kill(int pid, int sig);
]]

local H = {}
H.bin = os.getenv("FT_BIN") or "build/fetchtree-asan"
H.release_bin = os.getenv("FT_RELEASE_BIN") or "build/fetchtree"
H.fixture = os.getenv("FT_FIXTURE") or "build/fixture-server"

-- busted loads this module afresh for every spec file, so each load makes
-- a directory of its own (run-tests.sh removes TMPDIR when done)
local tmp_n = 0
local tmp_dir
do
  local p = io.popen("mktemp -d \"${TMPDIR:-/tmp}/fetchtree-spec.XXXXXX\"")
  tmp_dir = p:read("*l")
  p:close()
  assert(tmp_dir and tmp_dir ~= "", "mktemp failed")
end

function H.tmpname(suffix)
  tmp_n = tmp_n + 1
  return string.format("%s/%d%s", tmp_dir, tmp_n, suffix or "")
end

function H.sleep(s) ffi.C.usleep(math.floor(s * 1e6)) end

function H.read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

function H.write(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end
H.q = q

-- Run a shell command line; returns its exit code.
function H.sh(cmd)
  local rcfile = H.tmpname(".rc")
  os.execute("(" .. cmd .. "); echo $? > " .. rcfile)
  return tonumber(H.read(rcfile))
end

-- Start a redis-server of the test's own on 127.0.0.1 (no persistence, in
-- a temporary directory). Redis takes no ephemeral port, so a random one is
-- tried until one binds (at most 20). Returns { port, url, stop = fn }.
function H.redis()
  local seed = tonumber(tostring(tmp_dir):match("(%w+)$"), 36) or os.time()
  math.randomseed(seed + os.time() + tmp_n)
  for _ = 1, 20 do
    local port = math.random(20000, 59999)
    local dir, pidfile = H.tmpname(".redis"), H.tmpname(".pid")
    os.execute("mkdir -p " .. dir)
    os.execute(string.format("redis-server --bind 127.0.0.1 --port %d --save '' --appendonly no"
      .. " --dir %s > %s/log 2>&1 & echo $! > %s", port, dir, dir, pidfile))
    local pid = tonumber(H.read(pidfile))
    for _ = 1, 200 do
      if H.sh(string.format("redis-cli -p %d ping 2>/dev/null | grep -q PONG", port)) == 0 then
        local r = { port = port, url = "redis://127.0.0.1:" .. port }
        function r.stop()
          if pid then ffi.C.kill(pid, 15) end
          pid = nil
        end
        return r
      end
      if H.sh("kill -0 " .. pid .. " 2>/dev/null") ~= 0 then break end -- the port was taken
      H.sleep(0.025)
    end
    if pid then ffi.C.kill(pid, 9) end
  end
  error("redis-server did not start (make deps installs it)")
end

-- Start a fixture server on an ephemeral port. opts.hosts: list of
-- addresses (default {"127.0.0.1"}). Returns a server table:
-- { port, base, base2, pid, log_path, stop = fn, log = fn }.
function H.server(opts)
  opts = opts or {}
  local hosts = opts.hosts or { "127.0.0.1" }
  local portfile, log, pidfile = H.tmpname(".port"), H.tmpname(".log"), H.tmpname(".pid")
  local args = {}
  for _, h in ipairs(hosts) do args[#args + 1] = "--host " .. h end
  os.execute(string.format("%s %s --port 0 --port-file %s --log %s --max-seconds 600 --seed %d >/dev/null 2>&1 & echo $! > %s",
    H.fixture, table.concat(args, " "), portfile, log, opts.seed or 1, pidfile))
  local port
  for _ = 1, 500 do
    port = tonumber(H.read(portfile) or "")
    if port then break end
    H.sleep(0.01)
  end
  assert(port, "fixture server did not start")
  local s = {
    port = port,
    pid = tonumber(H.read(pidfile)),
    log_path = log,
    base = "http://127.0.0.1:" .. port,
    base2 = "http://127.0.0.2:" .. port,
  }
  function s.stop()
    if s.pid then ffi.C.kill(s.pid, 15) end
    s.pid = nil
  end
  -- The request log as a list of {t, addr, method, target, conn, blen};
  -- waits until it holds at least `min` lines (the server flushes within 50 ms).
  function s.log(min)
    min = min or 0
    local rows
    for _ = 1, 100 do
      rows = {}
      for line in (H.read(log) or ""):gmatch("[^\n]+") do
        local t, addr, method, target, conn, blen = line:match("^(%S+)\t(%S+)\t(%S+)\t(%S+)\t(%S+)\t(%S+)$")
        if t then
          rows[#rows + 1] = { t = tonumber(t), addr = addr, method = method, target = target,
                              conn = tonumber(conn), blen = tonumber(blen) }
        end
      end
      if #rows >= min then break end
      H.sleep(0.03)
    end
    return rows
  end
  -- Log rows whose target starts with prefix (or, with plain = true,
  -- contains it), waiting up to 3 s for at least `min` of them.
  function s.log_for(prefix, min, plain)
    local out
    for _ = 1, 100 do
      out = {}
      for _, r in ipairs(s.log()) do
        local hit = plain and r.target:find(prefix, 1, true) or
                    r.target:sub(1, #prefix) == prefix
        if hit then out[#out + 1] = r end
      end
      if #out >= (min or 0) then break end
      H.sleep(0.03)
    end
    return out
  end
  return s
end

-- A directory holding a self-signed certificate for 127.0.0.1 (c.pem,
-- key k.pem), and a free loopback port for a TLS server started there: the
-- kernel picks it for a fixture server, which then makes way.
function H.tls_fixture()
  local dir = H.tmpname(".tls")
  assert(H.sh(string.format(
    "mkdir -p %s && cd %s && openssl req -x509 -newkey rsa:2048 -nodes -keyout k.pem -out c.pem -days 1 -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1",
    dir, dir)) == 0, "openssl req failed")
  local probe = H.server()
  local port = probe.port
  probe.stop()
  H.sleep(0.1)
  return dir, port
end

-- Run `fetchtree fetch ARGS` over the given input lines (or raw input
-- text). Returns a result table: { rc, records (decoded, in output
-- order), by_index (records keyed by index), stdout, stderr }.
function H.fetch(input, args, opts)
  opts = opts or {}
  local infile, outfile, errfile = H.tmpname(".in"), H.tmpname(".out"), H.tmpname(".err")
  if type(input) == "table" then input = table.concat(input, "\n") .. "\n" end
  H.write(infile, input)
  local cmd = string.format("%s fetch %s < %s > %s 2> %s", opts.bin or H.bin, args or "", infile, outfile, errfile)
  local rc = H.sh(cmd)
  local out = H.read(outfile) or ""
  local res = { rc = rc, stdout = out, stderr = H.read(errfile) or "", records = {}, by_index = {} }
  for line in out:gmatch("[^\n]+") do
    local ok, rec = pcall(cjson.decode, line)
    assert(ok, "record is not JSON: " .. line)
    res.records[#res.records + 1] = rec
    res.by_index[rec.index] = rec
  end
  return res
end

-- Largest number of times in any sliding interval [t, t+w) (seconds).
function H.max_in_window(times, w)
  table.sort(times)
  local best, j = 0, 1
  for i = 1, #times do
    while times[i] - times[j] >= w do j = j + 1 end
    if i - j + 1 > best then best = i - j + 1 end
  end
  return best
end

H.null = cjson.null
H.json = cjson

-- Write a crawl script and run `fetchtree run SCRIPT ARGS` (args "-q" when
-- nil; "-- x y" passes script arguments) with stdin closed. Returns
-- { rc, stdout, stderr, records (decoded, in output order) }.
function H.run(src, args)
  local path, out, err = H.tmpname(".lua"), H.tmpname(".out"), H.tmpname(".err")
  H.write(path, src)
  local rc = H.sh(string.format("%s run %s %s > %s 2> %s < /dev/null", H.bin, path, args or "-q", out, err))
  local res = { rc = rc, stdout = H.read(out) or "", stderr = H.read(err) or "", records = {} }
  for line in res.stdout:gmatch("[^\n]+") do res.records[#res.records + 1] = cjson.decode(line) end
  return res
end

return H
