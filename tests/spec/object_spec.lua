-- object_spec.lua - fetchtree.object alone: object names, patterns and
-- the inheritance of settings, and the obj handlers get, over fakes of
-- the frontier, the records, storage, alarms and limits.
local object = require "fetchtree.object"
local records = require "fetchtree.records"

describe("fetchtree.object", function()
  it("tells object names from other values, as the C tree does", function()
    local good = { "/", "/a", "/host/example.com", "/a/b/c", "/*", "/a b" }
    local bad = { "", "a", "//", "/a/", "/a//b", "//a", "/a\0b", 5, true, {}, false }
    for _, n in ipairs(good) do assert.is_true(object.valid_name(n), n) end
    for _, n in ipairs(bad) do assert.is_false(object.valid_name(n), tostring(n)) end
    assert.is_false(object.valid_name(nil))
  end)

  it("names parents up to /", function()
    assert.equal("/host", object.parent_name("/host/a.example"))
    assert.equal("/", object.parent_name("/host"))
    assert.is_nil(object.parent_name("/"))
  end)

  it("matches patterns by whole segments, special characters as they are", function()
    local function m(p, n) return n:match(object.pattern_to_lua(p)) ~= nil end
    assert.is_true(m("/", "/"))
    assert.is_false(m("/", "/a"))
    assert.is_true(m("/host/*", "/host/a.b"))
    assert.is_false(m("/host/*", "/host/a/b"))
    assert.is_false(m("/host/*", "/host"))
    assert.is_true(m("/a.b/(x)%", "/a.b/(x)%"))
    assert.is_false(m("/a.b", "/axb"))
  end)

  it("orders patterns most wildcards first, and refuses bad ones", function()
    local list = object.patterns({ ["/host/a"] = {}, ["/*/*"] = {}, ["/host/*"] = {}, ["/"] = {} }, "s.lua")
    local order = {}
    for i, pt in ipairs(list) do order[i] = pt.pattern end
    assert.same({ "/*/*", "/host/*", "/", "/host/a" }, order)
    assert.same({}, object.patterns(nil, "s.lua"))
    for _, bad in ipairs { { x = {} }, { ["//a"] = {} }, { ["/a"] = 5 }, { [1] = {} } } do
      local ok, err = pcall(object.patterns, bad, "s.lua")
      assert.is_false(ok)
      assert.truthy(err:find("^s.lua: objects wants"), err)
    end
  end)

  it("inherits a setting from the most specific pattern, else an ancestor's", function()
    local pts = object.patterns({ ["/host/*"] = { robots = true }, ["/host/b"] = { robots = false },
                                  ["/jobs"] = { robots = false } }, "s")
    assert.is_true(object.inherited(pts, "/host/a", "robots"))
    assert.is_false(object.inherited(pts, "/host/b", "robots"))
    assert.is_true(object.inherited(pts, "/host/a/deeper", "robots"))
    assert.is_false(object.inherited(pts, "/jobs/1", "robots"))
    assert.is_nil(object.inherited(pts, "/other", "robots"))
  end)

  describe("objects of a crawl", function()
    local queued, alarms, limits, written, T
    local function spec_on_response() end
    local function jobs_on_response() end
    local function spec_on_error() end
    before_each(function()
      queued, alarms, limits, written = {}, {}, {}, {}
      local R = records.new({ encode = function() return "" end,
                              write_record = function(rec) written[#written + 1] = rec end }, {})
      T = object.new {
        spec = { on_response = spec_on_response, on_error = spec_on_error },
        patterns = object.patterns({ ["/jobs/*"] = { on_response = jobs_on_response } }, "s"),
        storage = function(name) return { of = name } end,
        enqueue = function(t, depth, base) queued[#queued + 1] = { t, depth, base }; return true end,
        records = R,
        after = function(id, ms) alarms[#alarms + 1] = { id, ms } end,
        set_limits = function(name, t)
          limits[#limits + 1] = { name, t }
          if t.rps == -1 then return nil, "set_limits: bad rate" end
          return true
        end,
      }
    end)

    it("makes an object once, with its ancestors, storage and handlers", function()
      local o = T.get("/jobs/1")
      assert.equal(o, T.get("/jobs/1"))
      assert.equal("/jobs/1", o.name)
      assert.equal("/jobs", o.parent.name)
      assert.equal("/", o.parent.parent.name)
      assert.is_nil(o.parent.parent.parent)
      assert.same({ of = "/jobs/1" }, o.storage)
      assert.same({}, o.state)
      assert.equal(jobs_on_response, o._handlers.on_response)
      assert.equal(spec_on_error, o._handlers.on_error)
      assert.equal(spec_on_response, o.parent._handlers.on_response)
    end)

    it("fetches follow-ups one deeper, against the response's URL", function()
      local o = T.for_entry({ obj = "/a", depth = 2, url = "http://h/x" }, "http://h/final")
      assert.is_true(o:fetch { url = "y" })
      T.for_entry({ obj = "/a", depth = 0, url = "http://h/x" })
      o:fetch "z"
      assert.same({ { { url = "y" }, 3, "http://h/final" }, { "z", 1, "http://h/x" } }, queued)
      local ok, err = pcall(o.fetch, {}, { url = "y" })
      assert.is_false(ok)
      assert.truthy(err:find("use obj:fetch{...}, not obj.fetch", 1, true))
    end)

    it("emits records for its request, or for none outside one", function()
      local o = T.get("/a")
      o:emit { a = 1 }
      assert.same({ { a = 1 } }, written)
    end)

    it("sets alarms that fire once, and checks their arguments", function()
      local o = T.get("/a")
      local fn = function() end
      assert.equal(1, o:after(10, fn))
      assert.equal(2, o:after(0, fn))
      assert.same({ { 1, 10 }, { 2, 0 } }, alarms)
      local obj, f = T.take_alarm(1)
      assert.equal(o, obj)
      assert.equal(fn, f)
      assert.is_nil(T.take_alarm(1))
      assert.is_false(pcall(o.after, o, -1, fn))
      assert.is_false(pcall(o.after, o, 1, "x"))
    end)

    it("changes its limits through set_limits and raises its error", function()
      local o = T.get("/a")
      assert.is_true(o:set_limits { rps = 5, window = 100, concurrency = 2, retries = 1 })
      assert.same({ "/a", { rps = 5, window = 100, concurrency = 2, retries = 1 } }, limits[1])
      local ok, err = pcall(function() o:set_limits { rps = -1 }; return 1 end)
      assert.is_false(ok)
      assert.truthy(err:find("set_limits: bad rate", 1, true), err)
      assert.is_false(pcall(o.set_limits, o, 5))
    end)
  end)
end)
