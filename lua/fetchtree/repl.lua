-- fetchtree.repl: the Lua half of `fetchtree repl`. core/repl.c reads and
-- compiles what a person types; this module binds the globals (ft, get,
-- fetch_all, run), turns results into text (show), errors into messages
-- (traceback, the message handler of every statement) and writes :help.
--
-- show is a pretty printer for people, not a serialiser: tables are
-- indented with their keys sorted (numbers first), a table inside itself is
-- <cycle>, nesting deeper than MAX_DEPTH is {...}, a table lists at most
-- MAX_ITEMS entries and a string at most MAX_STRING bytes, each with a note
-- of what was left out. A response prints as one line, not its body.
local M = {}

local MAX_DEPTH = 4    -- levels of nested tables shown
local MAX_ITEMS = 50   -- entries shown per table
local MAX_STRING = 200 -- bytes shown per string
local WIDTH = 78       -- a table fitting in this many columns goes on one line

local format, concat, sort = string.format, table.concat, table.sort

-- ---- responses ------------------------------------------------------------

-- The response metatable, found on first use (nil when fetchtree.crawl
-- cannot load: then nothing is a response).
local Res
local function response_mt()
  if Res == nil then
    local ok, crawl = pcall(require, "fetchtree.crawl")
    Res = ok and type(crawl) == "table" and crawl.Res or false
  end
  return Res
end

local function is_response(v)
  local mt = response_mt()
  return mt and type(v) == "table" and getmetatable(v) == mt
end

local function size_text(n)
  if n < 1024 then return format("%d B", n) end
  if n < 1024 * 1024 then return format("%.1f KB", n / 1024) end
  return format("%.1f MB", n / (1024 * 1024))
end

