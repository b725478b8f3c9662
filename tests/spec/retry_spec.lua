-- retry_spec.lua - the retry loop seen from both ends: what the server saw
-- (attempts, gaps between them) and what the records say.
local H = require "helper"
local null = H.null

describe("retries", function()
  local srv
  local key = 0
  setup(function() srv = H.server() end)
  teardown(function() srv.stop() end)

  -- a fresh flaky URL: the server counts attempts per key
  local function flaky(query)
    key = key + 1
    local k = "k" .. key
    return srv.base .. "/flaky/" .. k .. "?" .. query, "/flaky/" .. k .. "?"
  end

  local function arrivals(prefix, n)
    local rows = srv.log_for(prefix, n)
    local t = {}
    for i, r in ipairs(rows) do t[i] = r.t end
    table.sort(t)
    return t
  end

  it("retries 503 until it succeeds, counting attempts", function()
    local url, prefix = flaky("fails=2")
    local r = H.fetch({ url }, "-q --backoff-base 20")
    local rec = r.records[1]
    assert.equal(200, rec.status)
    assert.equal(3, rec.attempts)
    assert.equal(null, rec.error)
    assert.equal(3, H.json.decode(rec.body).attempt)
    assert.equal(3, #arrivals(prefix, 3))
  end)

  it("retries every default status, connection resets, drops and timeouts", function()
    local lines = {}
    for _, q in ipairs { "fails=1&mode=429", "fails=1&mode=500" } do lines[#lines + 1] = flaky(q) end
    lines[#lines + 1] = srv.base .. "/status/502?x=1"
    lines[#lines + 1] = srv.base .. "/status/504?x=1"
    lines[#lines + 1] = srv.base .. "/status/408?x=1"
    local r = H.fetch(lines, "-q --ordered --backoff-base 10 --retries 1")
    for i, rec in ipairs(r.records) do assert.equal(2, rec.attempts, lines[i]) end
    assert.equal(200, r.records[1].status)
    assert.equal(null, r.records[1].error)
    assert.equal(200, r.records[2].status)
    assert.equal(502, r.records[3].status)
    assert.equal("retries_exhausted", r.records[3].error.kind)
    assert.equal("http", r.records[3].error.cause)
    -- one request per run, so the failing attempt is on a fresh connection
    -- (libcurl itself retries a request once when a reused connection
    -- turns out to be dead, and the server would see that extra attempt)
    for _, mode in ipairs { "reset", "drop", "stall" } do
      local url, prefix = flaky("fails=1&mode=" .. mode)
      r = H.fetch({ url }, "-q --backoff-base 10 --timeout 0.4")
      assert.equal(200, r.records[1].status, mode)
      assert.equal(2, r.records[1].attempts, mode)
      assert.equal(2, #arrivals(prefix, 2), mode)
    end
    r = H.fetch({ (flaky("fails=100&mode=reset")) }, "-q --backoff-base 10 --retries 1")
    assert.equal("retries_exhausted", r.records[1].error.kind)
    assert.equal("reset", r.records[1].error.cause)
    assert.equal(null, r.records[1].status)
  end)

  it("does not retry statuses outside the retry set, and --retry-on sets it", function()
    local u404 = srv.base .. "/status/404?r=1"
    local u503, p503 = flaky("fails=1")
    local u429, p429 = flaky("fails=1&mode=429")
    local r = H.fetch({ u404, u503, u429 }, "-q --ordered --backoff-base 10 --retry-on 429")
    assert.equal(1, r.records[1].attempts)
    assert.equal(404, r.records[1].status)
    assert.equal(1, r.records[2].attempts) -- 503 is not in the set any more
    assert.equal(503, r.records[2].status)
    assert.equal(null, r.records[2].error)
    assert.equal(2, r.records[3].attempts)
    assert.equal(200, r.records[3].status)
    assert.equal(1, #arrivals(p503, 1))
    assert.equal(2, #arrivals(p429, 2))
    r = H.fetch({ u404 }, "-q --retry-on 429,abc")
    assert.equal(2, r.rc)
  end)

  it("gives up after --retries with the last status and kind retries_exhausted", function()
    local url, prefix = flaky("fails=100")
    local r = H.fetch({ url }, "-q --retries 3 --backoff-base 5")
    local rec = r.records[1]
    assert.equal(4, rec.attempts)
    assert.equal(503, rec.status)
    assert.equal("retries_exhausted", rec.error.kind)
    assert.equal("http", rec.error.cause)
    H.sleep(0.2)
    assert.equal(4, #arrivals(prefix, 4)) -- exactly: no attempt after giving up
  end)

  it("retries connection failures", function()
    local dead = H.server()
    local base = dead.base
    dead.stop()
    H.sleep(0.1)
    local r = H.fetch({ base .. "/item/1.json" }, "-q --retries 2 --backoff-base 5")
    assert.equal(3, r.records[1].attempts)
    assert.equal("retries_exhausted", r.records[1].error.kind)
    assert.equal("connect", r.records[1].error.cause)
  end)

  it("waits a full-jitter exponential backoff between attempts", function()
    -- base 40 ms: retry k waits uniformly in [0, 40 * 2^k] ms
    local lines, prefixes = {}, {}
    for i = 1, 30 do
      lines[i], prefixes[i] = flaky("fails=2")
    end
    H.fetch(lines, "-q --backoff-base 40 --backoff-cap 10000")
    local first_gaps = {}
    for i = 1, 30 do
      local t = arrivals(prefixes[i], 3)
      assert.equal(3, #t)
      local g1, g2 = t[2] - t[1], t[3] - t[2]
      assert.truthy(g1 <= 0.080 + 0.03, "first gap " .. g1)
      assert.truthy(g2 <= 0.160 + 0.03, "second gap " .. g2)
      first_gaps[i] = g1
    end
    table.sort(first_gaps)
    -- jitter: spread over the range, not a fixed delay
    assert.truthy(first_gaps[1] < 0.025, "smallest first gap " .. first_gaps[1])
    assert.truthy(first_gaps[30] > 0.050, "largest first gap " .. first_gaps[30])
  end)

  it("respects the backoff cap", function()
    local url, prefix = flaky("fails=3")
    H.fetch({ url }, "-q --backoff-base 1000 --backoff-cap 30")
    local t = arrivals(prefix, 4)
    assert.equal(4, #t)
    for i = 2, 4 do assert.truthy(t[i] - t[i - 1] < 0.030 + 0.03) end
  end)

  it("honours Retry-After in seconds", function()
    local url, prefix = flaky("fails=1&ra=1")
    local r = H.fetch({ url }, "-q --backoff-base 1")
    assert.equal(200, r.records[1].status)
    assert.equal(2, r.records[1].attempts)
    local t = arrivals(prefix, 2)
    assert.truthy(t[2] - t[1] >= 0.99, "gap " .. (t[2] - t[1]))
  end)

  it("honours Retry-After as an HTTP date", function()
    local url, prefix = flaky("fails=1&ra_date=2&mode=429")
    local r = H.fetch({ url }, "-q --backoff-base 1")
    assert.equal(200, r.records[1].status)
    local t = arrivals(prefix, 2)
    -- the date is the first failure's second + 2: never retried before it
    assert.truthy(t[2] >= math.floor(t[1]) + 2 - 0.005, "retried at " .. (t[2] - t[1]))
  end)

  it("gives up when Retry-After is longer than --max-retry-after", function()
    local url, prefix = flaky("fails=1&ra=120")
    local r = H.fetch({ url }, "-q")
    local rec = r.records[1]
    assert.equal(503, rec.status)
    assert.equal(1, rec.attempts)
    assert.equal("retry_after", rec.error.kind)
    assert.truthy(rec.error.message:match("max%-retry%-after"))
    url = flaky("fails=1&ra=2")
    r = H.fetch({ url }, "-q --max-retry-after 1")
    assert.equal("retry_after", r.records[1].error.kind)
  end)

  it("does not hold a concurrency slot while waiting, nor stall others", function()
    local url, prefix = flaky("fails=1&ra=1")
    local lines = { url }
    for i = 1, 5 do lines[#lines + 1] = srv.base .. "/item/" .. i .. ".json?slot" end
    local r = H.fetch(lines, "-q -c 1")
    assert.equal(6, #r.records)
    assert.equal(0, r.records[6].index) -- the retried one is last
    local t = arrivals(prefix, 2)
    for _, row in ipairs(srv.log_for("/item/", 5)) do
      if row.target:match("%?slot$") then
        assert.truthy(row.t < t[2], "an item waited for the retry")
      end
    end
  end)
end)
