#!/usr/bin/env bash
# Store size against run length (issue 13): the README example (`gristmill run`, embedded
# defaults) trained for 1k, 10k and 100k steps into fresh stores; prints the whole file size
# (WAL folded in on close), the bytes per table and the checkpoints kept.
# Usage: bench/store_size.sh [gristmill-binary]   (default target/release/gristmill)
set -euo pipefail
bin=$(realpath "${1:-target/release/gristmill}")
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
cd "$dir"
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%8s %10s %9s %12s %12s %12s %6s\n' steps seconds "MB total" runs checkpoints step_metrics kept
for steps in ${STEPS:-1000 10000 100000}; do
  start=$(date +%s.%N)
  "$bin" --db "s$steps.db" run --steps "$steps" > /dev/null 2>&1
  secs=$(echo "$(date +%s.%N) - $start" | bc)
  total=$(stat -c %s "s$steps.db")
  table() { python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); print(c.execute(\"select coalesce(sum(pgsize),0) from dbstat where name=?\", (sys.argv[2],)).fetchone()[0])" "s$steps.db" "$1"; }
  kept=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('select count(*) from checkpoints').fetchone()[0])" "s$steps.db")
  printf '%8s %10.1f %9.1f %12s %12s %12s %6s\n' "$steps" "$secs" "$(echo "$total/1000000" | bc -l)" \
    "$(table runs)" "$(table checkpoints)" "$(table step_metrics)" "$kept"
done
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
