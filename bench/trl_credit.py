"""TRL with gristmill's per-piece credit on a real model, and what the credit costs.

    python bench/trl_credit.py --model ~/.cache/gristmill/models/SmolLM2-135M-Instruct.Q4_1.gguf \
        --mode credit --steps 30 --db trl-runs.db --json credit.json
    python bench/trl_credit.py --model ... --mode credit --drop exact --steps 30 --json loo-exact.json
    python bench/trl_credit.py --model ... --mode cost --steps 6       # credit vs plain TRL steps
    python bench/trl_credit.py --model ... --mode metric               # M + ∇M time, float64 vs float32
    python bench/trl_credit.py --model tiny --mode linearity           # is TRL's backward linear?
    python bench/trl_credit.py --model tiny --steps 3 --lr 1e-4 --eval 8 --metric-precision model

`--model tiny` uses the tests' randomly initialised llama instead of a GGUF. The spec is
examples/trl-addition.toml (two-digit addition; exact verifier, format shaping, noisy verifier,
random-reward control). `--drop PIECE` sets that piece's weight to 0: the leave-one-out run.
`credit` mode prints the credit table (ΔM, residual) and stores it in the run store (`--db`);
`cost` runs the same steps with plain `GRPOTrainer` (TRL's AdamW, same reward functions) and
with `CreditGRPOTrainer` in one process and prints the median step-time ratio. `metric` times
one `GoldLogLikelihood.value_and_grad` in float64 and in the model's float32. `linearity`
trains one step and compares, on its batch, TRL's gradient of its loss with the sum of two
backward passes weighted 0.3·A and 0.7·A (and with one pass per sample): in exact arithmetic
all three are equal. `--metric-precision model` evaluates M in float32 (the residual then
carries M's rounding).
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import re
import statistics
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]


def load_model(spec: str, seed: int):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(seed)
    if spec == "tiny":
        sys.path.insert(0, str(ROOT / "python" / "tests"))
        import tiny

        tok = tiny.tokenizer()
        return tok, tiny.model(tok, seed=seed)
    d, f = os.path.split(os.path.abspath(os.path.expanduser(spec)))
    tok = AutoTokenizer.from_pretrained(d, gguf_file=f)
    model = AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32)
    model.hf_quantizer = None
    model.is_quantized = False
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    cfg = LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=["q_proj", "v_proj"], bias="none")
    return tok, get_peft_model(model, cfg)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--mode", choices=["credit", "cost", "metric", "linearity"], default="credit")
    ap.add_argument("--metric-precision", choices=["float64", "model"], default="float64")
    ap.add_argument("--spec", default=str(ROOT / "examples" / "trl-addition.toml"))
    ap.add_argument("--drop", default=None, help="piece whose weight is set to 0 (leave-one-out)")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--prompts", type=int, default=2, help="prompts per step")
    ap.add_argument("--generations", type=int, default=4)
    ap.add_argument("--completion", type=int, default=24)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--eval", type=int, default=32, help="held-out tasks in M")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--db", default=None)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()

    import numpy as np
    import torch
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    import gristmill
    from gristmill.trl import CreditGRPOTrainer, GoldLogLikelihood, reward_functions, train_dataset

    torch.set_num_threads(a.threads)
    text = pathlib.Path(a.spec).read_text()
    if a.drop:
        block = re.compile(
            r'(\[\[piece\]\]\nid = "' + re.escape(a.drop) + r'"\n(?:kind = [^\n]*\n))(weight = [^\n]*\n)?'
        )
        text, n = block.subn(lambda m: m.group(1) + "weight = 0.0\n", text)
        if n != 1:
            sys.exit(f"--drop {a.drop}: no such piece in {a.spec}")
    env = gristmill.Environment.from_toml(text, a.spec)

    class Timer(TrainerCallback):
        def __init__(self):
            self.times: list[float] = []

        def on_step_begin(self, args, state, control, **kw):
            self.t = time.perf_counter()

        def on_step_end(self, args, state, control, **kw):
            self.times.append(time.perf_counter() - self.t)

    def config(out: str) -> GRPOConfig:
        return GRPOConfig(
            output_dir=out,
            per_device_train_batch_size=a.prompts * a.generations,
            num_generations=a.generations,
            max_completion_length=a.completion,
            max_steps=a.steps,
            learning_rate=a.lr,
            lr_scheduler_type="constant",
            report_to=[],
            save_strategy="no",
            use_cpu=True,
            seed=a.seed,
            beta=0.0,
            logging_steps=1,
            weight_decay=0.0,
            disable_tqdm=not sys.stderr.isatty(),
        )

    dataset = train_dataset(env, 256)
    results: dict = {"model": a.model, "spec": a.spec, "drop": a.drop, "steps": a.steps, "lr": a.lr}

    def run(credit: bool) -> tuple[object, Timer]:
        tok, model = load_model(a.model, a.seed)
        timer = Timer()
        with tempfile.TemporaryDirectory() as out:
            if credit:
                metric = GoldLogLikelihood(tok, env.eval_tasks()[: a.eval], precision=a.metric_precision)
                tr = CreditGRPOTrainer(
                    model=model,
                    args=config(out),
                    processing_class=tok,
                    train_dataset=dataset,
                    env=env,
                    metric=metric,
                    ledger_db=a.db,
                    callbacks=[timer],
                )
            else:
                tr = GRPOTrainer(
                    model=model,
                    args=config(out),
                    processing_class=tok,
                    train_dataset=dataset,
                    reward_funcs=reward_functions(env),
                    callbacks=[timer],
                )
                tr.args.reward_weights = list(env.weights)
            tr.train()
        return tr, timer

    if a.mode == "metric":
        tok, model = load_model(a.model, a.seed)
        params = [p for _, p in sorted(model.named_parameters(), key=lambda kv: kv[0]) if p.requires_grad]
        for precision in ("float64", "model"):
            metric = GoldLogLikelihood(tok, env.eval_tasks()[: a.eval], precision=precision)
            metric.value_and_grad(model, params)  # the first call builds the float64 copy
            t = time.perf_counter()
            value, _ = metric.value_and_grad(model, params)
            secs = time.perf_counter() - t
            results[f"metric_{precision}_s"] = secs
            print(f"M and ∇M ({precision}, {a.eval} tasks)   {secs:.2f} s   M = {value:.9f}")
    elif a.mode == "linearity":
        from gristmill.trl import _flat

        tok, model = load_model(a.model, a.seed)
        with tempfile.TemporaryDirectory() as out:
            cfg = config(out)
            cfg.max_steps = 1
            tr = CreditGRPOTrainer(
                model=model,
                args=cfg,
                processing_class=tok,
                train_dataset=dataset,
                env=env,
                metric=GoldLogLikelihood(tok, env.eval_tasks()[:2]),
            )
            plain_loss = tr.compute_loss
            gaps: dict[str, float] = {}

            def probe(model, inputs, *args, **kw):
                loss = plain_loss(model, inputs, *args, **kw)
                adv = inputs["advantages"]
                if adv.requires_grad and not gaps:
                    params = tr.trainable()

                    def grad(out, weights=None):
                        g = torch.autograd.grad(out, params, grad_outputs=weights, retain_graph=True, allow_unused=True)
                        return _flat(g, params)

                    (ell,) = torch.autograd.grad(loss, adv, create_graph=True)
                    whole = grad(loss)
                    v = adv.detach()
                    gaps["scale"] = float(np.abs(whole).max())
                    gaps["one_pass_vs_trl"] = float(np.abs(grad(ell, v) - whole).max())
                    gaps["split_0.3_0.7_vs_trl"] = float(np.abs(grad(ell, 0.3 * v) + grad(ell, 0.7 * v) - whole).max())
                    per_sample = sum(float(v[s]) * grad(ell[s]) for s in range(len(v)))
                    gaps["per_sample_vs_trl"] = float(np.abs(per_sample - whole).max())
                return loss

            tr.compute_loss = probe
            tr.train()
        results.update(gaps)
        for k, v in gaps.items():
            print(f"{k:<24}{v:.3g}")
    elif a.mode == "cost":
        _, tp = run(False)
        _, tc = run(True)
        # The first step pays for lazy set-up (the float64 shadow, kernels): medians of the rest.
        mp, mc = statistics.median(tp.times[1:]), statistics.median(tc.times[1:])
        results.update(plain_step_s=mp, credit_step_s=mc, ratio=mc / mp, plain_times=tp.times, credit_times=tc.times)
        print(f"plain TRL step (median)   {mp:.3f} s")
        print(f"credit TRL step (median)  {mc:.3f} s")
        print(f"credit / plain            {mc / mp:.3f}x")
    else:
        tr, timer = run(True)
        report = tr.finish()
        c = report["credit"]
        print(f"{'row':<14}{'credit':>14}")
        for row, v in zip(c["rows"], c["cells"], strict=True):
            print(f"{row:<14}{v:>14.6f}")
        print(f"{'ΔM':<14}{c['delta_metric']:>14.6f}\n{'residual':<14}{c['residual']:>14.6f}")
        print(
            f"M before {tr.history[0]['metric_before']:.6f} after {report['gold_after']:.6f}; "
            f"max |step residual| {c['max_step_residual']:.3g}; run {report['run_id']}; "
            f"median step {statistics.median(timer.times):.2f} s"
        )
        gold = [h for h in tr.state.log_history if "rewards/exact/mean" in h]
        results.update(
            report=report,
            step_times=timer.times,
            exact_reward=[h["rewards/exact/mean"] for h in gold],
            per_step=[
                {k: h[k] for k in ("step", "metric_before", "metric_after", "credit", "residual")} for h in tr.history
            ],
        )
    if a.json:
        pathlib.Path(a.json).write_text(json.dumps(results, indent=1, default=float))


if __name__ == "__main__":
    main()
