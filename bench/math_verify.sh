#!/usr/bin/env bash
# Free-text math verification: gristmill-text against Hugging Face math-verify, in one run.
#
#   bench/math_verify.sh [--seconds S] [--json OUT.json]
#
# 1. Checks that bench/data/math_corpus.jsonl is what bench/math_corpus.py generates.
# 2. Installs math-verify (pinned) into a throwaway venv, /tmp/gristmill-math-verify-venv by
#    default (MV_VENV=DIR picks another place; it is reused when the pin matches). Never the
#    system site-packages.
# 3. Builds the gristmill-text example `math_verify_bench` in release mode.
# 4. Runs math-verify on the corpus, then gristmill-text on the same corpus, both pinned to
#    the same single core (taskset, core BENCH_CORE, default 1), and prints agreement, each
#    side's accuracy against the labels, every disagreement with its explanation, and
#    pairs/s for both (wall clock and CPU time) with the ratio.
#
# math-verify takes about 25 s of CPU for the corpus; gristmill-text runs for S seconds
# (default 3). Run on an otherwise idle machine for wall-clock figures; the CPU-time figures
# are robust to other load on the core.
set -euo pipefail
cd "$(dirname "$0")/.."

MV_VERSION=0.9.0
VENV=${MV_VENV:-/tmp/gristmill-math-verify-venv}
TARGET_DIR=${CARGO_TARGET_DIR:-target}
CORE=${BENCH_CORE:-1}
CORPUS=bench/data/math_corpus.jsonl
WORK=$(mktemp -d /tmp/gristmill-math-verify.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

have_peer() {
  "$VENV/bin/python" - "$MV_VERSION" <<'EOF' >/dev/null 2>&1
import sys
from importlib.metadata import version
import math_verify  # noqa: F401
sys.exit(0 if version("math-verify") == sys.argv[1] else 1)
EOF
}

echo "== corpus"
python3 bench/math_corpus.py --check

if ! have_peer; then
  command -v python3 >/dev/null 2>&1 || { echo "bench: python3 is required for the peer" >&2; exit 1; }
  echo "== peer: creating $VENV with math-verify==$MV_VERSION"
  rm -rf "$VENV"
  python3 -m venv "$VENV" || { echo "bench: python3 -m venv failed; install python3-venv and retry" >&2; exit 1; }
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "math-verify==$MV_VERSION"
  have_peer || { echo "bench: math-verify==$MV_VERSION did not import from $VENV" >&2; exit 1; }
fi

echo "== build"
cargo build --release -p gristmill-text --example math_verify_bench

PIN=()
if command -v taskset >/dev/null 2>&1; then
  PIN=(taskset -c "$CORE")
else
  echo "bench: taskset not found; the processes are not pinned (still one thread each)" >&2
fi

echo "== machine"
echo "date:      $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "commit:    $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- crates/text bench 2>/dev/null || echo ' (with local changes)')"
echo "rustc:     $(rustc --version)"
echo "python:    $("$VENV/bin/python" --version 2>&1), math-verify $MV_VERSION"
echo "cpu:       $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ //' || echo unknown)"
echo "cores:     $(nproc 2>/dev/null || echo unknown), pinned to core $CORE"
echo "uptime:    $(uptime)"

echo "== peer: math-verify"
"${PIN[@]}" "$VENV/bin/python" bench/math_verify_peer.py --corpus "$CORPUS" --out "$WORK/peer.jsonl" >"$WORK/peer-summary.json"
cat "$WORK/peer-summary.json"

cmd=("${PIN[@]}" "$TARGET_DIR/release/examples/math_verify_bench" "$CORPUS" "$WORK/peer.jsonl" "$WORK/peer-summary.json" "$@")
echo "== run: ${cmd[*]}"
"${cmd[@]}"
echo "uptime after: $(uptime)"
