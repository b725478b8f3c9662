-- fetchtree.response: the response a handler gets (res): status, url,
-- body, attempts, elapsed_ms and request as fields, headers parsed on
-- first use, and the methods json, links and xpath.
--
-- C hands a response's headers as one string, "name\0value\0" pairs with
-- lower-case names (res._h); most handlers never read them, so they are
-- parsed only when res.headers is first read.
local cjson = require "cjson"

local M = {}

-- The headers of raw ("name\0value\0"...) as a table; a repeated name
-- gets its values joined with ", " (RFC 9110 5.3).
function M.parse_headers(raw)
  local h = {}
  for name, value in raw:gmatch("([^%z]*)%z([^%z]*)%z") do
    if h[name] then h[name] = h[name] .. ", " .. value else h[name] = value end
  end
  return h
end

-- The metatable of responses, over core's links(html, base) and
-- xpath(doc, is_xml, expr) (fetchtree.core: libxml2). One per process
-- in use (fetchtree.crawl's Res), shared by ft.get's responses.
function M.metatable(core)
  local Res = {}
  local parse_headers = M.parse_headers

  function Res.__index(res, k)
    if k == "headers" then
      local h = parse_headers(rawget(res, "_h") or "")
      rawset(res, "headers", h)
      return h
    end
    return Res[k]
  end

  -- pcall from Lua, not cjson.safe: that one wraps the decoder in a
  -- lua_pcall from C, a sixtieth of the decode's cost.
  -- A body that is JSON null gives nil (a test `if res:json() then` reads
  -- as meant); a null inside decodes to cjson.null (ft.null), which is truthy.
  local decode, json_null = cjson.decode, cjson.null
  function Res:json()
    local ok, v = pcall(decode, self.body)
    if not ok then error("res:json(): " .. tostring(v), 2) end
    if v == json_null then return nil end
    return v
  end

  -- The links of an HTML body, resolved against the final URL.
  function Res:links()
    return core.links(self.body, self.url)
  end

  -- The nodes expr selects, as strings; the body is parsed as XML when
  -- its Content-Type says XML (not HTML), else as HTML.
  function Res:xpath(expr)
    if type(expr) ~= "string" then error("res:xpath(expr): expr must be a string", 2) end
    local ct = self.headers["content-type"] or ""
    local is_xml = ct:find("xml") ~= nil and ct:find("html") == nil
    local list, err = core.xpath(self.body, is_xml, expr)
    if not list then error("res:xpath(): " .. err, 2) end
    return list
  end

  return Res
end

return M
