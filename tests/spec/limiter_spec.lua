-- limiter_spec.lua - the rate limit checked where it matters, at the
-- server: its log of arrival times, scanned with a sliding window.
--
-- Arrivals lag starts by the server's own queueing, so the bound allows
-- 1% plus the requests in flight (the concurrency); the runs keep the
-- concurrency small so a fixed-window or token-bucket limiter, which lets
-- up to twice the limit through some sliding window, is still caught.
local H = require "helper"

describe("the rate limiter", function()
  local srv
  setup(function() srv = H.server() end)
  teardown(function() srv.stop() end)

  local function times_for(tag, n)
    local t = {}
    for _, row in ipairs(srv.log_for(tag, n, true)) do t[#t + 1] = row.t end
    table.sort(t)
    return t
  end

  local function bound(k, c) return k + math.ceil(k * 0.01) + c end

  it("holds for every sliding window, retries included, at full speed", function()
    -- K = 100 per 500 ms; a quarter of the requests fail once and retry
    local lines = {}
    for i = 1, 400 do
      if i % 4 == 0 then
        lines[i] = srv.base .. "/flaky/sat" .. i .. "?fails=1&tag=sat"
      else
        lines[i] = srv.base .. "/item/" .. i .. ".json?tag=sat"
      end
    end
    local r = H.fetch(lines, "-q -c 12 --rps 200 --window 500 --backoff-base 1")
    assert.equal(400, #r.records)
    local t = times_for("tag=sat", 500)
    assert.equal(500, #t) -- 400 first attempts and 100 retries, all counted
    local worst = H.max_in_window(t, 0.5)
    assert.truthy(worst <= bound(100, 12), "worst 500 ms window held " .. worst)
    assert.truthy(worst >= 95, "the limit was not used: " .. worst)
    -- 500 starts at 100 per 500 ms cannot span less than 4 windows
    assert.truthy(t[#t] - t[1] >= 4 * 0.5 * 0.99, "span " .. (t[#t] - t[1]))
  end)

  it("holds when requests trickle in faster than the limit", function()
    -- input arrives at 1.5x the limit: a fixed-window counter lets a burst
    -- through at each window edge and shows about 1.5 K in some window
    local cmd = string.format("%s fetch -q -c 4 --rps 60 --window 1000 > /dev/null", H.bin)
    local p = assert(io.popen(cmd, "w"))
    for i = 1, 180 do
      p:write(srv.base .. "/item/" .. i .. ".json?tag=trickle\n")
      p:flush()
      H.sleep(1 / 90)
    end
    p:close()
    local t = times_for("tag=trickle", 180)
    assert.equal(180, #t)
    local worst = H.max_in_window(t, 1.0)
    assert.truthy(worst <= bound(60, 4), "worst 1 s window held " .. worst)
  end)

  it("spreads starts with a small window instead of bursting", function()
    local lines = {}
    for i = 1, 200 do lines[i] = srv.base .. "/item/" .. i .. ".json?tag=smooth" end
    H.fetch(lines, "-q -c 8 --rps 1000 --window 10")
    local t = times_for("tag=smooth", 200)
    assert.equal(200, #t)
    assert.truthy(H.max_in_window(t, 0.010) <= bound(10, 8))
    assert.truthy(H.max_in_window(t, 0.050) <= bound(50, 8))
    assert.truthy(t[#t] - t[1] >= 19 * 0.010 * 0.99)
    -- the same rate with a one-second window lets all 200 through at once
    for i = 1, 200 do lines[i] = srv.base .. "/item/" .. i .. ".json?tag=burst" end
    H.fetch(lines, "-q -c 8 --rps 1000 --window 1000")
    t = times_for("tag=burst", 200)
    assert.truthy(H.max_in_window(t, 0.050) > 100)
  end)

  it("is off without --rps: only the concurrency cap applies", function()
    local lines = {}
    for i = 1, 300 do lines[i] = srv.base .. "/item/" .. i .. ".json?tag=free" end
    H.fetch(lines, "-q -c 8")
    local t = times_for("tag=free", 300)
    assert.equal(300, #t)
    -- with any limit at or below 300/s this could not all land in 1 s
    assert.truthy(t[#t] - t[1] < 1.0, "span " .. (t[#t] - t[1]))
  end)
end)
