-- fetchtree.sched: which coroutines fetchtree runs, and how to resume them.
-- ft.spawn tasks and crawl handlers register here; ft.get and friends yield
-- when called from one of them, and the completion resumes it through the
-- function registered for it.
local M = {}

-- coroutine -> resume function (weak: a finished coroutine goes away)
M.managed = setmetatable({}, { __mode = "k" })
-- coroutine -> "handler" for crawl handlers (tasks have none)
M.kind = setmetatable({}, { __mode = "k" })

-- What fetchtree's own calls yield when they suspend a task or handler
-- to wait (ft.get, ft.wait, ...). A coroutine that yields anything else
-- yielded outside them: nothing would ever resume it (see api.settle and
-- crawl's settle).
M.WAIT = setmetatable({}, { __tostring = function() return "fetchtree.WAIT" end })

function M.current()
  local co = coroutine.running()
  if co and M.managed[co] then return co end
  return nil
end

function M.resume(co, ...)
  local fn = M.managed[co]
  if fn then return fn(...) end
  return coroutine.resume(co, ...)
end

return M
