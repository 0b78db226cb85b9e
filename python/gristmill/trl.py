"""In-run credit for a language model trained by TRL's `GRPOTrainer`.

Two things:

* `reward_functions(env)`: one TRL reward function per gristmill channel, named after the
  piece, so TRL logs each piece's mean and std by name. All of them share one scoring call
  per batch (the Rust scorer scores every channel at once).
* `CreditGRPOTrainer`: a `GRPOTrainer` whose every step is split by piece and fed to a
  gristmill `Ledger`:

  1. the rewards of the batch as gristmill scores them (float64, one column per channel);
  2. per-sample, per-channel advantages `A[s, c]` by gristmill's exact split (their sum
     over channels is the advantage TRL trains on);
  3. per-channel gradients of TRL's own loss: with one policy iteration per generation
     (`num_iterations = 1`) and no KL term (`beta = 0`) the loss is linear in the
     advantages, `L = Σ_s A_s ℓ_s(θ)`, so one forward pass gives `ℓ = ∂L/∂A` and one
     backward pass per channel gives `g_c = ∇_θ Σ_s A[s, c] ℓ_s`; `Σ_c g_c` is TRL's gradient;
  4. the real step by gristmill's split optimizer (AdamW: the Owen split of Adam's update
     over the channels, exact and bounded, plus decoupled weight decay as its own row),
     applied to a float64 master copy of the trainable parameters; TRL's gradient clipping
     and learning-rate schedule act on it as usual (clipping scales every channel alike);
  5. the credit of each channel for the step, `Δθ_c · (∇M(θ_t) + ∇M(θ_{t+1})) / 2`
     (trapezoid rule on the straight step), the observed `ΔM` and the residual, into the
     ledger. `M` is a `GoldLogLikelihood` (teacher-forced mean log-likelihood of the gold
     answers of a fixed held-out suite: deterministic, so its change has no standard error)
     or any object with the same `value_and_grad` method.

  Optionally (`influence=True`) the per-sample influence on `M`, `I_s = −∇ℓ_s · ∇M`
  (one extra backward pass per sample), is logged; `Σ_s A[s, c] I_s` is channel
  `c`'s first-order credit under plain gradient ascent.

Extra optimizer memory: Adam's split keeps two moments per coalition of channels that
touched a coordinate: at most `2 · 2^C` float64 values per trainable parameter (C channels).
With LoRA that is small (SmolLM2-135M, rank 8 on q and v: 460,800 parameters, C = 4:
~118 MB); for full fine-tuning it is `2^C · 16` bytes per parameter, which is why the split
is meant for adapters (see docs/trl.md).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from gristmill import Environment, Ledger, ScoringError, SplitOptimizer, Task, group_advantages

try:
    from trl import GRPOTrainer
except ImportError as e:  # pragma: no cover - import guard
    raise ImportError("gristmill.trl needs TRL ≥ 1.0: pip install 'gristmill[trl]'") from e

__all__ = [
    "CreditGRPOTrainer",
    "GoldLogLikelihood",
    "completion_text",
    "reward_functions",
    "train_dataset",
]

#: TRL loss types whose loss is linear in the advantages at `num_iterations = 1`.
LINEAR_LOSSES = ("grpo", "bnpo", "dr_grpo", "dapo", "luspo", "cispo")


def completion_text(completion: Any) -> str:
    """The text of a TRL completion: a string, or a list of chat messages (their contents
    joined)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list):
        return "".join(str(m.get("content", "")) for m in completion if isinstance(m, dict))
    raise ScoringError(f"a completion is a string or a list of messages, not {type(completion).__name__}")


def train_dataset(env: Environment, count: int, step: int = 0, conversational: bool = True) -> Any:
    """A `datasets.Dataset` of `count` training tasks of `env` (slots of one keyed step):
    `prompt` (chat messages, or text) and `task_key`, which TRL hands to the reward
    functions."""
    from datasets import Dataset

    tasks = env.sample(step, count)
    return Dataset.from_list([{"prompt": t.messages if conversational else t.prompt, "task_key": t.key} for t in tasks])


