-- records_spec.lua - fetchtree.records alone, over a fake core: handler
-- results, with_meta, writable metas, error and default records.
local cjson = require "cjson"
local records = require "fetchtree.records"
local null = cjson.null

-- A fake core: encode as cjson (which refuses functions and NaN), the
-- records it would write kept in a list.
local function fake_core()
  local c = { written = {}, defaults = {} }
  c.encode = function(v) return cjson.encode(v) end
  c.write_record = function(rec) c.written[#c.written + 1] = rec end
  c.write_default = function(...) c.defaults[#c.defaults + 1] = { n = select("#", ...), ... } end
  return c
end

describe("fetchtree.records", function()
  local entry = { id = 7, url = "http://h/x", depth = 2, meta = { k = 1 } }

  it("writes a handler's result: nil, one record, or a list", function()
    local c = fake_core()
    local R = records.new(c, {})
    R.write_result(nil, entry)
    assert.equal(0, #c.written)
    R.write_result({ a = 1 }, entry)
    R.write_result({ { b = 1 }, { b = 2 } }, entry)
    assert.same({ { a = 1 }, { b = 1 }, { b = 2 } }, c.written)
  end)

  it("refuses a result or record that is not a table", function()
    local R = records.new(fake_core(), {})
    local ok, err = pcall(R.write_result, "x", entry)
    assert.is_false(ok)
    assert.equal("a handler must return a table, a list of tables or nil, got string", err)
    ok, err = pcall(R.write_result, { 5 }, entry)
    assert.is_false(ok)
    assert.equal("a record must be a table, got number", err)
  end)

  it("adds _url, _status, _index and _depth with with_meta", function()
    local c = fake_core()
    local R = records.new(c, { with_meta = true })
    R.write({ a = 1 }, entry, { url = "http://h/final", status = 200 })
    R.write({ b = 1 }, entry, nil) -- a failure: the request's URL, no status
    R.write({ c = 1 }, records.NO_ENTRY, nil) -- an alarm
    assert.same({ a = 1, _url = "http://h/final", _status = 200, _index = 7, _depth = 2 }, c.written[1])
    assert.same({ b = 1, _url = "http://h/x", _status = null, _index = 7, _depth = 2 }, c.written[2])
    assert.same({ c = 1, _url = null, _status = null, _index = null, _depth = null }, c.written[3])
  end)

  it("hands records to opts.out instead of core when it is set", function()
    local c, got = fake_core(), {}
    local R = records.new(c, { out = function(rec) got[#got + 1] = rec end })
    R.write({ a = 1 }, entry)
    R.error(entry, 500, { kind = "http" }, 3)
    assert.equal(0, #c.written)
    assert.equal(2, #got)
  end)

  it("makes every meta writable, saying why one is not", function()
    local R = records.new(fake_core(), {})
    assert.same({ nil, nil }, { R.meta(nil) })
    local v, json = R.meta({ a = 1 })
    assert.same({ a = 1 }, v)
    assert.equal('{"a":1}', json)
    v, json = R.meta({ f = print })
    assert.equal("string", type(v))
    assert.truthy(v:match("^meta not written: "), v)
    assert.equal(cjson.encode(v), json)
  end)

  it("writes a request's error record with status, attempts and its meta", function()
    local c = fake_core()
    local R = records.new(c, {})
    R.error(entry, nil, { kind = "url", message = "bad" })
    R.error({ id = 1, url = "u", meta = { f = print } }, 503, { kind = "http" }, 2)
    assert.same({ index = 7, url = "http://h/x", status = null, attempts = 0,
                  error = { kind = "url", message = "bad" }, meta = { k = 1 } }, c.written[1])
    assert.equal(503, c.written[2].status)
    assert.equal(2, c.written[2].attempts)
    assert.truthy(c.written[2].meta:match("^meta not written"))
  end)

  it("makes a script error of any raised value", function()
    assert.same({ kind = "script", message = "x.lua:1: boom", traceback = "x.lua:1: boom\nstack" },
      records.script_error("x.lua:1: boom\nstack"))
    assert.equal("table: ", records.script_error({}).message:sub(1, 7))
    local weird = setmetatable({}, { __tostring = function() error("no") end })
    assert.equal("(an error value without a message)", records.script_error(weird).message)
    local c = fake_core()
    records.new(c, {}).object_error("/a", "oops")
    assert.same({ object = "/a", error = { kind = "script", message = "oops", traceback = "oops" } }, c.written[1])
  end)

  it("writes the default record through core, or as a table for opts.out", function()
    local c = fake_core()
    local res = { url = "http://h/y", status = 200, body = "b", _h = "h\0v\0", attempts = 1, elapsed_ms = 5 }
    records.new(c, {}).default(entry, res)
    assert.same({ n = 9, 7, "http://h/x", '{"k":1}', "http://h/y", 200, "h\0v\0", "b", 1, 5 }, c.defaults[1])
    local got
    records.new(c, { out = function(rec) got = rec end }).default(entry, res)
    assert.equal("http://h/y", got.final_url)
    assert.equal(null, got.error)
    assert.same({ k = 1 }, got.meta)
  end)
end)
