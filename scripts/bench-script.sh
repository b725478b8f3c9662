#!/bin/sh
# bench-script.sh - what running Lua per response costs: N responses through
# an on_response that decodes JSON and returns a record, against the same
# run with no handler. Runs alternate; the median of each is reported.
set -eu
cd "$(dirname "$0")/.."
N=${N:-100000}
RUNS=${RUNS:-3}
CONC=${CONC:-64}
. scripts/fixture.sh
fixture_start
base="http://127.0.0.1:$FIXTURE_PORT"
rate() { # mode -> requests per second, from fetchtree's own summary
  build/fetchtree run bench/transform.lua -c "$CONC" --no-body -- "$base" "$N" "$1" 2>&1 >/dev/null |
    sed -n 's/.* requests in .* s, \([0-9]*\)\/s,.*/\1/p'
}
lua_rates=""; plain_rates=""
i=0
while [ $i -lt "$RUNS" ]; do
  plain_rates="$plain_rates $(rate plain)"
  lua_rates="$lua_rates $(rate lua)"
  i=$((i + 1))
done
median() { echo "$@" | tr ' ' '\n' | sed '/^$/d' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
p=$(median $plain_rates); l=$(median $lua_rates)
echo "responses per run         $N, $CONC in flight, median of $RUNS alternating runs"
echo "no handler (default rec.) $p/s   (runs:$plain_rates)"
echo "Lua on_response + JSON    $l/s   (runs:$lua_rates)"
awk -v p="$p" -v l="$l" 'BEGIN { printf "ratio                     %.3f  (the Lua path costs %.1f%% of the throughput)\n", l / p, (1 - l / p) * 100 }'