class _BatchScorer:
    """Scores a batch once for all channels; each channel's reward function reads its column.

    Every response gets its own score randomness (a noisy verifier's flips, a random
    control's draws): the `k`-th response in the batch to task key `t-…-i` is scored with
    sample index `step · 2³² + i · G + k` (`G` the group size, `step` the trainer's global
    step when a trainer drives it), the engine's `b · G + g` convention offset by the step.
    Without it the `G` responses to one prompt would share one draw, and a random reward
    would be constant within every group, so it would carry no advantage at all."""

    def __init__(self, env: Environment, group_size: int = 1 << 16):
        self.env = env
        self.group_size = group_size
        self.step = 0
        self._key: tuple[object, ...] | None = None
        self._matrix: np.ndarray | None = None

    def samples(self, keys: Sequence[str]) -> list[int]:
        seen: dict[str, int] = {}
        out = []
        for k in keys:
            occurrence = seen.get(k, 0)
            seen[k] = occurrence + 1
            if occurrence >= self.group_size:
                raise ScoringError(
                    f"task `{k}` appears {occurrence + 1} times in one batch; the group size is {self.group_size}"
                )
            index = int(k.rsplit("-", 1)[-1])
            out.append((self.step << 32) + index * self.group_size + occurrence)
        return out

    def matrix(self, keys: Sequence[str], completions: Sequence[Any]) -> np.ndarray:
        texts = tuple(completion_text(c) for c in completions)
        key = (self.step, tuple(keys), texts)
        if key != self._key or self._matrix is None:
            self._matrix = self.env.score(list(keys), list(texts), self.samples(keys)).rewards
            self._key = key
        return self._matrix


def reward_functions(env: Environment, scorer: _BatchScorer | None = None) -> list[Callable[..., list[float]]]:
    """One TRL reward function per channel of `env`, named after its piece. Each takes TRL's
    `prompts`, `completions` and the dataset's `task_key` column."""
    scorer = scorer or _BatchScorer(env)
    fns = []
    for c, name in enumerate(env.channels):

        def fn(
            prompts: Any = None, completions: Any = None, task_key: Any = None, _c: int = c, **_: Any
        ) -> list[float]:
            if task_key is None:
                raise ScoringError("gristmill reward functions need the dataset's `task_key` column")
            return [float(x) for x in scorer.matrix(task_key, completions)[:, _c]]

        fn.__name__ = fn.__qualname__ = name
        fns.append(fn)
    return fns


def _flat(tensors: Sequence[torch.Tensor | None], params: Sequence[torch.Tensor]) -> np.ndarray:
    return np.concatenate(
        [
            (torch.zeros_like(p) if t is None else t).detach().reshape(-1).to(torch.float64).cpu().numpy()
            for t, p in zip(tensors, params, strict=True)
        ]
    )


