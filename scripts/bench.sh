#!/bin/sh
# bench.sh - fetchtree against its peers on the same job: N small JSON items
# (default 100,000; QUICK=1: 20,000 and one round) fetched with 64 in flight
# from a local nginx (one worker, 127.0.0.1 only), by
#   fetchtree fetch --no-body     the row every ratio is taken against
#   fetchtree run transform.lua   fetch + decode JSON in Lua + a record
#   bench/curl_multi.c            the floor: a bare libcurl multi loop
#   curl --parallel               \  these four do fetchtree fetch's work:
#   wrk -t1                       /  fetch only (wrk: the server's ceiling)
#   node, aiohttp, scrapy         fetchtree run's work: fetch, decode JSON,
#                                 count (scrapy on N/20, as a rate)
# Rounds alternate the tools, each round starting one further down the
# list; medians of requests/s (N / the client's wall time; wrk's own
# figure), CPU seconds per 100k requests (user + sys) and peak RSS go into
# one table and build/bench/results.json, then the issue's
# targets are checked. Then (not with QUICK) a scale run: 1,000,000 requests
# unlimited and at --rps 50000. Installs its Debian packages when missing.
# A benchmark, not a test: it exits 0 whatever the figures.
set -eu
cd "$(dirname "$0")/.."
if [ -n "${QUICK:-}" ]; then
  N=${N:-20000}; RUNS=${RUNS:-1}
else
  N=${N:-100000}; RUNS=${RUNS:-3}
fi
CONC=${CONC:-64}
SCALE=${SCALE:-1000000}
SCALE_RPS=${SCALE_RPS:-50000}
SCALE_WINDOW=${SCALE_WINDOW:-1000}
# Every tool fetches the list transform.lua makes, /item/1..N, so N files
# are served (not 10,000 cycled over: `run` fetches a repeated URL once);
# the scale run's 1,000,000 URLs cycle over these N.
FILES=$N
SCRAPY_N=$((N / 20))
out=build/bench
mkdir -p "$out"

# --- Debian packages (nothing to do when all are there)
PKGS="nginx-light wrk curl python3-aiohttp python3-scrapy time pkg-config libcurl4-openssl-dev"
command -v node > /dev/null || PKGS="$PKGS nodejs"
sh scripts/deps.sh $PKGS
NGINX=/usr/sbin/nginx
PY=/usr/bin/python3 # Debian's, which has aiohttp (not one first on PATH)

# --- the reference loop
cc -O2 -o "$out/curl_multi" bench/curl_multi.c $(pkg-config --cflags --libs libcurl)

# --- a scratch directory in memory, and everything stopped at exit
tmp=$(mktemp -d -p /dev/shm fetchtree-bench.XXXXXX 2>/dev/null || mktemp -d)
chmod 755 "$tmp" # nginx's worker runs as nobody
NGINX_PID=""
cleanup() {
  if [ -n "$NGINX_PID" ]; then
    kill "$NGINX_PID" 2>/dev/null || true
    wait "$NGINX_PID" 2>/dev/null || true
  fi
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- fixture files: /item/1.json .. /item/N.json, the fixture server's items
"$PY" - "$tmp/www/item" "$FILES" <<'PY'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
os.makedirs(d)
for i in range(1, n + 1):
    with open(f"{d}/{i}.json", "w") as f:
        f.write(f'{{"id":{i},"type":"story","by":"user{i % 97}","time":{1600000000 + i},'
                f'"title":"Item {i}","score":{i % 500},"url":"http://example.invalid/story/{i}",'
                f'"kids":[{3 * i + 1},{3 * i + 2},{3 * i + 3}]}}')
PY

# --- nginx on the first free port from 18000, loopback only
port=18000
while ! "$PY" -c "import socket,sys; s=socket.socket(); s.bind(('127.0.0.1', int(sys.argv[1])))" "$port" 2>/dev/null; do
  port=$((port + 1))
  [ $port -gt 18999 ] && { echo "bench: no free port in 18000-18999" >&2; exit 1; }
done
mkdir -p "$tmp/nginx"
cat > "$tmp/nginx/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $tmp/nginx/nginx.pid;
error_log /dev/null crit;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on;
  tcp_nodelay on;
  keepalive_requests 1000000;
  keepalive_timeout 60s;
  types { application/json json; }
  default_type application/octet-stream;
  # no open_file_cache: N cached descriptors would pass the 20,000-file limit
  client_body_temp_path $tmp/nginx/body;
  proxy_temp_path $tmp/nginx/proxy;
  fastcgi_temp_path $tmp/nginx/fastcgi;
  server {
    listen 127.0.0.1:$port;
    root $tmp/www;
  }
}
EOF
$NGINX -p "$tmp/nginx" -e "$tmp/nginx/startup.log" -c "$tmp/nginx/nginx.conf" &
NGINX_PID=$!
base="http://127.0.0.1:$port"
i=0
until curl -sf -o /dev/null "$base/item/1.json"; do
  i=$((i + 1))
  if [ $i -gt 100 ] || ! kill -0 "$NGINX_PID" 2>/dev/null; then
    echo "bench: nginx did not start" >&2; cat "$tmp/nginx/startup.log" >&2; exit 1
  fi
  sleep 0.05
