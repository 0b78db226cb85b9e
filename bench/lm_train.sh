#!/usr/bin/env bash
# Language-model training benchmark: gristmill-lm's training engine (LoRA on SmolLM2-135M,
# f32 dequantized, candle for loading, deterministic kernels) against PyTorch eager on CPU
# (transformers + peft, the same GGUF dequantized, the same LoRA and batch), and its batched
# sampling against llama.cpp (llama-cpp-python, quantized Q4_1, as bench/lm.sh does).
#
#   bench/lm_train.sh [MODEL.gguf]
#
# Environment: THREADS (default: nproc), BENCH_BATCH / BENCH_PROMPT / BENCH_COMPLETION
# (default 8 × (32 + 32) tokens), BENCH_RANK (8), BENCH_TARGETS (q,v), BENCH_STEPS (3);
# TORCH_VENV (default /tmp/gristmill-bench-torch) and LLAMA_VENV (default
# /tmp/gristmill-bench-llama): throwaway venvs, created on first use from PyPI (torch's PyPI
# wheel with its CUDA dependencies, ~6 GB; llama-cpp-python builds from source, ~10 min on 2
# cores). SKIP_TORCH=1 / SKIP_LLAMA=1 skip a peer.
#
# Prints both sides' `name value unit` lines, the ratios (best run of each side), and `uptime`
# before and after: run
# it on an otherwise idle machine, since the figures are wall-clock rates (CPU seconds per
# step are printed too; OpenMP's spin-waiting counts as CPU time on the PyTorch side).
set -euo pipefail
cd "$(dirname "$0")/.."

model=${1:-$(bash scripts/fetch-model.sh)}
threads=${THREADS:-$(nproc)}
export RAYON_NUM_THREADS=$threads
export BENCH_BATCH=${BENCH_BATCH:-8} BENCH_PROMPT=${BENCH_PROMPT:-32} BENCH_COMPLETION=${BENCH_COMPLETION:-32}
export BENCH_RANK=${BENCH_RANK:-8} BENCH_TARGETS=${BENCH_TARGETS:-q,v} BENCH_STEPS=${BENCH_STEPS:-3}
TORCH_VENV=${TORCH_VENV:-/tmp/gristmill-bench-torch}
LLAMA_VENV=${LLAMA_VENV:-/tmp/gristmill-bench-llama}
ours=$(mktemp) torch_out=$(mktemp) llama_out=$(mktemp)
trap 'rm -f "$ours" "$torch_out" "$llama_out"' EXIT

# Install first, so that no build runs while anything is measured.
cargo build --quiet --release -p gristmill-lm --example bench-lm-train
target=${CARGO_TARGET_DIR:-target}
if [[ "${SKIP_TORCH:-0}" != 1 ]] && ! "$TORCH_VENV/bin/python" -c "import torch, transformers, peft, gguf" 2>/dev/null; then
  python3 -m venv "$TORCH_VENV"
  "$TORCH_VENV/bin/pip" install --quiet "torch==2.15.0" "transformers==5.24.0" "peft==0.21.2" "gguf==0.19.0"
fi
if [[ "${SKIP_LLAMA:-0}" != 1 ]] && ! "$LLAMA_VENV/bin/python" -c "import llama_cpp" 2>/dev/null; then
  python3 -m venv "$LLAMA_VENV"
  CMAKE_ARGS="-DGGML_NATIVE=OFF" "$LLAMA_VENV/bin/pip" install --quiet "llama-cpp-python==0.3.36"
fi

echo "== uptime before: $(uptime)"
# The training step, alternately ours and PyTorch's, REPEAT times (the ratio takes the best of
# each, which is the least disturbed by whatever else runs on the machine).
for i in $(seq "${REPEAT:-2}"); do
  echo "== [$i] gristmill-lm train engine ($model, $threads threads, batch $BENCH_BATCH × ($BENCH_PROMPT + $BENCH_COMPLETION), LoRA r=$BENCH_RANK on $BENCH_TARGETS)"
  BENCH_SKIP=channels,sample "$target/release/examples/bench-lm-train" "$model" | tee -a "$ours"
  if [[ "${SKIP_TORCH:-0}" != 1 ]]; then
    echo "== [$i] PyTorch eager (transformers + peft, same GGUF dequantized to f32, $threads threads)"
    "$TORCH_VENV/bin/python" bench/lm_train_torch.py "$model" --threads "$threads" --batch "$BENCH_BATCH" \
      --prompt "$BENCH_PROMPT" --completion "$BENCH_COMPLETION" --rank "$BENCH_RANK" --targets "$BENCH_TARGETS" \
      --steps "$BENCH_STEPS" 2>/dev/null | tee -a "$torch_out"
  fi
