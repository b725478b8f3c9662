#!/bin/sh
# demo.sh - the main job on the built-in fixture server: the Hacker-News
# crawl example (examples/hn.lua) fetches items 1..3000 and follows their
# kids two levels down (16,158 items at the example's 5,000/s limit).
set -eu
cd "$(dirname "$0")/.."
. scripts/fixture.sh
fixture_start
base="http://127.0.0.1:$FIXTURE_PORT"
out=build/demo.jsonl
echo "fixture server on $base"
echo "fetchtree run examples/hn.lua -- $base 3000"
build/fetchtree run examples/hn.lua --out "$out" -- "$base" 3000
echo
echo "$(wc -l < "$out") item records in $out; the first three:"
head -n 3 "$out"
