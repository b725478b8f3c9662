#!/bin/sh
# bench-limit.sh - 100,000 requests at 5,000 requests/second through
# `fetchtree fetch`: achieved rate, ideal time, actual time and their
# ratio, and the worst sliding window the server saw. A benchmark, not a
# test: it prints figures.
set -eu
cd "$(dirname "$0")/.."
N=${N:-100000}
RPS=${RPS:-5000}
WINDOW=${WINDOW:-1000}
CONC=${CONC:-64}
FIXTURE_LOG=$(mktemp)
. scripts/fixture.sh
fixture_start
base="http://127.0.0.1:$FIXTURE_PORT"
input=$(mktemp)
luajit -e "for i = 1, $N do io.write('$base/item/', i, '.json\n') end" > "$input"
start=$(date +%s.%N)
build/fetchtree fetch -q --no-body --rps "$RPS" --window "$WINDOW" -c "$CONC" < "$input" > /dev/null
end=$(date +%s.%N)
sleep 0.2 # the server flushes its log within 50 ms
CONC=$CONC luajit - "$FIXTURE_LOG" "$N" "$RPS" "$WINDOW" "$start" "$end" <<'LUA'
local log, n, rps, w, t0, t1 = arg[1], tonumber(arg[2]), tonumber(arg[3]), tonumber(arg[4]) / 1000, tonumber(arg[5]), tonumber(arg[6])
local t = {}
for line in io.lines(log) do t[#t + 1] = tonumber(line:match("^(%S+)")) end
table.sort(t)
local k = math.floor(rps * w + 1e-9)
local worst, j = 0, 1
for i = 1, #t do
  while t[i] - t[j] >= w do j = j + 1 end
  if i - j + 1 > worst then worst = i - j + 1 end
end
local m = math.ceil(n / k)
local ideal = (m - 1) * w
-- how far apart the first starts of the first and the last window are,
-- per window: W when the limiter loses no time over the run
local period = m > 1 and (t[(m - 1) * k + 1] - t[1]) / (m - 1) or 0
local actual = t1 - t0
print(string.format("requests            %d (server saw %d)", n, #t))
print(string.format("limit               %d per %.0f ms (%d/s)", k, w * 1000, rps))
print(string.format("ideal time          %.3f s  ((ceil(N/K) - 1) * W, plus one response time)", ideal))
print(string.format("actual time         %.3f s  (whole process, start to exit)", actual))
print(string.format("actual / ideal      %.4f", actual / ideal))
print(string.format("achieved rate       %.1f/s  (first to last arrival: %.0f/s)", n / actual, (#t - 1) / (t[#t] - t[1])))
print(string.format("window period       %.3f ms  (first start of window 1 to window %d, per window; ideal %.0f)", period * 1000, m, w * 1000))
print(string.format("last window drained %.0f ms after it opened", (t[#t] - t[(m - 1) * k + 1]) * 1000))
print(string.format("worst %4.0f ms window %d starts (limit %d; arrivals lag starts by up to the %s in flight)", w * 1000, worst, k, os.getenv("CONC") or "64"))
print("reference (Cloudflare Durable Objects tree, same job): 25.6 s")
LUA
rm -f "$input" "$FIXTURE_LOG"
