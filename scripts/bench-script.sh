#!/bin/sh
# bench-script.sh - what running Lua per response costs: N responses through
# an on_response that decodes JSON and returns a record, against the same
# run with no handler. Runs alternate; medians of the rate and of the
# client's CPU time (user + sys) are reported, CPU being the steadier
# figure on a shared 2-core machine where the server competes for cores.
set -eu
cd "$(dirname "$0")/.."
N=${N:-100000}
RUNS=${RUNS:-5}
CONC=${CONC:-64}
. scripts/fixture.sh
fixture_start
base="http://127.0.0.1:$FIXTURE_PORT"
tmp=$(mktemp)
one() { # mode -> "rate cpu_seconds"
  /usr/bin/time -f "%U %S" -o "$tmp.t" build/fetchtree run bench/transform.lua -c "$CONC" \
    -- "$base" "$N" "$1" 2> "$tmp" > /dev/null
  r=$(run_rate < "$tmp")
  c=$(awk '{ print $1 + $2 }' "$tmp.t")
  echo "$r $c"
}
: > "$tmp.plain"; : > "$tmp.lua"
i=0
while [ $i -lt "$RUNS" ]; do
  one plain >> "$tmp.plain"
  one lua >> "$tmp.lua"
  i=$((i + 1))
done
pr=$(cut -d' ' -f1 "$tmp.plain" | median); pc=$(cut -d' ' -f2 "$tmp.plain" | median)
lr=$(cut -d' ' -f1 "$tmp.lua" | median); lc=$(cut -d' ' -f2 "$tmp.lua" | median)
echo "$N responses per run, $CONC in flight, medians of $RUNS alternating runs"
printf "%-34s %8s/s  %6.2f CPU s\n" "no handler (default records)" "$pr" "$pc"
printf "%-34s %8s/s  %6.2f CPU s\n" "Lua on_response decoding JSON" "$lr" "$lc"
awk -v pr="$pr" -v lr="$lr" -v pc="$pc" -v lc="$lc" 'BEGIN {
  printf "rate ratio (Lua / none)            %.3f  (Lua path costs %.1f%% of the throughput)\n", lr / pr, (1 - lr / pr) * 100
  printf "CPU ratio  (Lua / none)            %.3f\n", lc / pc }'
rm -f "$tmp" "$tmp.t" "$tmp.plain" "$tmp.lua"
