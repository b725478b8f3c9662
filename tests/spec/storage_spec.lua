-- storage_spec.lua - fetchtree.storage alone, over a fake core (a table
-- per handle): values keep their Lua type, keys are strings, and the
-- handle cannot be reached or swapped from a script.
local cjson = require "cjson"
local storage = require "fetchtree.storage"

-- A fake core: a handle is { name = object name, rows = {} }.
local function fake_core()
  local c = {}
  c.encode = function(v) return cjson.encode(v) end
  c.storage = function(name) return { name = name, rows = {} } end
  c.store_get = function(h, k) return h.rows[k] end
  c.store_put = function(h, k, v) h.rows[k] = v end
  c.store_delete = function(h, k) h.rows[k] = nil end
  c.store_list = function(h, prefix, limit)
    local keys = {}
    for k in pairs(h.rows) do
      if not prefix or k:sub(1, #prefix) == prefix then keys[#keys + 1] = k end
    end
    table.sort(keys)
    local out = {}
    for i, k in ipairs(keys) do
      if limit > 0 and i > limit then break end
      out[#out + 1] = k
      out[#out + 1] = h.rows[k]
    end
    return out
  end
  c.store_sql = function(h, q, ...)
    if q == "bad" then return nil, "no such table" end
    return { { q = q, n = select("#", ...), obj = h.name } }, 0
  end
  return c
end

describe("fetchtree.storage", function()
  it("packs each type with a tag and unpacks it back", function()
    local cases = { "s", "", "a\0b", 0, -1.5, 2 ^ 53 + 1, 1 / 3, true, false }
    for _, v in ipairs(cases) do
      local b = storage.pack(v, cjson.encode)
      assert.equal(v, storage.unpack(b), tostring(v))
    end
    assert.equal("s", storage.pack("", cjson.encode))
    assert.equal("b1", storage.pack(true, cjson.encode))
    assert.same({ a = { 1, 2 } }, storage.unpack(storage.pack({ a = { 1, 2 } }, cjson.encode)))
    assert.is_nil(storage.unpack(nil))
    assert.is_nil(storage.unpack("?what"))
  end)

  it("refuses values it cannot keep, naming the script's line", function()
    local st = storage.new(fake_core())("/a")
    local ok, err = pcall(function() st:put("k", print); return 1 end)
    assert.is_false(ok)
    assert.truthy(err:find("storage values are strings, numbers, booleans or tables of them, got function", 1, true))
    assert.truthy(err:find("storage_spec.lua:", 1, true), err)
  end)

  it("gets, puts, deletes and lists, each object on its own handle", function()
    local open = storage.new(fake_core())
    local a, b = open("/a"), open("/b")
    a:put("x", 1)
    a:put("y", "two")
    a:put("z", { 3 })
    b:put("x", true)
    assert.equal(1, a:get("x"))
    assert.equal(true, b:get("x"))
    assert.same({ { key = "x", value = 1 }, { key = "y", value = "two" }, { key = "z", value = { 3 } } }, a:list())
    assert.same({ { key = "x", value = 1 } }, a:list { limit = 1 })
    assert.same({ { key = "y", value = "two" } }, a:list { prefix = "y" })
    a:delete("x")
    assert.is_nil(a:get("x"))
    assert.equal(true, b:get("x"))
  end)

  it("wants string keys and method calls on a storage table", function()
    local st = storage.new(fake_core())("/a")
    local ok, err = pcall(function() st:get(1); return 1 end)
    assert.is_false(ok)
    assert.truthy(err:find("storage keys are strings, got number", 1, true), err)
    ok, err = pcall(function() st.get({}, "k"); return 1 end)
    assert.is_false(ok)
    assert.truthy(err:find("obj.storage:method(...)", 1, true), err)
  end)

  it("keeps the handle out of reach: no field, a locked metatable", function()
    local st = storage.new(fake_core())("/a")
    assert.equal("storage", getmetatable(st))
    assert.is_nil(next(st))
    local copy = setmetatable({}, { __index = st })
    assert.is_false(pcall(function() return copy:get("k") end))
  end)

  it("passes SQL to core and raises its error", function()
    local st = storage.new(fake_core())("/a")
    local rows, changes = st:sql("select {t}", 1, 2)
    assert.same({ { q = "select {t}", n = 2, obj = "/a" } }, rows)
    assert.equal(0, changes)
    local ok, err = pcall(function() st:sql("bad"); return 1 end)
    assert.is_false(ok)
    assert.truthy(err:find("sql: no such table", 1, true), err)
    assert.is_false(pcall(function() st:sql(5); return 1 end))
  end)
end)
