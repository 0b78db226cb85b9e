#!/usr/bin/env bash
# The language-model benchmark (issue 7): prompt and generation tokens/s of the in-process
# model (batch 1 and batched) and rollouts/s on a text task family (addition, 1 digit).
#
#   bench/lm.sh [MODEL.gguf]
#
# 1. Fetches the default model (scripts/fetch-model.sh) unless a .gguf path is given.
# 2. Builds and runs `cargo run --release -p gristmill-lm --example bench-lm` (honours
#    CARGO_TARGET_DIR).
# 3. With BENCH_LLAMA_CPP=1, also installs llama-cpp-python (pinned, built from source: ~10 min
#    on 2 cores) into a throwaway venv (.bench-venv-llama/, or BENCH_VENV) and measures it on
#    the same GGUF with the same thread count, then prints the ratios. Off by default because of
#    the build time. NOTE: this branch has not been run yet (see BENCHMARKS.md).
#
# Run it on an otherwise idle machine: the figures are wall-clock rates.
set -euo pipefail
cd "$(dirname "$0")/.."

model=${1:-$(scripts/fetch-model.sh)}
threads=${RAYON_NUM_THREADS:-$(nproc)}
out=$(mktemp)
echo "== gristmill-lm ($model, $threads threads)"
cargo run --quiet --release -p gristmill-lm --example bench-lm -- "$model" | tee "$out"

if [[ "${BENCH_LLAMA_CPP:-0}" == "1" ]]; then
  VENV=${BENCH_VENV:-.bench-venv-llama}
  if [[ ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c "import llama_cpp" 2>/dev/null; then
    python3 -m venv "$VENV"
    CMAKE_ARGS="-DGGML_NATIVE=OFF" "$VENV/bin/pip" install --quiet "llama-cpp-python==0.3.36"
  fi
  echo "== llama-cpp-python (same file, $threads threads)"
  "$VENV/bin/python" - "$model" "$threads" "$(tail -n1 "$out")" <<'PY'
import json, sys, time
from llama_cpp import Llama
path, threads, ours = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
llm = Llama(model_path=path, n_threads=threads, n_ctx=1024, verbose=False, logits_all=False)
text = "The quick brown fox jumps over the lazy dog. " * 20
toks = llm.tokenize(text.encode())
llm.reset(); llm.eval(toks[:8])  # warm-up
t = time.perf_counter(); reps = 3
for _ in range(reps):
    llm.reset(); llm.eval(toks)
prompt = len(toks) * reps / (time.perf_counter() - t)
llm.reset()
t = time.perf_counter()
out = llm.create_completion("Write a short story about a mill.", max_tokens=64, temperature=0.8, seed=1)
gen = out["usage"]["completion_tokens"] / (time.perf_counter() - t)
for name, theirs in [("prompt tokens/s (batch 1)", prompt), ("generation tokens/s (batch 1)", gen)]:
    print(f"{name:<34} {theirs:>10.1} tok/s   gristmill/llama.cpp = {ours[name] / theirs:.2f}")
PY
fi
rm -f "$out"
