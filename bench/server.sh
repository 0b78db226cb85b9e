#!/usr/bin/env bash
# HTTP score benchmark: requests/s and p50/p99 latency of POST /v1/score under concurrent
# load from wrk on loopback, for batches of 1 and 64 responses per request.
#
#   bench/server.sh                      # 10 s per case, 16 connections, 2 server threads
#   DURATION=5s CONNECTIONS=16 bench/server.sh
#   AUTH=1 bench/server.sh               # the server requires a bearer token; wrk sends one
#   SERVER=/path/to/serve bench/server.sh  # another build of the example (not rebuilt)
#
# Builds the release `serve` example of gristmill-server (the crate's test environment:
# addition + comparison, exact + noisy + partial-credit channels, a hint), starts it on
# 127.0.0.1:$PORT, scores gold-suite and training keys with correct answers, prints one line
# per case, and stops the server with SIGTERM. Installs wrk with apt-get when it is missing.
# Goal: >= 20,000 single-response requests/s on 2 cores with p99 < 5 ms.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10s}
CONNECTIONS=${CONNECTIONS:-16}
WRK_THREADS=${WRK_THREADS:-1}
SERVER_THREADS=${SERVER_THREADS:-2}
PORT=${PORT:-18089}
TARGET=${CARGO_TARGET_DIR:-target}
AUTH=${AUTH:-0}
URL="http://127.0.0.1:$PORT"

if ! command -v wrk >/dev/null 2>&1; then
  echo "== installing wrk" >&2
  apt-get update -qq && apt-get install -y -qq wrk >/dev/null
fi
command -v curl >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq curl >/dev/null; }

if [ -z "${SERVER:-}" ]; then
  echo "== building the release server" >&2
  cargo build --release -q -p gristmill-server --example serve
  SERVER="$TARGET/release/examples/serve"
fi

work=$(mktemp -d)
server_args=(--addr "127.0.0.1:$PORT" --threads "$SERVER_THREADS")
TOKEN=""
if [ "$AUTH" = 1 ]; then
  TOKEN=$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')
  printf 'eval %s\n' "$TOKEN" >"$work/tokens.txt"
  server_args+=(--tokens "$work/tokens.txt")
fi
export TOKEN
"$SERVER" "${server_args[@]}" 2>"$work/server.log" &
server=$!
stop() {
  kill -TERM "$server" 2>/dev/null || true
  wait "$server" 2>/dev/null || true
  rm -rf "$work"
}
trap stop EXIT

for _ in $(seq 1 100); do
  curl -fsS "$URL/health" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fsS "$URL/health" >/dev/null || { cat "$work/server.log" >&2; echo "server did not start" >&2; exit 1; }

# Bodies: 64 training tasks (seed 7, step 0) answered with their gold answers, obtained once
# through eval mode; batch-1 requests cycle through them, batch-64 requests send all.
auth_header=()
[ -n "$TOKEN" ] && auth_header=(-H "Authorization: Bearer $TOKEN")
curl -fsS -H 'Content-Type: application/json' "${auth_header[@]}" "$URL/v1/sample" \
  -d '{"env": "serve-test", "seed": 7, "count": 64}' >"$work/tasks.json"
python3 - "$work" "$URL" <<'PY'
import json, os, sys, urllib.request
work, url = sys.argv[1], sys.argv[2]
tasks = json.load(open(f"{work}/tasks.json"))["tasks"]
token = os.environ.get("TOKEN", "")
auth = {"Authorization": "Bearer " + token} if token else {}
def post(path, body):
    req = urllib.request.Request(url + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json", **auth})
    return json.loads(urllib.request.urlopen(req).read())
probe = post("/v1/score", {"env": "serve-test", "eval": True, "items": [{"task_key": t["task_key"], "response": "?"} for t in tasks]})
items = [{"task_key": t["task_key"], "response": "Let me compute.\n" + r["gold"]["text"]} for t, r in zip(tasks, probe["results"])]
single = [json.dumps({"env": "serve-test", "items": [it]}) for it in items]
batch = [json.dumps({"env": "serve-test", "items": items})]
check = post("/v1/score", {"env": "serve-test", "items": items})
assert all(r["rewards"]["gold"] == 1.0 for r in check["results"]), "gold answers must score 1.0"
auth_lua = f', ["Authorization"] = "Bearer {token}"' if token else ""
def lua(bodies, path):
    quoted = ",\n".join("[==[" + b + "]==]" for b in bodies)
    return f"""
local bodies = {{
{quoted}
}}
local n = #bodies
local i = 0
local headers = {{ ["Content-Type"] = "application/json"{auth_lua} }}
request = function()
  i = i % n + 1
  return wrk.format("POST", "{path}", headers, bodies[i])
end
"""
open(f"{work}/batch1.lua", "w").write(lua(single, "/v1/score"))
open(f"{work}/batch64.lua", "w").write(lua(batch, "/v1/score"))
PY

to_ms() { # wrk prints e.g. 812.00us, 1.23ms, 1.01s
  awk -v v="$1" 'BEGIN {
    if (v ~ /us$/) { sub(/us$/, "", v); printf "%.3f", v / 1000 }
    else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.3f", v }
    else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.3f", v * 1000 }
    else { printf "%s", v } }'
}

auth_note="no authentication"
[ -n "$TOKEN" ] && auth_note="bearer token required and sent"
echo "== POST /v1/score: $DURATION per case, $CONNECTIONS connections, wrk threads $WRK_THREADS, server threads $SERVER_THREADS, $(nproc) cores, $auth_note"
printf '%-8s %12s %14s %10s %10s %8s\n' batch "requests/s" "responses/s" "p50 ms" "p99 ms" errors
for batch in 1 64; do
  out=$(wrk -t "$WRK_THREADS" -c "$CONNECTIONS" -d "$DURATION" --latency -s "$work/batch$batch.lua" "$URL/v1/score")
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  p50=$(awk '/^ +50%/ {print $2}' <<<"$out")
  p99=$(awk '/^ +99%/ {print $2}' <<<"$out")
  non2xx=$(awk '/Non-2xx/ {print $NF}' <<<"$out")
  sockerr=$(awk '/Socket errors/ {print $0}' <<<"$out")
  errors=${non2xx:-0}
  [ -n "$sockerr" ] && errors="$errors ($sockerr)"
  printf '%-8s %12.0f %14.0f %10s %10s %8s\n' "$batch" "$rps" "$(awk -v r="$rps" -v b="$batch" 'BEGIN {print r * b}')" \
    "$(to_ms "$p50")" "$(to_ms "$p99")" "$errors"
done
