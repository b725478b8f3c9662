# fixture.sh - sourced by the demo and benchmark scripts: start the fixture
# server on an ephemeral loopback port (FIXTURE_PORT, FIXTURE_PID) and stop
# it when the calling script exits. Optional: FIXTURE_LOG=path. Also two
# helpers the benchmarks share: run_rate and median.
fixture_start() {
  _pf=$(mktemp)
  rm -f "$_pf"
  _log_arg=""
  [ -n "${FIXTURE_LOG:-}" ] && _log_arg="--log $FIXTURE_LOG"
  build/fixture-server --host 127.0.0.1 --port 0 --port-file "$_pf" $_log_arg \
    --max-seconds "${FIXTURE_SECONDS:-900}" > /dev/null &
  FIXTURE_PID=$!
  trap 'kill $FIXTURE_PID 2>/dev/null; wait $FIXTURE_PID 2>/dev/null' EXIT INT TERM
  _i=0
  while [ ! -s "$_pf" ]; do
    _i=$((_i + 1))
    [ $_i -gt 500 ] && { echo "fixture server did not start" >&2; exit 1; }
    sleep 0.01
  done
  FIXTURE_PORT=$(cat "$_pf")
  rm -f "$_pf"
}

# run_rate: the requests/s of a `fetchtree run` summary read on stdin.
run_rate() { sed -n 's/.* requests in .* s, \([0-9]*\)\/s,.*/\1/p'; }

# median: the median of the numbers read on stdin, one per line.
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
