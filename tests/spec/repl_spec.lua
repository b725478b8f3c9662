-- repl_spec.lua - `fetchtree repl`: what a script piping statements in
-- gets, and what a person at a terminal sees (a pseudo-terminal driven with
-- tmux: keys sent, the screen read back).
local H = require "helper"

-- Pipe src into `fetchtree repl`; returns stdout, stderr and the exit code.
local function repl(src)
  local inf, out, err = H.tmpname(".in"), H.tmpname(".out"), H.tmpname(".err")
  H.write(inf, src)
  local rc = H.sh(string.format("timeout 60 %s repl < %s > %s 2> %s", H.bin, inf, out, err))
  return H.read(out) or "", H.read(err) or "", rc
end

-- A terminal 120x40 running cmd (an argument list) with env (a table);
-- each terminal has a tmux server of its own, on a socket in the spec's
-- temporary directory. A shell runs cmd and then shows "[exit N]" (tmux's
-- own record of a dead pane's status proved unreliable); the shell also
-- gets Ctrl-C, so tests that send one do not look for that line.
local function terminal(cmd, env)
  local t = { sock = H.tmpname(".tmux") }
  local function tmux(args)
    return H.sh("tmux -S " .. H.q(t.sock) .. " " .. args .. " >/dev/null 2>&1")
  end
  local words = { "env", "-u", "FETCHTREE_HISTORY" }
  for k, v in pairs(env or {}) do words[#words + 1] = H.q(k .. "=" .. v) end
  for _, w in ipairs(cmd) do words[#words + 1] = H.q(w) end
  local line = table.concat(words, " ") .. '; echo "[exit $?]"; sleep 60'
  assert(tmux("new-session -d -x 120 -y 40 " .. H.q(line)) == 0, "tmux new-session failed")
  function t.screen()
    local p = io.popen("tmux -S " .. H.q(t.sock) .. " capture-pane -p 2>/dev/null")
    local s = p:read("*a")
    p:close()
    return (s:gsub("[ \t]+\n", "\n"):gsub("%s+$", "")) -- trailing blanks, the empty rows
  end
  -- Wait (3 s at most) until the screen (without trailing blanks: the
  -- prompt is "ft>" at the end) matches pattern; returns the screen and
  -- whether it matched.
  function t.wait(pattern, seconds)
    local s
    for _ = 1, math.floor((seconds or 3) / 0.05) do
      s = t.screen()
      if s:find(pattern) then return s, true end
      H.sleep(0.05)
    end
    return s, false
  end
  function t.expect(pattern, seconds)
    local s, ok = t.wait(pattern, seconds)
    assert(ok, "waited for " .. pattern .. " on the screen:\n" .. s)
    return s
  end
  function t.type(text) tmux("send-keys -l " .. H.q(text)) end
  function t.keys(...) tmux("send-keys " .. table.concat({ ... }, " ")) end
  function t.kill() tmux("kill-server") end
  return t
end

describe("fetchtree repl, statements piped in", function()
  it("prints expressions, strings raw, several values tab-separated; statements print nothing", function()
    local out, err, rc = repl(table.concat({
      "1+1", '"a".."b"', "x = 5", "x", "=x*2", "1, 'two', nil", "print('said')", "local y = 1", "",
    }, "\n"))
    assert.equal("2\nab\n5\n10\n1\ttwo\tnil\nsaid\n", out)
    assert.equal("", err)
    assert.equal(0, rc)
  end)

  it("reads an unfinished statement on until it is complete", function()
    local out, err = repl("function double(n)\n  return n * 2\nend\ndouble(21)\nt = {\n  1,\n  2 }\n#t\ns = [[a\nb]]\ns\n")
    assert.equal("42\n2\na\nb\n", out)
    assert.equal("", err)
  end)

  it("pretty-prints tables: sorted keys, numbers first, nested, cycles, depth, size limits", function()
    local out = repl([[
t = {name = "fetchtree", list = {1, 2, 3}, nested = {deep = {deeper = {deepest = {bottom = 1}}}}, [2] = "two", [1] = "one", ["with space"] = ("x"):rep(30), [10] = 10}
t
c = {} c.self = c
c
{ b = 1, a = "s\n" }
{}
s = ("x"):rep(250)
s
{ s }
n = {} for i = 1, 60 do n[i] = i * i end
n
]])
    assert.equal([[
{
  "one",
  "two",
  [10] = 10,
  list = { 1, 2, 3 },
  name = "fetchtree",
  nested = { deep = { deeper = { deepest = {...} } } },
  ["with space"] = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
}
{ self = <cycle> }
{ a = "s\n", b = 1 }
{}
]] .. ("x"):rep(200) .. "... (250 bytes)\n"
       .. '{\n  "' .. ("x"):rep(200) .. '"... (250 bytes)\n}\n', out:match("^(.-)\n{\n  1,") .. "\n")
    local list = out:match("\n({\n  1,.*)$")
    assert.truthy(list:find("\n  2401,\n", 1, true))  -- 49²
    local tail = "\n  2500,\n  ... (10 more)\n}\n"
    assert.equal(tail, list:sub(-#tail))
  end)

  it("prints a response as one line, and a list of them one line each", function()
    local out = repl([[
Res = require("fetchtree.crawl").Res
r = setmetatable({ status = 200, url = "http://h/x", body = ("x"):rep(2048), elapsed_ms = 3.14159,
                   _h = "content-type\0text/html; charset=utf-8\0" }, Res)
r
{ r, { error = { kind = "timeout", message = "too slow" } } }
{ res = r }
]])
    assert.equal([[
<response 200 http://h/x  2.0 KB  3.1 ms  text/html>
[1] <response 200 http://h/x  2.0 KB  3.1 ms  text/html>
[2] <error timeout: too slow>
{ res = <response 200 http://h/x  2.0 KB  3.1 ms  text/html> }
]], out)
  end)

  it("prints errors on stderr and goes on with the next line", function()
    local out, err, rc = repl([[
error("boom")
1+1
function f() local x return x.y end
f()
x = = 1
error({ kind = "dns", message = "no such host" })
3
]])
    assert.equal("2\n3\n", out)
    assert.equal(0, rc)
    assert.truthy(err:find("stdin:1: boom\n", 1, true), err)
    assert.truthy(err:find("stdin:1: attempt to index local 'x' (a nil value)\nstack traceback:\n", 1, true), err)
    assert.truthy(err:find("stdin:1: in function 'f'", 1, true), err)
    assert.truthy(err:find("stdin:1: unexpected symbol near '='", 1, true), err)
    assert.truthy(err:find("dns: no such host", 1, true), err)
  end)

  it("reports an error on a one-line statement or expression at line 1", function()
    local out, err, rc = repl("x.y\nx[1]\nlocal t = {} t.a.b = 1\n#nil\n1 -- a comment\n2;\nf(\n1)\n")
    assert.equal(0, rc)
    assert.equal("1\n2\n", out)
    assert.falsy(err:find("stdin:2", 1, true), err)
    local _, n = err:gsub("stdin:1: attempt to index global 'x' %(a nil value%)", "")
    assert.equal(2, n, err)
    assert.truthy(err:find("stdin:1: attempt to index field 'a' (a nil value)", 1, true), err)
    assert.truthy(err:find("stdin:1: attempt to get length of a nil value", 1, true), err)
    assert.truthy(err:find("stdin:1: attempt to call global 'f' (a nil value)", 1, true), err)
  end)

  it("reports a statement left unfinished at the end of the input", function()
    local out, err, rc = repl("for i = 1, 2 do\nprint(i)\n")
    assert.equal("", out)
    assert.equal(0, rc)
    assert.truthy(err:find("'end' expected", 1, true), err)
  end)

  it(":help lists the API, :quit leaves, os.exit sets the exit code", function()
    local out, err, rc = repl(":help\n:quit\n1+1\n")
    for _, name in ipairs { "ft.get", "ft.request", "ft.fetch_all", "ft.run", "ft.spawn", "ft.wait",
                            "ft.step", "ft.fd", "ft.unique_name", "res.status", "res:json()",
                            "res:links()", "res:xpath(expr)" } do
      assert.truthy(out:find(name, 1, true), name)
    end
    assert.falsy(out:find("\n2\n$"))
    assert.equal("", err)
    assert.equal(0, rc)
    local out2, _, rc2 = repl("os.exit(3)\n1+1\n")
    assert.equal(3, rc2)
    assert.equal("", out2)
    local out4, err4, rc4 = repl("pcall(os.exit, 4) print('the statement ends')\n1+1\n")
    assert.equal(4, rc4)
    assert.equal("the statement ends\n", out4)
    assert.equal("", err4)
    local _, err3, rc3 = repl(":frobnicate\n")
    assert.equal(0, rc3)
    assert.truthy(err3:find("unknown command :frobnicate", 1, true))
  end)

  describe("with ft", function()
    local srv
    setup(function() srv = H.server() end)
    teardown(function() srv.stop() end)

    it("get, fetch_all and the response fields and methods", function()
      local out, err = repl(string.format([[
r = get "%s/item/1.json"
r.status
r:json().title
r
p = get "%s/page/0"
#p:links() > 0
p:xpath("//title")[1]
fetch_all { "%s/item/2.json", "%s/item/3.json" }
ft.get == get
]], srv.base, srv.base, srv.base, srv.base))
      assert.equal("", err)
      local lines = {}
      for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
      assert.equal("200", lines[1])
      assert.equal("Item 1", lines[2])
      local item1 = srv.base:gsub("%p", "%%%0") .. "/item/1%.json"
      assert.truthy(lines[3]:match("^<response 200 " .. item1 .. "  %d+ B  %d+%.%d ms  application/json>$"), lines[3])
      assert.equal("true", lines[4])
      assert.equal("Page 0", lines[5])
      assert.truthy(lines[6]:match("^%[1%] <response 200 .*/item/2%.json  %d+ B  "), lines[6])
      assert.truthy(lines[7]:match("^%[2%] <response 200 .*/item/3%.json  %d+ B  "), lines[7])
      assert.equal("true", lines[8])
    end)

    it("fetch_all with a URL that fails as it is sent answers in place (it hung)", function()
      local out, err, rc = repl(string.format([[
all = fetch_all { "%s/item/1.json", "ftp://x/" }
#all, all[1].status, all[2].error.kind
]], srv.base))
      assert.equal(0, rc, err)
      assert.equal("2\t200\turl\n", out)
    end)
  end)
end)

describe("fetchtree repl, interrupted", function()
  it("Ctrl-C ends a statement that waits on the loop in a tight loop, at the first press", function()
    -- ft.step in a loop at top level: the interrupt is raised by the step
    -- itself, not left to a hook that such a loop may never run
    local out, err, pidf = H.tmpname(".out"), H.tmpname(".err"), H.tmpname(".pid")
    os.execute(string.format(
      "(printf 'while true do ft.step(0) end\\nprint(\"after\")\\n'; sleep 3) | " ..
      "timeout 30 sh -c 'echo $$ > %s; exec %s repl' > %s 2> %s &", pidf, H.bin, out, err))
    local pid
    for _ = 1, 100 do
      pid = tonumber(H.read(pidf) or "")
      if pid then break end
      H.sleep(0.05)
    end
    assert.truthy(pid, "the repl did not start")
    H.sleep(1) -- it is in the loop by now
    H.sh("kill -INT " .. pid)
    local o
    for _ = 1, 200 do -- the input ends after 3 s; the REPL then leaves
      o = H.read(out) or ""
      if o:find("after") then break end
      H.sleep(0.05)
    end
    assert.equal("after\n", o, H.read(err))
    assert.truthy((H.read(err) or ""):find("interrupted", 1, true))
  end)
end)

describe("fetchtree repl, a crawl interrupted", function()
  local srv
  setup(function() srv = H.server() end)
  teardown(function() srv.stop() end)

  it("Ctrl-C ends an ft.run (the crawl driver runs the loop), and the session goes on", function()
    local out, err, pidf = H.tmpname(".out"), H.tmpname(".err"), H.tmpname(".pid")
    local stmt = string.format("ft.run({ concurrency = 2, start = function(emit) for i = 1, 100 do "
      .. "emit(%q .. i) end end }, { out = function() end })", srv.base .. "/delay/400?")
    os.execute(string.format(
      "(printf '%%s\\nprint(\"after\")\\n' '%s'; sleep 3) | " ..
      "timeout 30 sh -c 'echo $$ > %s; exec %s repl' > %s 2> %s &", stmt, pidf, H.bin, out, err))
    local pid
    for _ = 1, 100 do
      pid = tonumber(H.read(pidf) or "")
      if pid then break end
      H.sleep(0.05)
    end
    assert.truthy(pid, "the repl did not start")
    H.sleep(1) -- the crawl is running by now (100 requests of 0.4 s, two at a time)
    H.sh("kill -INT " .. pid)
    local o
    for _ = 1, 200 do -- the input ends after 3 s; the REPL then leaves
      o = H.read(out) or ""
      if o:find("after") then break end
      H.sleep(0.05)
    end
    assert.equal("after\n", o, H.read(err))
    assert.truthy((H.read(err) or ""):find("interrupted", 1, true))
  end)
end)

describe("fetchtree repl on a terminal", function()
  local srv
  setup(function() srv = H.server() end)
  teardown(function() srv.stop() end)

  it("fetchtree alone opens it: a prompt, a value, Ctrl-D leaves with status 0", function()
    local hist = H.tmpname(".history")
    local t = terminal({ H.bin }, { FETCHTREE_HISTORY = hist })
    finally(t.kill)
    t.expect("ft>$")
    t.type("6*7")
    t.keys("Enter")
    t.expect("ft> 6%*7\n42\nft>$")
    t.keys("C-d")
    t.expect("\n%[exit 0%]$")
    assert.truthy((H.read(hist) or ""):find("6*7", 1, true))
  end)

  it("Ctrl-C drops a half-typed line, and interrupts a running statement", function()
    local t = terminal({ H.bin, "repl" }, { FETCHTREE_HISTORY = H.tmpname(".history") })
    finally(t.kill)
    t.expect("ft>$")
    t.type("abc")
    t.expect("ft> abc$")
    t.keys("C-c")
    t.expect("ft> abc^C\nft>$")
    t.type("1+2")
    t.keys("Enter")
    t.expect("\nft> 1%+2\n3\nft>$")
    t.type("while true do os.time() end")
    t.keys("Enter")
    H.sleep(0.3)
    t.keys("C-c")
    t.expect("\ninterrupted\nft>$")
    t.type("'still here'")
    t.keys("Enter")
    t.expect("\nstill here\nft>$")
  end)

  it("Ctrl-C interrupts a get, and the session goes on", function()
    local t = terminal({ H.bin, "repl" }, { FETCHTREE_HISTORY = H.tmpname(".history") })
    finally(t.kill)
    t.expect("ft>$")
    t.type(string.format("r = get '%s/delay/5000'", srv.base))
    t.keys("Enter")
    H.sleep(0.3)
    t.keys("C-c")
    -- at once, not when the response comes in five seconds later
    t.expect("\ninterrupted\nft>$", 2)
    t.type("r == nil")
    t.keys("Enter")
    t.expect("\ntrue\nft>$")
  end)

  it("Tab completes names: globals, fields, methods", function()
    local t = terminal({ H.bin, "repl" }, { FETCHTREE_HISTORY = H.tmpname(".history") })
    finally(t.kill)
    t.expect("ft>$")
    t.type("x = ft.fetch_a")
    t.keys("Tab")
    t.expect("ft> x = ft%.fetch_all$")
    t.keys("C-u")
    t.type("s = string.upp")
    t.keys("Tab")
    t.type("('ab')")
    t.keys("Enter")
    t.expect("ft> s = string%.upper%('ab'%)\nft>$")
    t.type("s:low")
    t.keys("Tab")
    t.type("()")
    t.keys("Enter")
    t.expect("ft> s:lower%(%)\nab\nft>$")
  end)

  it("keeps history across sessions in ~/.fetchtree_history, created 0600", function()
    local home = H.tmpname(".home")
    assert.equal(0, H.sh("mkdir " .. H.q(home)))
    local t = terminal({ H.bin, "repl" }, { HOME = home })
    finally(t.kill)
    t.expect("ft>$")
    t.type("40+2")
    t.keys("Enter")
    t.expect("\n42\nft>$")
    t.keys("C-d")
    t.expect("\n%[exit 0%]$")
    t.kill()
    local p = io.popen("stat -c %a " .. H.q(home .. "/.fetchtree_history"))
    assert.equal("600", p:read("*l"))
    p:close()

    local t2 = terminal({ H.bin, "repl" }, { HOME = home })
    finally(t2.kill)
    t2.expect("ft>$")
    t2.keys("Up")
    t2.expect("ft> 40%+2$")
    t2.keys("Enter")
    t2.expect("\n42\nft>$")
  end)
end)
