#!/bin/sh
# bench-state.sh - what durability costs: the same crawl (N items, each
# decoded in Lua into a record) with and without --state. Runs alternate;
# medians are reported.
set -eu
cd "$(dirname "$0")/.."
N=${N:-100000}
RUNS=${RUNS:-3}
CONC=${CONC:-64}
. scripts/fixture.sh
fixture_start
base="http://127.0.0.1:$FIXTURE_PORT"
tmp=$(mktemp -d)
rate() { # extra options -> requests per second
  rm -f "$tmp"/state.db*
  build/fetchtree run bench/transform.lua -c "$CONC" --out "$tmp/out.jsonl" "$@" -- "$base" "$N" lua 2>&1 |
    run_rate
}
: > "$tmp/mem"; : > "$tmp/dur"
i=0
while [ $i -lt "$RUNS" ]; do
  rate >> "$tmp/mem"
  rate --state "$tmp/state.db" >> "$tmp/dur"
  i=$((i + 1))
done
m=$(median < "$tmp/mem"); d=$(median < "$tmp/dur")
echo "$N requests per run, $CONC in flight, medians of $RUNS alternating runs"
echo "in memory        $m/s   (runs: $(tr '\n' ' ' < "$tmp/mem"))"
echo "with --state     $d/s   (runs: $(tr '\n' ' ' < "$tmp/dur"))"
awk -v m="$m" -v d="$d" 'BEGIN { printf "ratio            %.3f  (durable / in memory; the target is at least 0.5)\n", d / m }'
rm -rf "$tmp"
