#!/bin/sh
# demo.sh - the main job on the built-in fixture server: fetch 10,000
# Hacker-News-style items with `fetchtree fetch` and show what came back.
set -eu
cd "$(dirname "$0")/.."
. scripts/fixture.sh
fixture_start
base="http://127.0.0.1:$FIXTURE_PORT"
out=build/demo.jsonl
echo "fixture server on $base; fetching $base/item/1.json .. /item/10000.json"
i=1
while [ $i -le 10000 ]; do echo "$base/item/$i.json"; i=$((i + 1)); done |
  build/fetchtree fetch --no-headers --out "$out"
echo
echo "$(wc -l < "$out") records in $out; the first two:"
head -n 2 "$out"
