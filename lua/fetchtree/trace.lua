-- fetchtree.trace: the tracebacks a crawl shows its user (a script error
-- record's traceback, start's failure): the user's frames, without
-- fetchtree's own (its Lua modules, and the xpcall that runs a handler),
-- which say nothing about the script and change with every release.
-- Every traceback the crawl makes goes through here.
local M = {}

local traceback = debug.traceback
local find, sub = string.find, string.sub

-- Where fetchtree's modules live, as their frames name them: this file's
-- directory ("lua/fetchtree/" embedded in the binary, an installed path
-- otherwise).
local own_dir = (debug.getinfo(1, "S").source:match("^@(.*/)[^/]*$")) or "lua/fetchtree/"

-- Whether one line of a traceback's frames is fetchtree's own.
local function own_frame(line)
  local at = line:match("^%s*(.*)$")
  return sub(at, 1, #own_dir) == own_dir
      or find(at, '^%[string "fetchtree', 1) ~= nil
      or at == "[C]: in function 'xpcall'"
end

-- tb without fetchtree's frames: the message (the lines before "stack
-- traceback:") as it is, then the frames that are not fetchtree's. A value
-- that is not a string is returned as it is.
function M.clean(tb)
  if type(tb) ~= "string" then return tb end
  local s, e = find(tb, "\nstack traceback:", 1, true)
  if not s then return tb end
  local out = { sub(tb, 1, e) }
  for line in sub(tb, e + 2):gmatch("[^\n]+") do
    if not own_frame(line) then out[#out + 1] = line end
  end
  return table.concat(out, "\n")
end

-- An error value as the message a user reads: a string or a number as it
-- is, a value with __tostring as that says, anything else (error{...},
-- error(nil)) as lua.c says it: "(error object is a table value)".
function M.message(msg)
  local t = type(msg)
  if t == "string" or t == "number" then return tostring(msg) end
  local mt = getmetatable(msg)
  if type(mt) == "table" and mt.__tostring then
    local ok, s = pcall(tostring, msg)
    if ok and type(s) == "string" then return s end
  end
  return "(error object is a " .. t .. " value)"
end

-- The message handler of xpcall: msg (as M.message makes it) with the
-- user's frames.
function M.handler(msg)
  return M.clean(traceback(M.message(msg), 2))
end

-- The traceback of coroutine co with msg (a handler's or start's
-- coroutine), with the user's frames.
function M.thread(co, msg)
  return M.clean(traceback(co, M.message(msg)))
end

return M
