"""PyTorch eager peer of `bench-lm-train`: the same model (GGUF dequantized to f32 by
transformers), the same LoRA configuration (peft, rank R on the same projections, alpha 2R, no
dropout), the same batch shape (B sequences of P prompt + C completion tokens) and the same
step: token-mean log-prob of the completion weighted by a per-sample advantage, backward,
AdamW on the adapters. Only the logits that score completion tokens are computed
(`logits_to_keep`), as gristmill does. Prints `name value unit` lines and one JSON line.

usage: python bench/lm_train_torch.py MODEL.gguf [--threads N] [--batch B] [--prompt P]
       [--completion C] [--rank R] [--targets q,v] [--steps S]
"""

import argparse
import json
import os
import resource
import sys
import time


def rss_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--prompt", type=int, default=32)
    ap.add_argument("--completion", type=int, default=32)
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--targets", default="q,v")
    ap.add_argument("--steps", type=int, default=3)
    a = ap.parse_args()

    import torch

    torch.set_num_threads(a.threads)
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from peft import LoraConfig, get_peft_model

    d, f = os.path.split(os.path.abspath(a.model))
    t0 = time.perf_counter()
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, torch_dtype=torch.float32)
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    load_s = time.perf_counter() - t0
    figures = {}

    def report(name, value, unit):
        print(f"{name:<46} {value:>10.2f} {unit}")
        figures[name] = value

    report("load s", load_s, "s")
    # Cross-check of the numerics: log p(" Paris" | "The capital of France is").
    with torch.no_grad():
        ids = tok("The capital of France is", return_tensors="pt").input_ids
        paris = tok(" Paris", add_special_tokens=False).input_ids
        lp = torch.log_softmax(model(ids).logits[0, -1].double(), -1)[paris[0]].item()
    report("logprob Paris", lp, "nats")

    names = {
        "q": "q_proj",
        "k": "k_proj",
        "v": "v_proj",
        "o": "o_proj",
        "gate": "gate_proj",
        "up": "up_proj",
        "down": "down_proj",
    }
    cfg = LoraConfig(
        r=a.rank,
        lora_alpha=2 * a.rank,
        lora_dropout=0.0,
        target_modules=[names[t] for t in a.targets.split(",")],
        bias="none",
    )
    model = get_peft_model(model, cfg)
    n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    print(f"{a.threads} threads, LoRA r={a.rank} on {a.targets}: {n_params} parameters")
    rss_load = rss_mib()
    report("rss after load MiB", rss_load, "MiB")

    B, P, C = a.batch, a.prompt, a.completion
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(100, 40000, (B, P + C), generator=g)
    adv = torch.tensor([1.0 if j % 2 == 0 else -1.0 for j in range(B)])
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, weight_decay=0.0)
    tokens_per_step = B * (P + C)

    def forward_logprobs():
        # Logits at positions P-1 .. P+C-2 predict tokens P .. P+C-1.
        out = model(input_ids=ids[:, :-1], logits_to_keep=C)
        logp = torch.log_softmax(out.logits, -1)
        return logp.gather(-1, ids[:, P:].unsqueeze(-1)).squeeze(-1)  # B × C

    with torch.no_grad():
        forward_logprobs()
        t, c = time.perf_counter(), time.process_time()
        for _ in range(a.steps):
            forward_logprobs()
        s = (time.perf_counter() - t) / a.steps
        cs = (time.process_time() - c) / a.steps
    report("score (forward) tokens/s", tokens_per_step / s, "tok/s")
    report("score (forward) cpu s (all threads)", cs, "s")

    def step():
        lp = forward_logprobs()
        loss = -(adv * lp.mean(-1)).sum()
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    model.train()
    step()
    t, c = time.perf_counter(), time.process_time()
    for _ in range(a.steps):
        step()
    s = (time.perf_counter() - t) / a.steps
    report("train step s", s, "s")
    report("train step cpu s (all threads)", (time.process_time() - c) / a.steps, "s")
    report("train steps/s", 1 / s, "steps/s")
    report("train tokens/s", tokens_per_step / s, "tok/s")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    report("peak rss (load + step) MiB", peak, "MiB")
    report("peak step memory over load MiB", peak - rss_load, "MiB")
    print(json.dumps(figures))


if __name__ == "__main__":
    sys.exit(main())
