#!/usr/bin/env bash
# The code-sandbox benchmark: executions/s and per-execution overhead of gristmill-sandbox
# against a bare python3 subprocess running the same tests, on the same machine in the same
# run (modes interleaved round by round), with the ratio printed.
#
#   bench/sandbox.sh [--seconds S] [--rounds R]      (defaults: 12 s per mode, 3 rounds)
#
# Builds and runs `cargo run --release -p gristmill-sandbox --example sandbox-bench`
# (honours CARGO_TARGET_DIR). Needs what the sandbox needs: Linux with Landlock and either
# root or unprivileged user namespaces. Run it on an otherwise idle machine: the figures
# are wall-clock rates; the load average is printed before and after.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --quiet --release -p gristmill-sandbox --example sandbox-bench
echo "== $(date -u '+%Y-%m-%d %H:%M UTC'), commit $(git rev-parse --short HEAD 2>/dev/null || echo '?')"
echo "== uptime before: $(uptime)"
cargo run --quiet --release -p gristmill-sandbox --example sandbox-bench -- "$@"
echo "== uptime after: $(uptime)"