def _unflat(flat: np.ndarray, params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    out, k = [], 0
    for p in params:
        n = p.numel()
        out.append(torch.from_numpy(flat[k : k + n].copy()).reshape(p.shape))
        k += n
    return out


class GoldLogLikelihood:
    """`M(θ)`: the mean over held-out tasks of the mean per-token log-likelihood of the gold
    completion `answer(task)` after the prompt (chat template, generation prompt added).
    Deterministic, so `ΔM` has no standard error and `∇M` is its exact gradient (backprop).

    With `precision="float64"` (the default) `M` and `∇M` are evaluated on a float64 copy of
    the model holding the optimizer's float64 master parameters: in float32 the rounding of
    `M` as a function of `θ` is ~1e-5 on a tiny model, larger than a small step's `ΔM`, and
    would land in the residual. The copy costs 8 bytes per model parameter."""

    def __init__(
        self,
        tokenizer: Any,
        tasks: Sequence[Task],
        answer: Callable[[Task], str] = lambda t: t.gold,
        batch_size: int = 16,
        precision: str = "float64",
    ):
        if precision not in ("float64", "model"):
            raise ValueError(f"precision `{precision}` is neither `float64` nor `model`")
        self.precision = precision
        self._shadow: Any = None
        if not tasks:
            raise ValueError("GoldLogLikelihood needs at least one held-out task")
        self.items: list[tuple[list[int], list[int]]] = []
        for t in tasks:
            prompt = tokenizer.apply_chat_template(t.messages, add_generation_prompt=True, tokenize=False)
            p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
            a_ids = tokenizer(answer(t), add_special_tokens=False)["input_ids"]
            if not a_ids:
                raise ValueError(f"task `{t.key}`: its gold answer tokenizes to nothing")
            self.items.append((list(p_ids), list(a_ids)))
        self.pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.batch_size = batch_size

    def value_and_grad(
        self, model: Any, params: Sequence[torch.Tensor], master: np.ndarray | None = None
    ) -> tuple[float, np.ndarray]:
        """`(M, ∇M)` at the model's parameters, or at `master` (the flat float64 values of
        `params`) when given (`∇M` flat over `params`, float64)."""
        if self.precision == "float64":
            if self._shadow is None:
                self._shadow = copy.deepcopy(model).to(torch.float64)
                # Trainers patch `forward` on the instance (TRL's fused log-prob head, Accelerate's
                # autocast); a copied patch still closes over the live model, so the copy would
                # run the float32 model. The class's own forward is what the copy must run.
                for module in self._shadow.modules():
                    module.__dict__.pop("forward", None)
            shadow_params = [
                p for _, p in sorted(self._shadow.named_parameters(), key=lambda kv: kv[0]) if p.requires_grad
            ]
            values = master if master is not None else _flat([p.data for p in params], params)
            with torch.no_grad():
                for p, x in zip(shadow_params, _unflat(values, shadow_params), strict=True):
                    p.copy_(x)
            model, params = self._shadow, shadow_params
        total = 0.0
        grad = np.zeros(sum(p.numel() for p in params))
        n = len(self.items)
        with torch.enable_grad():
            for start in range(0, n, self.batch_size):
                chunk = self.items[start : start + self.batch_size]
                width = max(len(p) + len(a) for p, a in chunk)
                ids = torch.full((len(chunk), width), self.pad, dtype=torch.long)
                mask = torch.zeros((len(chunk), width), dtype=torch.long)
                target = torch.zeros((len(chunk), width), dtype=torch.bool)
                for i, (p, a) in enumerate(chunk):
                    seq = p + a
                    ids[i, : len(seq)] = torch.tensor(seq)
                    mask[i, : len(seq)] = 1
                    target[i, len(p) : len(seq)] = True
                logits = model(input_ids=ids, attention_mask=mask).logits[:, :-1]
                if logits.dtype != torch.float64:
                    logits = logits.float()
                logp = torch.log_softmax(logits, dim=-1).gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
                tmask = target[:, 1:].to(logp.dtype)
                per_item = (logp * tmask).sum(1) / tmask.sum(1)
                part = per_item.sum() / n
                g = torch.autograd.grad(part, list(params), allow_unused=True)
                grad += _flat(g, params)
                total += float(per_item.detach().to(torch.float64).sum()) / n
        return total, grad


class _SplitTorchOptimizer(torch.optim.Optimizer):
    """The torch face of gristmill's split optimizer: `step()` takes the per-channel
    gradients the trainer stashed, applies the real step to a float64 master copy of the
    parameters and reports the shares to the trainer's credit."""

    def __init__(
        self,
        trainer: CreditGRPOTrainer,
        params: list[torch.Tensor],
        lr: float,
        betas: tuple[float, float],
        eps: float,
        weight_decay: float,
        kind: str,
    ):
        super().__init__(params, {"lr": lr})
        self.trainer = trainer
        self.params = params
        self.weight_decay = weight_decay
        self.length = sum(p.numel() for p in params)
        self.split = SplitOptimizer(
            kind, lr, len(trainer.channels), 1, self.length, betas[0], betas[1], eps, weight_decay
        )
        self.master = _flat([p.data for p in params], params)

    @torch.no_grad()
    def step(self, closure: Any = None) -> None:  # type: ignore[override]
        cells = self.trainer._pending_grads
        if cells is None:
            raise RuntimeError("CreditGRPOTrainer: optimizer.step() without a credit-split training_step")
        self.trainer._pending_grads = None
        total = np.sum([c for c in cells if c is not None], axis=0) if any(c is not None for c in cells) else None
        # TRL's clipping (and anything else that rescaled .grad) is one scalar on the total.
        scale = 1.0
        if total is not None:
            seen = _flat([p.grad for p in self.params], self.params)
            denom = float(total @ total)
            scale = float(seen @ total) / denom if denom > 0 else 1.0
        ascent = [None if c is None else -scale * c for c in cells]
        self.last_ascent = ascent
        lr = float(self.param_groups[0]["lr"])
        before = self.master.copy()
        st = self.split.step(ascent, params=before if self.weight_decay > 0 else None, lr=lr)
        self.master = before + st.real
        for p, new in zip(self.params, _unflat(self.master, self.params), strict=True):
            p.data.copy_(new.to(p.dtype))
        self.trainer._after_step(st, scale)

    def state_dict(self) -> dict[str, Any]:
        return {
            "split": self.split.to_json(),
            "master": self.master.tolist(),
            "param_groups": [{"lr": g["lr"]} for g in self.param_groups],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.split = SplitOptimizer.from_json(state["split"])
        self.master = np.asarray(state["master"], dtype=np.float64)
        for g, s in zip(self.param_groups, state["param_groups"], strict=True):
            g["lr"] = s["lr"]


class CreditGRPOTrainer(GRPOTrainer):
    """`GRPOTrainer` with per-piece in-run credit (see the module documentation).

    `env` supplies the pieces (its channels, weights and scores); `metric` the held-out
    gold metric; `ledger_db` the run store the ledger is kept in (in memory when `None`).
    `normalization` is gristmill's (`shared` is GRPO's). Refuses settings under which the
    loss is not linear in the advantages.
    """

    def __init__(
        self,
        *args: Any,
        env: Environment,
        metric: GoldLogLikelihood,
        ledger_db: str | None = None,
        resume_run: int | None = None,
        normalization: str = "shared",
        influence: bool = False,
        **kwargs: Any,
    ):
        self.gm_env = env
        self.channels = env.channels
        self._scorer = _BatchScorer(env)
        kwargs.setdefault("reward_funcs", reward_functions(env, self._scorer))
        super().__init__(*args, **kwargs)
        a = self.args
        problems = []
        if self.beta != 0.0:
            problems.append(f"beta = {self.beta} (a KL term): use beta = 0")
        if self.num_iterations != 1:
            problems.append(f"num_iterations = {self.num_iterations}: use 1")
        if self.loss_type not in LINEAR_LOSSES:
            linear = ", ".join(LINEAR_LOSSES)
            problems.append(f"loss_type `{self.loss_type}` is not linear in the advantages ({linear})")
        if a.gradient_accumulation_steps != 1 or a.steps_per_generation != 1:
            problems.append("gradient_accumulation_steps and steps_per_generation must be 1")
        if a.optim not in ("adamw_torch", "adamw_torch_fused", "sgd"):
            problems.append(f"optim `{a.optim}`: the split covers AdamW and SGD")
        if len(self.reward_funcs) != len(self.channels):
            problems.append("reward_funcs must be gristmill.trl.reward_functions(env)")
        if problems:
            raise ValueError("CreditGRPOTrainer: " + "; ".join(problems))
        self.metric = metric
        self.normalization = normalization
        self.influence = influence
        self.rows = [*self.channels, *(["weight_decay"] if a.weight_decay > 0 else [])]
        if resume_run is not None:
            if ledger_db is None:
                raise ValueError("resume_run needs the ledger_db it was recorded in")
            self.ledger = Ledger.resume(ledger_db, resume_run)
        else:
            self.ledger = Ledger.create(
                env,
                self.rows,
                steps=int(a.max_steps if a.max_steps > 0 else 0),
                db=ledger_db,
                trainer="trl",
                config={
                    "learning_rate": a.learning_rate,
                    "weight_decay": a.weight_decay,
                    "loss_type": self.loss_type,
                    "num_generations": self.num_generations,
                    "normalization": normalization,
                    "metric": type(metric).__name__,
                },
            )
        self._scorer.group_size = self.num_generations
        self._pending_grads: list[np.ndarray | None] | None = None
        self._metric_now: tuple[float, np.ndarray] | None = None
        self._gm_rewards: np.ndarray | None = None
        self.history: list[dict[str, Any]] = []

    # -- parameters and optimizer ------------------------------------------------------------

    def trainable(self) -> list[torch.Tensor]:
        """The trainable parameters, in a fixed order (the flat vector's)."""
        return [p for _, p in sorted(self.model.named_parameters(), key=lambda kv: kv[0]) if p.requires_grad]

    def create_optimizer(self, model: Any = None) -> torch.optim.Optimizer:
        if self.optimizer is None:
            a = self.args
            kind = "sgd" if a.optim == "sgd" else "adam"
            self.optimizer = _SplitTorchOptimizer(
                self,
                self.trainable(),
                a.learning_rate,
                (a.adam_beta1, a.adam_beta2),
                a.adam_epsilon,
                a.weight_decay if kind == "adam" else 0.0,
                kind,
            )
            # Accelerate wraps the optimizer; the trainer talks to the split one directly.
            self._split_opt = self.optimizer
        return self.optimizer

    # -- rewards and advantages --------------------------------------------------------------

    def _calculate_rewards(self, inputs: Any, prompts: Any, completions: Any, completion_ids_list: Any) -> Any:
        self._scorer.step = int(self.state.global_step)
        out = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        keys = [x["task_key"] for x in inputs]
        self._gm_rewards = self._scorer.matrix(keys, completions).copy()
        return out

    def _generate_and_score_completions(self, inputs: Any) -> Any:
        out = super()._generate_and_score_completions(inputs)
        if not self.model.training:
            return out
        rewards = self._gm_rewards
        assert rewards is not None and rewards.shape[0] == out["advantages"].shape[0]
        adv, _, _ = group_advantages(rewards, self.gm_env.weights, self.num_generations, self.normalization)
        device = out["advantages"].device
        out["gm_advantages"] = torch.from_numpy(adv.copy()).to(device)
        out["advantages"] = torch.from_numpy(adv.sum(1)).to(device=device, dtype=out["advantages"].dtype)
        return out

    # -- the split step ----------------------------------------------------------------------

    def training_step(self, model: Any, inputs: Any, num_items_in_batch: Any = None) -> torch.Tensor:
        model.train()
        inputs = self._prepare_inputs(inputs)
        params = self.trainable()
        if self._metric_now is None:
            self._metric_now = self.metric.value_and_grad(model, params, self._split_opt.master)
        channel_adv = inputs["gm_advantages"].to(torch.float32)
        a = inputs["advantages"].detach().clone().requires_grad_(True)
        fed = dict(inputs)
        fed["advantages"] = a
        with self.compute_loss_context_manager():
            loss = self.compute_loss(model, fed)
        (ell,) = torch.autograd.grad(loss, a, create_graph=True)
        cells: list[np.ndarray | None] = []
        for c in range(len(self.channels)):
            col = channel_adv[:, c]
            if not bool(col.any()):
                cells.append(None)
                continue
            g = torch.autograd.grad(ell, params, grad_outputs=col, retain_graph=True, allow_unused=True)
            cells.append(_flat(g, params))
        if self.influence:
            self._influence(ell, params, channel_adv)
        self._pending_grads = cells
        total = [c for c in cells if c is not None]
        flat_total = np.sum(total, axis=0) if total else np.zeros(sum(p.numel() for p in params))
        for p, g in zip(params, _unflat(flat_total, params), strict=True):
            p.grad = g.to(dtype=p.dtype, device=p.device)
        self._step += 1
        return loss.detach()

    def _influence(self, ell: torch.Tensor, params: list[torch.Tensor], channel_adv: torch.Tensor) -> None:
        """Per-sample influence on `M`, `I_s = −∇ℓ_s · ∇M`, one backward pass per sample
        through the graph the step already built (exact; `n` backward passes, so optional).
        Forward-mode AD and the double-backward trick both fail on TRL's fused log-prob
        kernel, whose backward is not differentiable."""
        assert self._metric_now is not None
        grad_m = self._metric_now[1]
        influence = np.zeros(ell.shape[0])
        for s in range(ell.shape[0]):
            g = torch.autograd.grad(ell[s], params, retain_graph=True, allow_unused=True)
            influence[s] = -float(_flat(g, params) @ grad_m)
        self._last_influence = influence
        self._last_channel_adv = channel_adv.detach().to(torch.float64).cpu().numpy()

    def _after_step(self, st: Any, scale: float) -> None:
        """Credit of the step just applied: trapezoid rule on `∇M` at both ends."""
        assert self._metric_now is not None
        m_before, g_before = self._metric_now
        m_after, g_after = self.metric.value_and_grad(self.model, self.trainable(), self._split_opt.master)
        g_mid = 0.5 * (g_before + g_after)
        shares = list(st.cells)
        if "weight_decay" in self.rows:
            shares.append(st.decay if st.decay is not None else np.zeros_like(st.real))
        credit = [float(s @ g_mid) for s in shares]
        step = self.ledger.next_step
        record = self.ledger.observe(step, m_before, m_after, credit)
        self._metric_now = (m_after, g_after)
        entry = {
            "step": step,
            "metric_before": m_before,
            "metric_after": m_after,
            "credit": dict(zip(self.rows, credit, strict=True)),
            "residual": record["residual"],
            "clip_scale": scale,
            # Scalars only: a step's parameter-sized vectors (C + 1 of them, 15 MB for SmolLM2's
            # LoRA) kept per step would grow the history by that much every step.
            "split_error": float(np.max(np.abs(np.sum(shares, axis=0) - st.real))) if shares else 0.0,
            "real_step_max": float(np.abs(st.real).max()) if st.real.size else 0.0,
        }
        ascent = self._split_opt.last_ascent
        entry["first_order"] = [0.0 if g is None else float(g @ g_before) for g in ascent]
        if getattr(self, "_last_influence", None) is not None:
            entry["influence"] = self._last_influence
            entry["channel_advantages"] = self._last_channel_adv
            self._last_influence = None
        self.history.append(entry)
        for row, value in zip(self.rows, credit, strict=True):
            self._metrics["train"][f"credit/{row}"].append(value)
        self._metrics["train"]["credit/residual"].append(record["residual"])
        self._metrics["train"]["gold_metric"].append(m_after)
        if not math.isfinite(m_after):
            raise ScoringError(f"step {step}: the gold metric is {m_after}")

    def _save_checkpoint(self, model: Any, trial: Any) -> Any:
        self.ledger.checkpoint()
        return super()._save_checkpoint(model, trial)

    def credit_report(self) -> dict[str, Any]:
        """The ledger's report as it stands."""
        return self.ledger.report()

    def finish(self) -> dict[str, Any]:
        """Stores the credit table in the run store and finishes the run."""
        return self.ledger.finish()