done
echo "== gristmill-lm per-channel gradients and sampling"
BENCH_SKIP=train "$target/release/examples/bench-lm-train" "$model" | tee -a "$ours"

if [[ "${SKIP_LLAMA:-0}" != 1 ]]; then
  echo "== llama-cpp-python (same GGUF, Q4_1, $threads threads)"
  "$LLAMA_VENV/bin/python" - "$model" "$threads" <<'PY' | tee "$llama_out"
import json, sys, time
from llama_cpp import Llama
path, threads = sys.argv[1], int(sys.argv[2])
llm = Llama(model_path=path, n_threads=threads, n_threads_batch=threads, n_ctx=1024, verbose=False)
# The same prompts as bench-lm-train, through the model's chat template.
long = [{"role": "user", "content": "The quick brown fox jumps over the lazy dog. " * 20}]
toks = llm.tokenize(("<|im_start|>user\n" + long[0]["content"] + "<|im_end|>\n<|im_start|>assistant\n").encode(), special=True)
llm.reset(); llm.eval(toks[:8])  # warm-up
t = time.perf_counter(); reps = 3
for _ in range(reps):
    llm.reset(); llm.eval(toks)
prompt = len(toks) * reps / (time.perf_counter() - t)
llm.reset()
t = time.perf_counter(); n = 0
for seed in range(3):
    out = llm.create_chat_completion([{"role": "user", "content": "Write a short story about a mill."}],
                                     max_tokens=64, temperature=0.8, seed=seed)
    n += out["usage"]["completion_tokens"]
gen = n / (time.perf_counter() - t)
print(f"{'prompt tokens/s (batch 1)':<46} {prompt:>10.2f} tok/s")
print(f"{'generation tokens/s (batch 1)':<46} {gen:>10.2f} tok/s")
print(json.dumps({"prompt tokens/s (batch 1)": prompt, "generation tokens/s (batch 1)": gen}))
PY
fi
echo "== uptime after: $(uptime)"

python3 - "$ours" "$torch_out" "$llama_out" <<'PY'
import json, sys
def merged(p):
    """All JSON lines of a file merged; for a rate, the best run, for a time, the shortest."""
    out = {}
    try:
        for line in open(p):
            if not line.startswith("{"):
                continue
            for k, v in json.loads(line).items():
                if k not in out:
                    out[k] = v
                elif k.endswith("/s"):
                    out[k] = max(out[k], v)
                elif k.endswith(" s") or k.endswith("MiB"):
                    out[k] = min(out[k], v)
    except OSError:
        pass
    return out
ours, torch, llama = (merged(p) for p in sys.argv[1:4])
print("== ratios (gristmill / peer)")
def ratio(name, peer, theirs_name=None, label=None):
    a, b = ours.get(name), peer.get(theirs_name or name)
    if a is not None and b:
        print(f"{label or name:<58} {a:>10.2f} / {b:>10.2f} = {a / b:.2f}x")
for n in ["train tokens/s", "score (forward) tokens/s"]:
    ratio(n, torch, label=n + " vs PyTorch")
ours_mem, torch_mem = ours.get("peak step memory over load MiB"), torch.get("peak step memory over load MiB")
if ours_mem and torch_mem:
    print(f"{'peak step memory over load (MiB), gristmill vs PyTorch':<58} {ours_mem:>10.1f} vs {torch_mem:>10.1f}")
ratio("prompt tokens/s (batch 1)", llama, label="prompt tokens/s (batch 1) vs llama.cpp")
for b in [1, 8, 32]:
    ratio(f"generation tokens/s (batch {b})", llama, "generation tokens/s (batch 1)",
          label=f"generation tokens/s (gristmill batch {b}) vs llama.cpp batch 1")
PY
