#!/usr/bin/env bash
# The rollout benchmark (issue 2): gristmill rollouts/s, multi-turn forks/s and steps/s, and
# items/s against reasoning-gym on comparable work, in one run.
#
#   bench/rollouts.sh [extra gristmill-bench options, e.g. --seconds 5 --json bench.json]
#
# 1. Installs reasoning-gym (pinned) into a throwaway venv, .bench-venv/ at the repo root
#    (git-ignored; BENCH_VENV=DIR picks another place; it is reused when the pin matches).
# 2. Builds gristmill-bench in release mode (honours CARGO_TARGET_DIR).
# 3. Runs `gristmill-bench rollouts --peer-python <venv>/bin/python "$@"` and prints it all.
#
# Takes about 75 s on 2 cores at the defaults (3 s per case, 5 s per peer dataset), not
# counting the first pip install and build. Run it on an otherwise idle machine: the figures
# are wall-clock rates.
set -euo pipefail
cd "$(dirname "$0")/.."

RG_VERSION=0.1.25
VENV=${BENCH_VENV:-.bench-venv}
TARGET_DIR=${CARGO_TARGET_DIR:-target}

have_peer() {
  "$VENV/bin/python" - "$RG_VERSION" <<'EOF' >/dev/null 2>&1
import sys
from importlib.metadata import version
import reasoning_gym  # noqa: F401
sys.exit(0 if version("reasoning-gym") == sys.argv[1] else 1)
EOF
}

make_venv() {
  rm -rf "$VENV"
  python3 -m venv "$VENV"
}

if ! have_peer; then
  command -v python3 >/dev/null 2>&1 || { echo "bench: python3 is required for the peer" >&2; exit 1; }
  echo "== peer: creating $VENV with reasoning-gym==$RG_VERSION"
  if ! make_venv; then
    # Debian and Ubuntu ship venv's pip bootstrap in a separate package.
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "bench: python3 -m venv failed; installing python3-venv" >&2
      apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
      make_venv
    else
      echo "bench: python3 -m venv failed; install python3-venv (Debian/Ubuntu) and retry" >&2
      exit 1
    fi
  fi
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "reasoning-gym==$RG_VERSION"
  have_peer || { echo "bench: reasoning-gym==$RG_VERSION did not import from $VENV" >&2; exit 1; }
fi

echo "== build"
cargo build --release --locked -p gristmill-bench

echo "== machine"
echo "date:      $(date -u +%Y-%m-%dT%H:%M:%SZ)"
echo "commit:    $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD 2>/dev/null || echo ' (with local changes)')"
echo "rustc:     $(rustc --version)"
echo "python:    $("$VENV/bin/python" --version 2>&1), reasoning-gym $RG_VERSION"
echo "cpu:       $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | cut -d: -f2- | sed 's/^ //' || echo unknown)"
echo "cores:     $(nproc 2>/dev/null || echo unknown)"
echo "load avg:  $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)"

cmd=("$TARGET_DIR/release/gristmill-bench" rollouts --peer-python "$VENV/bin/python" "$@")
echo "== run: ${cmd[*]}"
"${cmd[@]}"
echo "load avg after: $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)"
