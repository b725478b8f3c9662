-- robots_unit_spec.lua - fetchtree.robots alone, over a fake core (rules
-- are "Disallow: /path" lines, one per origin): what a spec asks for
-- (for_spec: checks, which objects obey), and a request's way through
-- gate, the robots.txt fetch and requeue. robots_spec.lua runs it for real.

-- A fake core: the cache maps origin -> { disallow = {prefixes} } or false
-- (unreachable: all disallowed).
local fake = {}
function fake.robots_new() return { rules = {} } end
function fake.robots_origin(url) return url:match("^(https?://[^/]+)") end
function fake.robots_put(cache, origin, status, body)
  if status == 0 or status >= 500 then cache.rules[origin] = false; return 0 end
  local r = { disallow = {} }
  for p in (body or ""):gmatch("Disallow: (%S+)") do r.disallow[#r.disallow + 1] = p end
  cache.rules[origin] = r
  return tonumber((body or ""):match("Crawl%-delay: (%S+)")) or 0
end
function fake.robots_forget(cache, origin) cache.rules[origin] = nil end
function fake.robots_check(cache, url)
  local origin, path = url:match("^(https?://[^/]+)(.*)$")
  local r = cache.rules[origin]
  if r == nil then return "unknown" end
  if r == false then return "disallow" end
  for _, p in ipairs(r.disallow) do if path:sub(1, #p) == p then return "disallow" end end
  return "allow"
end
package.loaded["fetchtree.core"] = fake

local robots = require "fetchtree.robots"
local object = require "fetchtree.object"

describe("fetchtree.robots", function()
  local requeued, limits, stores
  local function make(spec, objects)
    requeued, limits, stores = {}, {}, {}
    return robots.for_spec(spec, "s.lua", {
      patterns = object.patterns(objects, "s.lua"),
      host_object = function(host) return "/host/" .. host end,
      storage = function(name)
        stores[name] = stores[name] or {}
        local t = stores[name]
        return { get = function(_, k) return t[k] end, put = function(_, k, v) t[k] = v end }
      end,
      set_limits = function(...) limits[#limits + 1] = { ... } end,
      requeue = function(e) requeued[#requeued + 1] = e end,
    })
  end

  it("is made only when the spec or an object pattern obeys robots.txt", function()
    assert.is_nil(make({}))
    assert.is_nil(make({ robots = false }, { ["/host/*"] = { robots = false } }))
    assert.truthy(make({ robots = true }))
    assert.truthy(make({}, { ["/host/a"] = { robots = true } }))
  end)

  it("refuses robots fields that are not one, with the message", function()
    local shape = "s.lua: spec field 'robots' is true or { agent = string, recheck = seconds }"
    local cases = {
      { { robots = "yes" }, nil, "s.lua: spec field 'robots' must be a boolean or a table, got string" },
      { { robots = { agent = 5 } }, nil, shape },
      { { robots = { recheck = "1" } }, nil, shape },
      { {}, { ["/a"] = { robots = 1 } }, "s.lua: objects['/a'].robots must be a boolean" },
    }
    for _, c in ipairs(cases) do
      local ok, err = pcall(make, c[1], c[2])
      assert.is_false(ok)
      assert.equal(c[3], err)
    end
  end)

  it("lets the nearest pattern say which objects obey, else the spec", function()
    local R = make({ robots = true }, { ["/host/*"] = { robots = false }, ["/host/b"] = { robots = true } })
    assert.is_false(R.obeys("/host/a"))
    assert.is_true(R.obeys("/host/b"))
    assert.is_false(R.obeys("/host/a/sub"))
    assert.is_true(R.obeys("/jobs/1"))
    assert.is_true(R.obeys("/"))
  end)

  it("holds a request until its origin's robots.txt is in, then requeues it", function()
    local R = make({ robots = true })
    local e = { id = 1, url = "http://h:80/private/x" }
    local e2 = { id = 2, url = "http://h:80/open" }
    assert.equal("wait", R.gate(e))
    assert.equal("wait", R.gate(e2))
    local f = R.take_fetch()
    assert.same({ id = robots.ID_BASE + 1, url = "http://h:80/robots.txt", obj = "/host/h" }, f)
    assert.is_nil(R.take_fetch()) -- one fetch per origin
    assert.is_true(R.owns(f.id))
    R.response(f.id, 200, "Disallow: /private\nCrawl-delay: 2\n")
    assert.same({ e, e2 }, requeued)
    local gate, why = R.gate(e)
    assert.equal("deny", gate)
    assert.equal("robots.txt disallows http://h:80/private/x", why)
    assert.equal("go", (R.gate(e2)))
    assert.same({ { "/host/h", { rps = 1, window = 2000 } } }, limits)
    assert.truthy(stores["/host/h"]["robots.txt http://h:80"]:match("^200 %d+\nDisallow"))
  end)

  it("leaves a rate the spec sets for the host alone", function()
    local R = make({ robots = true }, { ["/host/*"] = { rps = 5 } })
    R.gate({ id = 1, url = "http://h/x" })
    R.response(R.take_fetch().id, 200, "Crawl-delay: 9\n")
    assert.same({}, limits)
  end)

  it("refuses everything of an origin whose robots.txt cannot be fetched", function()
    local R = make({ robots = true })
    R.gate({ id = 1, url = "http://h/x" })
    R.failure(R.take_fetch().id, { kind = "connect" })
    local gate, why = R.gate({ id = 1, url = "http://h/x" })
    assert.equal("deny", gate)
    assert.equal("robots.txt of http://h is unreachable: nothing there is fetched for now", why)
    assert.is_nil(stores["/host/h"] and stores["/host/h"]["robots.txt http://h"])
  end)
end)
