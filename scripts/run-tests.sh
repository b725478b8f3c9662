#!/bin/sh
# run-tests.sh [C-TEST...] - run the C unit tests given and every busted
# spec under tests/spec, then print one line summing them all:
#   tests: N passed, M failed
# and exit non-zero when M > 0. Specs run against the sanitizer build
# (FT_BIN, default build/fetchtree-asan).
set -u
cd "$(dirname "$0")/.."
passed=0
failed=0
log=$(mktemp)
TMPDIR=$(mktemp -d "${TMPDIR:-/tmp}/fetchtree-tests.XXXXXX")
export TMPDIR
trap 'rm -f "$log"; rm -rf "$TMPDIR"' EXIT

for t in "$@"; do
  "$t" > "$log" 2>&1
  rc=$?
  cat "$log"
  line=$(grep -E '^c: [0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1)
  if [ -n "$line" ]; then
    p=$(echo "$line" | sed -E 's/^c: ([0-9]+) passed.*/\1/')
    f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed$/\1/')
  else
    p=0; f=1
    echo "$t: crashed or printed no summary (exit $rc)"
  fi
  [ "$rc" -ne 0 ] && [ "$f" -eq 0 ] && f=1
  passed=$((passed + p))
  failed=$((failed + f))
done

export FT_BIN="${FT_BIN:-build/fetchtree-asan}"
export FT_FIXTURE="${FT_FIXTURE:-build/fixture-server}"
# sanitizer reports go to files, so a report from a run whose exit code a
# spec does not check still fails the suite (see the end)
san="$TMPDIR/sanitizer"
export ASAN_OPTIONS="detect_leaks=1:exitcode=99:log_path=$san"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:exitcode=99:log_path=$san"
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$(pwd)/tests/lsan.supp:print_suppressions=0}"
luajit /usr/bin/busted -o TAP tests/spec > "$log" 2>&1
rc=$?
cat "$log"
p=$(grep -cE '^ok [0-9]+' "$log")
f=$(grep -cE '^not ok [0-9]+' "$log")
if [ "$rc" -ne 0 ] && [ "$f" -eq 0 ]; then
  echo "busted exited $rc without a failing test: counted as one failure"
  f=1
fi
passed=$((passed + p))
failed=$((failed + f))

for r in "$san".*; do
  [ -e "$r" ] || continue
  echo "sanitizer report ($r):"
  cat "$r"
  failed=$((failed + 1))
done

echo "tests: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
