-- fetchtree.handlers: the jobs a crawl's workers run (fetchtree.workers):
-- a response through its object's on_response, a failure through its
-- on_error, an alarm's function. Each runs under xpcall, so a handler
-- that raises costs its own job only: that job gets an error record of
-- kind "script", and the crawl goes on. Every request job ends with its
-- request done (done(id): it leaves the journal of a durable run) once
-- its records are out.
local records_mod = require "fetchtree.records"
local trace = require "fetchtree.trace"

local M = {}

local traceback = trace.handler -- the user's frames only
local script_error = records_mod.script_error

-- o:
--   objects: the crawl's objects (fetchtree.object): get, for_entry
--   records: the crawl's record writer (fetchtree.records)
--   done: function(id): request id's records are out
-- Returns the jobs, each called as job(a, b) by a worker:
--   response(entry, res), failure(entry, err), alarm(obj, fn), and
--   stray(obj, err, job, a, b), the record of a job that yielded outside
--   fetchtree's calls (workers' stray).
function M.new(o)
  local J = {}
  local for_entry, done = o.objects.for_entry, o.done
  local R = o.records
  local write_result, error_record, NO_ENTRY = R.write_result, R.error, R.NO_ENTRY

  -- The record of a job whose handler raised err (with its traceback):
  -- for an alarm (no entry), one naming its object obj; else the error
  -- record of the request entry, whose outcome (response or error) gives
  -- status and attempts.
  local function handler_failed(obj, entry, outcome, err)
    if not entry then return R.object_error(obj.name, err) end
    error_record(entry, outcome.status, script_error(err), outcome.attempts)
  end

  local function response_body(entry, res)
    local obj = for_entry(entry, res.url)
    local h = obj._handlers.on_response
    if not h then return R.default(entry, res) end -- this object has no handler
    write_result(h(res, obj), entry, res)
  end

  function J.response(entry, res)
    local ok, err = xpcall(response_body, traceback, entry, res)
    if not ok then handler_failed(nil, entry, res, err) end
    done(entry.id)
  end

  local function failure_body(h, err, entry, obj)
    write_result(h(err, entry, obj), entry, nil)
  end

  function J.failure(entry, err)
    local obj = for_entry(entry)
    local h = obj._handlers.on_error
    if not h then
      error_record(entry, err.status,
        { kind = err.kind, message = err.message, cause = err.cause }, err.attempts)
    else
      local ok, e = xpcall(failure_body, traceback, h, err, entry, obj)
      if not ok then handler_failed(obj, entry, err, e) end
    end
    done(entry.id)
  end

  local function alarm_body(obj, fn)
    write_result(fn(obj), NO_ENTRY, nil)
  end

  function J.alarm(obj, fn)
    obj._depth, obj._entry, obj._base = -1, nil, nil
    local ok, err = xpcall(alarm_body, traceback, obj, fn)
    if not ok then handler_failed(obj, nil, nil, err) end
  end

  -- Job job(a, b) of obj yielded outside fetchtree's calls: it gets the
  -- record a handler that raised would get, and its request is done.
  function J.stray(obj, err, job, a, b)
    if job == J.alarm then
      handler_failed(obj, nil, nil, err)
    else -- response(entry, res) or failure(entry, err)
      handler_failed(obj, a, b, err)
      done(a.id)
    end
  end

  return J
end

return M