done

# --- request lists: every tool fetches the same URLs, those transform.lua makes
awk -v b="$base" -v n="$N" 'BEGIN { for (i = 1; i <= n; i++) print b "/item/" i ".json" }' > "$tmp/urls"
head -n "$SCRAPY_N" "$tmp/urls" > "$tmp/urls.scrapy"
awk '{ print "url = \"" $0 "\""; print "output = \"/dev/null\"" }' "$tmp/urls" > "$tmp/urls.curl"

# A sanity check before measuring: every answer is a 200 with the item.
ok=$(head -n 100 "$tmp/urls" | build/fetchtree fetch -q | grep -c '"status":200,.*\\"title\\":\\"Item ' || true)
[ "$ok" = 100 ] || { echo "bench: sanity check failed: $ok of 100 items fetched" >&2; exit 1; }

# measure CMD...: (with $key set) runs CMD under /usr/bin/time, its output kept in $tmp/out
# and $tmp/err; sets m_ok (1, or 0 when it failed: reported, left out),
# m_wall (seconds, process start to exit) and m_usage ("USER SYS RSS_KB").
measure() {
  t0=$(date +%s%N)
  st=0
  /usr/bin/time -f '%U %S %M' -o "$tmp/time" "$@" > "$tmp/out" 2> "$tmp/err" || st=$?
  t1=$(date +%s%N)
  m_wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", (b - a) / 1e9 }')
  m_usage=$(tail -n 1 "$tmp/time")
  m_ok=1
  if [ $st -ne 0 ]; then
    m_ok=0
    echo "bench: $key failed (exit $st), left out:" >&2
    tail -n 5 "$tmp/err" >&2
  fi
}
# record KEY REQUESTS WALL [RATE]: one raw line for bench/report.py.
record() {
  echo "$1 $round $2 $3 $m_usage${4:+ $4}" >> "$raw"
}
# tool KEY REQUESTS CMD...: measure and record; when the tool is one of the
# peers that print "items N", check that it decoded them all.
tool() {
  key=$1; req=$2; shift 2
  measure "$@"
  if [ "$m_ok" = 1 ]; then
    record "$key" "$req" "$m_wall"
    got=$(sed -n 's/^items \([0-9]*\)$/\1/p' "$tmp/out")
    if [ -n "$got" ] && [ "$got" != "$req" ]; then
      echo "bench: $key decoded $got items of $req" >&2
    fi
  fi
}

# A warm-up pass, not measured: nginx's first look at each file (dentries,
# its own open() path) would otherwise be paid by whichever tool goes first.
"$out/curl_multi" "$tmp/urls" "$CONC" 2> /dev/null || true

