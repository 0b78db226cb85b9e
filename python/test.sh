#!/usr/bin/env bash
# The Python package's tests, from scratch: a venv, the package built from source by pip
# (maturin; the dev profile, so it reuses what `cargo test` built), its test dependencies
# (torch, transformers, TRL, peft: the tiny-model tests), ruff, then pytest. pytest's exit
# code 5 (no tests collected) is a failure, not a pass.
set -euo pipefail
cd "$(dirname "$0")"
venv="${GRISTMILL_VENV:-$(pwd)/../target/python-venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
export PATH="$venv/bin:$PATH"
echo "== python: dependencies into $venv"
pip install -q --disable-pip-version-check "maturin>=1.5,<2" "numpy>=1.24" "pytest>=8" "ruff>=0.6" \
  torch "transformers>=4.56" "trl>=1.0" "peft>=0.13" datasets reasoning-gym
echo "== python: build and install gristmill from source"
pip install -q --disable-pip-version-check --no-build-isolation --force-reinstall --no-deps \
  --config-settings=build-args="--profile dev" .
echo "== python: ruff"
ruff check gristmill tests
echo "== python: pytest"
export GRISTMILL_BIN="${GRISTMILL_BIN:-$(pwd)/../target/debug/gristmill}"
set +e
# The pytest script, not `python -m pytest`: the latter puts python/ on sys.path, and the
# source tree (no compiled extension, or a stale one) would shadow the installed package.
pytest -q -W ignore::FutureWarning -W ignore::UserWarning tests
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests: that is a failure" >&2
  exit 1
fi
exit "$rc"
