#!/usr/bin/env bash
# Dataset loading benchmark for gristmill-data: generates a 1,000,000-row dataset under /tmp
# (JSON lines; Parquet with row groups of 1000 rows, as `Dataset.to_parquet` writes them; and
# Parquet in one row group), then for each file a full streaming scan and an index build plus
# random get(i), each in its own process so that its peak RSS (VmHWM) is its own.
#
#   bash bench/data.sh [ROWS] [GETS]      # defaults: 1000000 rows, 200000 gets per format
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS=${1:-1000000}
GETS=${2:-200000}
DIR=${GRISTMILL_DATA_BENCH_DIR:-/tmp/gristmill-data-bench}

cargo build --release -p gristmill-data --example data_bench
BIN=target/release/examples/data_bench

if [ ! -f "$DIR/rows-$ROWS.done" ]; then
  rm -rf "$DIR"
  "$BIN" generate "$DIR" "$ROWS"
  touch "$DIR/rows-$ROWS.done"
fi
ls -l "$DIR"
uptime
for f in rows.jsonl rows.parquet rows-1group.parquet; do
  "$BIN" scan "$DIR/$f"
done
# Random gets: every Parquet get that misses the block cache decodes a block of 1024 rows
# (one row group of 1000 in rows.parquet), so fewer of them are timed.
"$BIN" get "$DIR/rows.jsonl" "$GETS" 1
"$BIN" get "$DIR/rows.jsonl" "$GETS" 2
"$BIN" get "$DIR/rows.parquet" "$((GETS / 20))" 1
"$BIN" get "$DIR/rows.parquet" "$((GETS / 20))" 2
"$BIN" get "$DIR/rows-1group.parquet" "$((GETS / 20))" 1
uptime