raw="$out/raw.txt"
: > "$raw"
echo "bench: nginx on $base, $N requests per tool, $CONC in flight, $RUNS round(s)"
round=1
# one KEY: measure one tool in the current round.
wrk_secs=$(( (N + 49999) / 50000 )); [ "$wrk_secs" -lt 2 ] && wrk_secs=2
one() {
  case "$1" in
  # fetch only: the row every ratio is taken against
  ft_fetch) tool ft_fetch "$N" build/fetchtree fetch --no-body -q -c "$CONC" -o /dev/null "$tmp/urls" ;;
  # fetch + decode JSON in Lua + a record: node, aiohttp, scrapy compare with this
  ft_run) tool ft_run "$N" build/fetchtree run bench/transform.lua -c "$CONC" -q --out /dev/null -- "$base" "$N" lua ;;
  # fetch only, as fetchtree fetch: the floor of what libcurl costs, and curl's own tool
  curl_multi) tool curl_multi "$N" "$out/curl_multi" "$tmp/urls" "$CONC" ;;
  curl_parallel) tool curl_parallel "$N" curl --parallel --parallel-max "$CONC" -s --fail -K "$tmp/urls.curl" ;;
  # fetch only, for a fixed time: the server's ceiling (wrk's own count and rate)
  wrk)
    key=wrk
    measure wrk -t1 -c"$CONC" -d"${wrk_secs}s" -s bench/wrk_items.lua "$base" -- "$N"
    if [ "$m_ok" = 1 ]; then
      if grep -q 'Non-2xx\|Socket errors' "$tmp/out"; then
        echo "bench: wrk saw errors:" >&2; grep 'Non-2xx\|Socket errors' "$tmp/out" >&2
      fi
      wreq=$(awk '/ requests in / { print $1 }' "$tmp/out")
      wrate=$(awk '/^Requests\/sec/ { print $2 }' "$tmp/out")
      record wrk "$wreq" "$(awk -v r="$wreq" -v q="$wrate" 'BEGIN { printf "%.4f", r / q }')" "$wrate"
    fi ;;
  # fetch + decode JSON + count: as fetchtree run
  node) tool node "$N" node bench/node_fetch.js "$tmp/urls" "$CONC" ;;
  aiohttp) tool aiohttp "$N" "$PY" bench/aiohttp_fetch.py "$tmp/urls" "$CONC" ;;
  scrapy) tool scrapy "$SCRAPY_N" "$PY" -m scrapy runspider bench/scrapy_spider.py -a urls="$tmp/urls.scrapy" ;;
  esac
}
# rotated LIST R: the words of LIST, starting at word R (mod their count).
rotated() {
  k=$2
  set -- $1
  j=0
  while [ $j -lt $# ]; do
    eval "echo \${$(( (j + k - 1) % $# + 1 ))}"
    j=$((j + 1))
  done
}
# Each round starts one tool further down the list, so that no tool always
# runs first, or always right after the same one. The three rows the targets
# compare most closely (fetchtree fetch and run against the libcurl loop)
# also run KEY_REPEAT times back to back in each round: this machine's speed
# drifts by tens of percent within a minute, and what is measured seconds
# apart is compared fairly.
KEY="ft_fetch curl_multi ft_run"
PEERS="curl_parallel wrk node aiohttp scrapy"
KEY_REPEAT=${KEY_REPEAT:-3}
while [ $round -le "$RUNS" ]; do
  echo "bench: round $round of $RUNS"
  r=0
  while [ $r -lt "$KEY_REPEAT" ]; do
    for t in $(rotated "$KEY" $((round + r))); do one "$t"; done
    r=$((r + 1))
  done
  for t in $(rotated "$PEERS" "$round"); do one "$t"; done
  round=$((round + 1))
done
echo
"$PY" bench/report.py "$raw" "$out/results.json" "$N" "$CONC" "$RUNS"

[ -n "${QUICK:-}" ] && exit 0

# --- scale: SCALE requests cycling over the N files, unlimited and limited
echo
echo "bench: scale run, $SCALE requests through fetchtree fetch --no-body -q, $CONC in flight"
awk -v b="$base" -v n="$N" -v m="$SCALE" 'BEGIN { for (i = 0; i < m; i++) print b "/item/" (i % n + 1) ".json" }' > "$tmp/urls.scale"
raw="$out/raw-scale.txt"
: > "$raw"
round=1
tool unlimited "$SCALE" build/fetchtree fetch --no-body -q -c "$CONC" -o /dev/null "$tmp/urls.scale"
tool limited "$SCALE" build/fetchtree fetch --no-body -q -c "$CONC" --rps "$SCALE_RPS" --window "$SCALE_WINDOW" \
  -o /dev/null "$tmp/urls.scale"
"$PY" bench/report.py --scale "$raw" "$out/results.json" "$SCALE_RPS" "$SCALE_WINDOW"
