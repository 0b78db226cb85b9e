"""`gristmill.trl` on a tiny random llama built in code: every step's split sums to the real
update, the ledger balances, a zero-weight piece gets zero credit, twin pieces equal credit,
and the reward functions are the Rust scorer's numbers."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("trl")

import tiny  # noqa: E402
from trl import GRPOConfig  # noqa: E402

import gristmill  # noqa: E402
from gristmill.trl import CreditGRPOTrainer, GoldLogLikelihood, reward_functions, train_dataset  # noqa: E402


def _length(ts, rs):
    return [min(len(r), 40) / 40 for r in rs]


def _env(spec: str) -> gristmill.Environment:
    return gristmill.Environment.from_toml(spec).with_pieces(
        gristmill.PythonPiece("length", _length, 1.0),
        gristmill.PythonPiece("length_twin", _length, 1.0),
        gristmill.PythonPiece("digit_count", lambda ts, rs: [sum(c.isdigit() for c in r) / 5 for r in rs], 0.0),
    )


def _train(env, tmp_path, seed: int, lr: float, steps: int = 3, **kw):
    torch.manual_seed(seed)
    tok = tiny.tokenizer()
    model = tiny.model(tok, seed=seed)
    args = GRPOConfig(
        output_dir=str(tmp_path / f"out-{seed}"),
        per_device_train_batch_size=4,
        num_generations=4,
        max_completion_length=8,
        max_steps=steps,
        learning_rate=lr,
        report_to=[],
        save_strategy="no",
        use_cpu=True,
        seed=seed,
        beta=0.0,
        weight_decay=0.01,
        logging_steps=1,
    )
    metric = GoldLogLikelihood(tok, env.eval_tasks()[:8])
    trainer = CreditGRPOTrainer(
        model=model, args=args, processing_class=tok, train_dataset=train_dataset(env, 16), env=env, metric=metric, **kw
    )
    trainer.train()
    return trainer


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_every_step_splits_exactly_and_the_ledger_balances(tmp_path, arith_spec: str, seed: int) -> None:
    env = _env(arith_spec)
    tr = _train(env, tmp_path, seed, lr=1e-3, influence=True)
    assert len(tr.history) == 3
    rows = tr.rows
    assert rows == [*env.channels, "weight_decay"]
    for h in tr.history:
        # The shares (channels + decay) sum to the step applied: Owen's split is exact in exact
        # arithmetic; the float sum of ≤ 2^9 coalition terms of size ~lr is within 1e-15 here.
        assert h["split_error"] <= 1e-15 + 1e-12 * h["real_step_max"], h["split_error"]
        credit = h["credit"]
        assert credit["digit_count"] == 0.0  # zero weight: zero advantage, zero share, zero credit
        assert credit["length"] == credit["length_twin"]  # identical pieces: bit-identical shares
        # Pieces constant on a random model's output carry no advantage, hence no credit.
        assert credit["gold"] == 0.0
        # Trapezoid rule on a step of size ~lr: the residual is third order, so 1e-3·|ΔM| (+1e-9
        # for float64 rounding of M) fails if a share or ∇M were wrong (their errors are first
        # order). It passes on these seeds and spec; on trl-addition.toml it is near the edge
        # (docs/trl.md, Tests, gives the command and the ratios).
        dm = h["metric_after"] - h["metric_before"]
        assert abs(h["residual"]) <= 1e-3 * abs(dm) + 1e-9, (h["residual"], dm)
        # Per-sample influence: Σ_s A[s,c] I_s is channel c's first-order credit g_c·∇M in exact
        # arithmetic. Measured: 0.2%–4% apart on seeds 1–3, far above float32 rounding: the
        # backward through TRL's loss is not linear in its incoming gradient (backward(0.3·v) +
        # backward(0.7·v) is 0.4% off backward(v); docs/trl.md). So influence is a diagnostic,
        # checked at 10%: that still fails on a sign, scale or sample-order error.
        infl, adv = h["influence"], h["channel_advantages"]
        for c, first in enumerate(h["first_order"]):
            assert float(adv[:, c] @ infl) == pytest.approx(first, rel=0.1, abs=1e-10), c
    # The live float32 model holds the float64 master, rounded.
    params = tr.trainable()
    master = tr._split_opt.master
    live = np.concatenate([p.detach().double().reshape(-1).numpy() for p in params])
    np.testing.assert_array_equal(live, master.astype(np.float32).astype(np.float64))
    report = tr.finish()
    c = report["credit"]
    assert c["rows"] == rows
    # Ledger efficiency: Σ credit + residual = ΔM, a sum of ~12 doubles.
    assert sum(c["cells"]) + c["residual"] == pytest.approx(c["delta_metric"], abs=1e-15)
    total_dm = tr.history[-1]["metric_after"] - tr.history[0]["metric_before"]
    assert c["delta_metric"] == pytest.approx(total_dm, abs=1e-14)


def test_reward_functions_are_the_rust_scorer(arith_spec: str) -> None:
    env = _env(arith_spec)
    tasks = env.sample(0, 6)
    completions = [[{"role": "assistant", "content": t.gold if i % 2 else "Answer: 1"}] for i, t in enumerate(tasks)]
    keys = [t.key for t in tasks]
    # Each response's own score stream: sample index = task index · G + occurrence (G = 2^16
    # without a trainer), as the scorer documents.
    samples = [int(k.rsplit("-", 1)[-1]) * (1 << 16) for k in keys]
    want = env.score(keys, [c[0]["content"] for c in completions], samples).rewards
    fns = reward_functions(env)
    assert [f.__name__ for f in fns] == env.channels
    for c, f in enumerate(fns):
        got = f(prompts=[t.messages for t in tasks], completions=completions, task_key=keys)
        assert got == [float(x) for x in want[:, c]]  # the same doubles
    with pytest.raises(gristmill.ScoringError, match="task_key"):
        fns[0](prompts=[], completions=[])


def test_each_response_of_a_group_gets_its_own_score_randomness(trl_spec: str) -> None:
    env = gristmill.Environment.from_toml(trl_spec)
    task = env.sample(0, 1)[0]
    group = [task.key] * 8
    fns = dict(zip(env.channels, reward_functions(env), strict=True))
    control = fns["control"](completions=["Answer: 1"] * 8, task_key=group)
    # The random-reward control must vary within a group of identical responses; one shared
    # draw per prompt would make its advantage (and its credit) identically zero.
    assert len(set(control)) == 8, control
    again = reward_functions(env)[env.channels.index("control")](completions=["Answer: 1"] * 8, task_key=group)
    assert again == control  # and it is still a function of (key, occurrence): replayable


def test_settings_under_which_the_loss_is_not_linear_are_refused(tmp_path, arith_spec: str) -> None:
    env = _env(arith_spec)
    tok = tiny.tokenizer()
    args = GRPOConfig(
        output_dir=str(tmp_path),
        per_device_train_batch_size=4,
        num_generations=4,
        max_steps=1,
        report_to=[],
        use_cpu=True,
        beta=0.1,
    )
    with pytest.raises(ValueError, match=r"beta = 0\.1"):
        CreditGRPOTrainer(
            model=tiny.model(tok),
            args=args,
            processing_class=tok,
            train_dataset=train_dataset(env, 4),
            env=env,
            metric=GoldLogLikelihood(tok, env.eval_tasks()[:2]),
        )