-- `<response 200 http://host/x  212 B  3.1 ms  application/json>`, or nil
-- when v does not look like a response after all.
local function response_line(res)
  local ok, line = pcall(function()
    local body = rawget(res, "body")
    local ms = rawget(res, "elapsed_ms")
    local ct = res.headers and res.headers["content-type"]
    local parts = {
      format("<response %s %s", tostring(rawget(res, "status")), tostring(rawget(res, "url"))),
      size_text(type(body) == "string" and #body or 0),
      type(ms) == "number" and format("%.1f ms", ms) or "? ms",
    }
    if type(ct) == "string" and ct ~= "" then parts[#parts + 1] = (ct:gsub("%s*;.*$", "")) end
    return concat(parts, "  ") .. ">"
  end)
  return ok and line or nil
end

-- An error in a list from ft.fetch_all: `{error = {kind=, message=}}`.
local function failure_line(v)
  if type(v) ~= "table" or next(v) ~= "error" or next(v, "error") ~= nil then return nil end
  local e = v.error
  if type(e) ~= "table" then return format("<error %s>", tostring(e)) end
  return format("<error %s: %s>", tostring(e.kind), tostring(e.message))
end

-- A non-empty list holding only responses (and ft.fetch_all's failures):
-- one line each.
local function response_list(t)
  local n = #t
  if n == 0 or is_response(t) or getmetatable(t) ~= nil then return nil end
  local count, any = 0, false
  for _ in pairs(t) do count = count + 1 end
  if count ~= n then return nil end
  local lines = {}
  for i = 1, n do
    local v = t[i]
    local line
    if is_response(v) then
      line, any = response_line(v), true
    else
      line = failure_line(v)
    end
    if not line then return nil end
    if i <= MAX_ITEMS then lines[i] = format("[%d] %s", i, line) end
  end
  if not any then return nil end
  if n > MAX_ITEMS then lines[#lines + 1] = format("... (%d more)", n - MAX_ITEMS) end
  return concat(lines, "\n")
end

-- ---- values ---------------------------------------------------------------

local keywords = {}
for w in ([[and break do else elseif end false for function goto if in
            local nil not or repeat return then true until while]]):gmatch("%a+") do
  keywords[w] = true
end

-- s cut to MAX_STRING bytes (on a UTF-8 character boundary), and a note of
-- its full length when it was cut.
local function cut(s)
  if #s <= MAX_STRING then return s, nil end
  local n = MAX_STRING
  while n > 0 and s:byte(n + 1) and s:byte(n + 1) >= 0x80 and s:byte(n + 1) < 0xC0 do n = n - 1 end
  return s:sub(1, n), format("... (%d bytes)", #s)
end

local escapes = { ["\\"] = "\\\\", ['"'] = '\\"', ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }
local function quote(s)
  local head, note = cut(s)
  head = head:gsub('[%c\\"]', function(c)
    return escapes[c] or format("\\%d", c:byte())
  end)
  return '"' .. head .. '"' .. (note or "")
end

local function safe_tostring(v)
  local ok, s = pcall(tostring, v)
  if ok and type(s) == "string" then return s end
  return "<" .. type(v) .. ": __tostring failed>"
end

local function key_text(k)
  if type(k) == "string" then
    if k:match("^[%a_][%w_]*$") and not keywords[k] then return k end
    return "[" .. quote(k) .. "]"
  end
  if type(k) == "number" then return "[" .. safe_tostring(k) .. "]" end
  return "[" .. safe_tostring(k) .. "]"
end

local rank = { number = 1, string = 2, boolean = 3 }
local function key_less(a, b)
  local ta, tb = type(a), type(b)
  local ra, rb = rank[ta] or 4, rank[tb] or 4
  if ra ~= rb then return ra < rb end
  if ta == tb and (ta == "number" or ta == "string") then return a < b end
  return safe_tostring(a) < safe_tostring(b)
end

local render

local function render_table(t, indent, depth, path)
  if path[t] then return "<cycle>" end
  if next(t) == nil then return "{}" end
  if depth >= MAX_DEPTH then return "{...}" end
  path[t] = true
  local inner = indent .. "  "
  local items, total = {}, 0
  local n = 0
  while t[n + 1] ~= nil do n = n + 1 end -- the array part: 1..n, no keys shown
  for i = 1, n do
    total = total + 1
    if total <= MAX_ITEMS then items[total] = render(t[i], inner, depth + 1, path) end
  end
  local keys = {}
  for k in pairs(t) do
    if not (type(k) == "number" and k >= 1 and k <= n and k % 1 == 0) then keys[#keys + 1] = k end
  end
  sort(keys, key_less)
  for _, k in ipairs(keys) do
    total = total + 1
    if total > MAX_ITEMS then break end
    items[total] = key_text(k) .. " = " .. render(t[k], inner, depth + 1, path)
  end
  total = n + #keys
  if total > MAX_ITEMS then items[#items + 1] = format("... (%d more)", total - MAX_ITEMS) end
  path[t] = nil
  local one = "{ " .. concat(items, ", ") .. " }"
  if #indent + #one <= WIDTH and not one:find("\n", 1, true) then return one end
  return "{\n" .. inner .. concat(items, ",\n" .. inner) .. "\n" .. indent .. "}"
end

-- Text for v, nested at depth, its lines after the first indented by
-- indent; path holds the tables being printed around it (for cycles).
function render(v, indent, depth, path)
  local tv = type(v)
  if tv == "string" then return quote(v) end
  if tv ~= "table" then return safe_tostring(v) end
  if is_response(v) then
    local line = response_line(v)
    if line then return line end
  end
  local mt = getmetatable(v)
  if type(mt) == "table" and rawget(mt, "__tostring") then return safe_tostring(v) end
  return render_table(v, indent, depth, path)
end

-- The text for one value at the top level: strings as they are (cut when
-- long), a response or a list of them as one line each.
function M.format(v)
  if type(v) == "string" then
    local head, note = cut(v)
    return head .. (note or "")
  end
  if type(v) == "table" then
    local list = not is_response(v) and response_list(v)
    if list then return list end
  end
  return render(v, "", 0, {})
end

-- The identity: an expression runs as `return (...)(expr)` with this as
-- `...`, so that its calls are not tail calls (see core/repl.c).
function M.values(...) return ... end

-- What a statement returned, as text (nil when it returned nothing).
-- Several values go on one line, tab-separated, unless one of them takes
-- several lines.
function M.show(...)
  local n = select("#", ...)
  if n == 0 then return nil end
  local parts, multi = {}, false
  for i = 1, n do
    parts[i] = M.format((select(i, ...)))
    if parts[i]:find("\n", 1, true) then multi = true end
  end
  return concat(parts, multi and "\n" or "\t")
end

-- ---- errors ---------------------------------------------------------------

local MAX_FRAMES = 6

-- The message handler of every statement: the error as text, with the
-- first lines of the traceback when it says more than the message does.
function M.traceback(err)
  if err ~= nil and err == M.exit_token then return err end -- os.exit (core/repl.c)
  local msg
  if type(err) == "string" then
    msg = err
  elseif type(err) == "table" and type(err.message) == "string" then -- ft's {kind=, message=}
    msg = (err.kind and tostring(err.kind) .. ": " or "") .. err.message
  else
    local mt = getmetatable(err)
    if type(mt) == "table" and rawget(mt, "__tostring") then
      msg = safe_tostring(err)
    else
      msg = "error: " .. M.format(err)
    end
  end
  if msg:find("interrupted$") then return "interrupted" end -- where the hook struck says nothing
  local frames, useful = {}, false
  for line in debug.traceback("", 2):gmatch("[^\n]+") do
    if line:match("^%s") then
      local f = line:gsub("^%s+", "")
      frames[#frames + 1] = f
      if f:find("in main chunk", 1, true) then break end
      if not (f:match("^%[C%]") or f:match("^%[builtin") or f:match("^%(tail call%)")) then
        useful = true
      end
    end
  end
  if not useful then return msg end
  local out = { msg, "stack traceback:" }
  for i = 1, math.min(#frames, MAX_FRAMES) do out[#out + 1] = "  " .. frames[i] end
  if #frames > MAX_FRAMES then out[#out + 1] = "  ..." end
  return concat(out, "\n")
end

-- ---- completion -------------------------------------------------------------

-- The string keys of t and, for objects, their methods: the fields of an
-- __index table, or of the metatable itself when __index is a function
-- (as fetchtree.crawl's Res has). Nothing here calls a metamethod.
local function names_in(t, add)
  if type(t) ~= "table" then return end
  for k in pairs(t) do add(k) end
  local mt = getmetatable(t)
  if type(mt) ~= "table" then return end
  local index = rawget(mt, "__index")
  if type(index) == "table" then
    for k in pairs(index) do add(k) end
  elseif type(index) == "function" then
    for k, v in pairs(mt) do
      if type(v) == "function" and type(k) == "string" and k:sub(1, 2) ~= "__" then add(k) end
    end
  end
end

local function field(t, k)
  if type(t) == "string" then return string[k] end -- s:upper()
  if type(t) ~= "table" then return nil end
  local v = rawget(t, k)
  if v ~= nil then return v end
  local mt = getmetatable(t)
  if type(mt) ~= "table" then return nil end
  local index = rawget(mt, "__index")
  if type(index) == "table" then return rawget(index, k) end
  return rawget(mt, k)
end

-- The names completing text, the word at the cursor: `pri`, `ft.ge`,
-- `r:js`; each whole, sorted.
function M.complete(text)
  local path, sep, partial = text:match("^([%w_.:]-)([.:]?)([%w_]*)$")
  if not path then return {} end
  local scope = _G
  if sep == "" then
    path = ""
  else
    if path:find(":", 1, true) or path == "" then return {} end
    for name in path:gmatch("[^.]+") do
      if not name:match("^[%a_][%w_]*$") then return {} end
      scope = field(scope, name)
    end
    if type(scope) == "string" then scope = string end
    if type(scope) ~= "table" then return {} end
  end
  local seen, out = {}, {}
  local function add(k)
    if type(k) == "string" and not seen[k] and k:sub(1, #partial) == partial
       and k:match("^[%a_][%w_]*$") and not (sep == ":" and type(field(scope, k)) ~= "function") then
      seen[k] = true
      out[#out + 1] = path .. sep .. k
    end
  end
  names_in(scope, add)
  if sep == "" then for k in pairs(keywords) do add(k) end end
  sort(out)
  return out
end

-- ---- the session ----------------------------------------------------------

-- Bind ft, get, fetch_all and run. Returns nil, or why ft could not load
-- (the REPL then goes on as a plain Lua prompt).
function M.setup()
  local ok, ft = pcall(require, "fetchtree")
  if not ok or type(ft) ~= "table" then
    local why = tostring(ft):match("^[^\n]*")
    return (why:gsub(":$", ""))
  end
  _G.ft = ft
  _G.get = ft.get
  _G.fetch_all = ft.fetch_all
  _G.run = ft.run
  -- core/repl.c holds Ctrl-C back while the engine runs Lua callbacks
  local eok, engine = pcall(require, "fetchtree.engine")
  M.engine_step = eok and type(engine) == "table" and engine.step or nil
  return nil
end

function M.banner()
  local jit_version = rawget(_G, "jit") and jit.version or _VERSION
  return format("fetchtree REPL (%s)%s. :help lists the API; Ctrl-D leaves.", jit_version,
    rawget(_G, "ft") and ", ft loaded" or "")
end

local help = [[
Lua (LuaJIT) with ft = require "fetchtree"; get, fetch_all, run are ft.get, ft.fetch_all, ft.run.
An expression prints its value; an unfinished statement continues on the next line (>>).

  ft.get(url [, opts])         fetch url: a response, or nil, err ({kind=, message=})
  ft.request{url=, method=, headers=, body=, timeout=, retries=}   the same, for any request
  ft.fetch_all(list [, opts])  fetch a list of requests (opts: rps, window, concurrency,
                               retries): the responses in order, failures as {error=err}
  ft.run(spec)                 run a crawl spec, as `fetchtree run` does
  ft.spawn(fn, ...)            run fn(...) as a task; inside it, ft calls wait without blocking
  ft.wait(task, ...)           wait for tasks (all of them when none given): their results
  ft.step([ms])                one round of the event loop; true while work is outstanding
  ft.fd()                      a descriptor to poll before ft.step(0), from a loop of your own
  ft.unique_name(prefix)       a fresh object name under prefix, such as /jobs/u1

  res.status  res.url (final, after redirects)  res.body  res.headers (lower-case names)
  res.attempts  res.elapsed_ms  res.request (url, method, meta)
  res:json()                   the body decoded as JSON
  res:links()                  absolute URLs of the page's links
  res:xpath(expr)              strings: node text or attribute values

  :help  this text   :quit  leave (or Ctrl-D)   Ctrl-C  drop the line, or interrupt a statement
Tables print up to 4 levels deep and 50 entries each; strings up to 200 bytes (print(s) shows all).]]

function M.help() return help end

return M
