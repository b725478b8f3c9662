-- handlers_spec.lua - fetchtree.handlers alone: the jobs run on_response,
-- on_error or an alarm under xpcall, over fake objects and records; a
-- handler that raises costs its own record only, and every request job
-- ends with its request done.
local cjson = require "cjson"
local records = require "fetchtree.records"
local handlers = require "fetchtree.handlers"
local null = cjson.null

describe("fetchtree.handlers", function()
  local written, defaults, done, objs, J
  local function setup_with(h)
    written, defaults, done, objs = {}, {}, {}, {}
    local core = {
      encode = cjson.encode,
      write_record = function(rec) written[#written + 1] = rec end,
      write_default = function(id) defaults[#defaults + 1] = id end,
    }
    local objects = {
      for_entry = function(entry, base)
        local o = objs[entry.obj] or { name = entry.obj, _handlers = h }
        objs[entry.obj] = o
        o._entry, o._base = entry, base or entry.url
        return o
      end,
    }
    J = handlers.new { objects = objects, records = records.new(core, {}),
                       done = function(id) done[#done + 1] = id end }
  end
  local entry = { id = 3, url = "http://h/x", obj = "/a", depth = 0 }
  local res = { status = 200, url = "http://h/final", attempts = 1, body = "b" }

  it("runs on_response with res and the object, writing what it returns", function()
    local args
    setup_with { on_response = function(r, o) args = { r, o }; return { { n = 1 }, { n = 2 } } end }
    J.response(entry, res)
    assert.equal(res, args[1])
    assert.equal("/a", args[2].name)
    assert.equal("http://h/final", args[2]._base) -- follow-ups resolve against the final URL
    assert.same({ { n = 1 }, { n = 2 } }, written)
    assert.same({ 3 }, done)
  end)

  it("writes the default record for an object without on_response", function()
    setup_with {}
    J.response(entry, res)
    assert.same({ 3 }, defaults)
    assert.same({ 3 }, done)
  end)

  it("turns a raising on_response into the request's script error record", function()
    setup_with { on_response = function() error("broke") end }
    J.response(entry, res)
    assert.equal(1, #written)
    local rec = written[1]
    assert.equal(3, rec.index)
    assert.equal(200, rec.status)
    assert.equal(1, rec.attempts)
    assert.equal("script", rec.error.kind)
    assert.truthy(rec.error.message:find("broke$"), rec.error.message)
    assert.truthy(rec.error.traceback:find("stack traceback", 1, true))
    assert.same({ 3 }, done)
  end)

  it("turns a bad return value into a script error record", function()
    setup_with { on_response = function() return "text" end }
    J.response(entry, res)
    assert.equal("a handler must return a table, a list of tables or nil, got string", written[1].error.message)
  end)

  it("writes a failure's error record when there is no on_error", function()
    setup_with {}
    J.failure(entry, { kind = "timeout", message = "slow", status = 0, attempts = 2, cause = "c" })
    assert.same({ index = 3, url = "http://h/x", status = 0, attempts = 2, meta = nil,
                  error = { kind = "timeout", message = "slow", cause = "c" } }, written[1])
    assert.same({ 3 }, done)
  end)

  it("runs on_error with err, the request and the object; a raise is its record", function()
    local args
    setup_with { on_error = function(err, req, o)
      args = { err, req, o }
      if err.kind == "reset" then error("on_error broke") end
      return { failed = req.url }
    end }
    J.failure(entry, { kind = "http", status = 503, attempts = 3 })
    assert.same({ failed = "http://h/x" }, written[1])
    assert.equal(entry, args[2])
    assert.equal("/a", args[3].name)
    J.failure(entry, { kind = "reset", attempts = 1 })
    assert.equal("script", written[2].error.kind)
    assert.equal(null, written[2].status)
    assert.same({ 3, 3 }, done)
  end)

  it("runs an alarm outside any request; a raise names its object", function()
    setup_with {}
    local obj = { name = "/a", _depth = 5, _entry = entry }
    J.alarm(obj, function(o) return { from = o.name, depth = o._depth, entry = o._entry } end)
    assert.same({ from = "/a", depth = -1 }, written[1])
    J.alarm(obj, function() error("alarm broke") end)
    assert.equal("/a", written[2].object)
    assert.truthy(written[2].error.message:find("alarm broke$"))
    assert.same({}, done) -- no request
  end)

  it("writes the record of a stray yield, finishing a request job", function()
    setup_with {}
    local obj = { name = "/a" }
    J.stray(obj, "yielded\nstack traceback:", J.response, entry, res)
    assert.equal("yielded", written[1].error.message)
    assert.equal(200, written[1].status)
    assert.same({ 3 }, done)
    J.stray(obj, "yielded", J.alarm, obj, function() end)
    assert.equal("/a", written[2].object)
    assert.same({ 3 }, done)
  end)
end)
