#!/usr/bin/env bash
# Schemathesis, every check, against gristmill-server's OpenAPI document: starts the `serve`
# example with bearer tokens (three identities, so the ownership checks have peers), installs
# schemathesis into a throwaway venv, runs it for a bounded time, and exits non-zero on any
# failure or warning. A second, shorter run without tokens covers the open deployment.
#
#   bash crates/server/schemathesis/run.sh [SERVER_BINARY]
#
# SERVER_BINARY defaults to target/debug/examples/serve (built if missing). Environment:
# ST_MAX_TIME seconds for the run with tokens (default 100), ST_MAX_TIME_OPEN for the one
# without (default 50), ST_SEED (default 1), ST_SPEC (pip requirement, default
# 'schemathesis>=4.32,<4.33'), ST_VENV (an existing venv to use instead of a throwaway one).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
server=${1:-${CARGO_TARGET_DIR:-$root/target}/debug/examples/serve}
max_time=${ST_MAX_TIME:-100}
max_time_open=${ST_MAX_TIME_OPEN:-50}
seed=${ST_SEED:-1}
spec=${ST_SPEC:-schemathesis>=4.32,<4.33}

if [ ! -x "$server" ]; then
  echo "== building the serve example" >&2
  (cd "$root" && cargo build -q -p gristmill-server --example serve)
fi

work=$(mktemp -d)
pid=""
cleanup() {
  if [ -n "$pid" ]; then
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

if [ -n "${ST_VENV:-}" ]; then
  st="$ST_VENV/bin/st"
else
  echo "== installing $spec into a throwaway venv" >&2
  if ! python3 -m venv "$work/venv" 2>/dev/null; then
    # Debian's python3 keeps venv (ensurepip) in a package of its own.
    apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
    rm -rf "$work/venv"
    python3 -m venv "$work/venv"
  fi
  "$work/venv/bin/pip" install -q --disable-pip-version-check "$spec"
  st="$work/venv/bin/st"
fi
"$st" --version

# Starts the server with the given arguments; sets $pid and $url.
start() {
  "$server" --addr 127.0.0.1:0 --threads 2 --max-batch 64 --max-sessions 100000 --idle-timeout-ms 20000 "$@" \
    2>"$work/server.log" &
  pid=$!
  url=""
  for _ in $(seq 1 100); do
    url=$(sed -n 's/.*listening on \(http:[^ ]*\).*/\1/p' "$work/server.log")
    [ -n "$url" ] && break
    sleep 0.1
  done
  [ -n "$url" ] || { cat "$work/server.log" >&2; echo "the server did not start" >&2; exit 1; }
  echo "server: $(head -n 1 "$work/server.log")"
}

stop() {
  kill -TERM "$pid"
  wait "$pid"
  pid=""
}

# Runs schemathesis with config file $1 against $url for $2 seconds; a finding fails the
# script.
check() {
  local config=$1 limit=$2
  # Schemathesis writes its reports and caches into the working directory: keep them out of
  # the checkout. The outer timeout only guards against a hang; --max-time bounds the run.
  (cd "$work" && timeout $((limit + 120)) "$st" --config-file "$config" \
    run "$url/openapi.json" --checks all --max-time "$limit" --seed "$seed" \
    --generation-database none --output-truncate true)
}

token() { python3 -c 'import secrets; print(secrets.token_urlsafe(24))'; }
eval_token=$(token)
train_token=$(token)
other_token=$(token)
printf 'eval %s\ntrain %s\ntrain %s\n' "$eval_token" "$train_token" "$other_token" >"$work/tokens.txt"
cat >"$work/auth.json" <<JSON
{"auth": [
  {"name": "eval", "fixedHeaders": [{"name": "Authorization", "value": "Bearer $eval_token"}]},
  {"name": "train", "fixedHeaders": [{"name": "Authorization", "value": "Bearer $train_token"}]},
  {"name": "other", "fixedHeaders": [{"name": "Authorization", "value": "Bearer $other_token"}]}
]}
JSON
# The three identities are peers: none may see another's sessions or snapshots.
{
  cat "$here/schemathesis.toml"
  printf '\n[auth.wfc]\npath = "%s"\npeers = ["eval", "train", "other"]\n' "$work/auth.json"
} >"$work/schemathesis-tokens.toml"

echo "== schemathesis with bearer tokens (${max_time} s)"
start --tokens "$work/tokens.txt"
check "$work/schemathesis-tokens.toml" "$max_time"
stop

echo "== schemathesis without authentication (${max_time_open} s)"
start
check "$here/schemathesis.toml" "$max_time_open"
stop
echo "schemathesis: no findings"
