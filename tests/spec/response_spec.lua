-- response_spec.lua - fetchtree.response alone, over a fake core: headers
-- parsed on first read, json, links and xpath and their errors.
local cjson = require "cjson"
local response = require "fetchtree.response"

describe("fetchtree.response", function()
  local calls, Res
  before_each(function()
    calls = {}
    Res = response.metatable {
      links = function(body, base) calls[#calls + 1] = { "links", body, base }; return { base .. "/a" } end,
      xpath = function(body, is_xml, expr)
        calls[#calls + 1] = { "xpath", body, is_xml, expr }
        if expr == "bad" then return nil, "invalid expression" end
        return { "node" }
      end,
    }
  end)

  local function res(t) return setmetatable(t, Res) end

  it("parses raw headers into a table, joining a repeated name", function()
    assert.same({ a = "1, 2", ["content-type"] = "text/html", empty = "" },
      response.parse_headers("a\0" .. "1\0content-type\0text/html\0a\0" .. "2\0empty\0\0"))
    assert.same({}, response.parse_headers(""))
  end)

  it("parses headers only when first read, then keeps them", function()
    local r = res { _h = "x\0y\0" }
    assert.is_nil(rawget(r, "headers"))
    local h = r.headers
    assert.same({ x = "y" }, h)
    assert.equal(h, rawget(r, "headers"))
    assert.same({}, res({}).headers) -- no raw headers: none
  end)

  it("decodes a JSON body; JSON null is nil, a null inside is cjson.null", function()
    assert.same({ a = 1 }, res({ body = '{"a":1}' }):json())
    assert.is_nil(res({ body = "null" }):json())
    assert.equal(cjson.null, res({ body = '{"a":null}' }):json().a)
    local ok, err = pcall(function() local v = res({ body = "{nope" }):json(); return v end)
    assert.is_false(ok)
    assert.truthy(err:find("res:json(): ", 1, true), err)
    assert.truthy(err:find("response_spec.lua", 1, true), "names the caller's line: " .. err)
  end)

  it("asks core for links of the body against the final URL", function()
    assert.same({ "http://h/a" }, res({ body = "<a>", url = "http://h" }):links())
    assert.same({ "links", "<a>", "http://h" }, calls[1])
  end)

  it("runs xpath as XML only for an XML content type that is not HTML", function()
    local cases = {
      { "application/xml", true }, { "application/atom+xml", true },
      { "application/xhtml+xml", false }, { "text/html", false }, { nil, false },
    }
    for i, c in ipairs(cases) do
      local h = c[1] and ("content-type\0" .. c[1] .. "\0") or ""
      assert.same({ "node" }, res({ body = "<x/>", _h = h }):xpath("//x"))
      assert.equal(c[2], calls[i][3], tostring(c[1]))
      assert.equal("//x", calls[i][4])
    end
  end)

  it("raises for a bad xpath expression, naming the caller", function()
    local ok, err = pcall(function() return res({ body = "" }):xpath(5) end)
    assert.is_false(ok)
    assert.truthy(err:find("expr must be a string", 1, true), err)
    ok, err = pcall(function() local v = res({ body = "" }):xpath("bad"); return v end)
    assert.is_false(ok)
    assert.truthy(err:find("res:xpath(): invalid expression", 1, true), err)
    assert.truthy(err:find("response_spec.lua", 1, true), err)
  end)
end)
