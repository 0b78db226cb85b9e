"""The environment binding: keyed tasks, per-piece scores, Python pieces, and bad input."""

from __future__ import annotations

import numpy as np
import pytest

import gristmill
from gristmill import Environment, PythonPiece


def test_tasks_are_keyed_and_regenerate(arith_spec: str) -> None:
    env = Environment.from_toml(arith_spec)
    a = env.sample(step=3, count=6)
    b = env.sample(step=3, count=2, offset=4)
    assert [t.key for t in a[4:]] == [t.key for t in b]
    assert [t.prompt for t in a[4:]] == [t.prompt for t in b]
    assert a[0].key == f"t-{env.seed:x}-3-0"
    again = env.task(a[5].key)
    assert (again.prompt, again.gold, again.source) == (a[5].prompt, a[5].gold, a[5].source)
    other_seed = env.sample(step=3, count=6, seed=env.seed + 1)
    assert [t.prompt for t in other_seed] != [t.prompt for t in a]
    suite = env.eval_tasks()
    assert len(suite) == env.eval_size and suite[0].key == "e-0"
    assert suite[0].messages == [{"role": "user", "content": suite[0].prompt}]


def test_scores_are_one_column_per_piece(arith_spec: str) -> None:
    env = Environment.from_toml(arith_spec)
    tasks = env.sample(step=0, count=16)
    right = env.score(tasks, [t.gold for t in tasks])
    wrong = env.score(tasks, ["Answer: 123456789" for _ in tasks])
    assert right.rewards.shape == (16, len(env.channels))
    assert right.channels == env.channels == ["gold", "lenient", "noisy", "digits", "rm", "format"]
    np.testing.assert_array_equal(right["gold"], np.ones(16))
    np.testing.assert_array_equal(wrong["gold"], np.zeros(16))
    np.testing.assert_array_equal(env.gold(tasks, [t.gold for t in tasks]), np.ones(16))
    # Scoring is a function of (task, response, sample): the same call gives the same bits.
    np.testing.assert_array_equal(env.score(tasks, [t.gold for t in tasks]).rewards, right.rewards)
    # The combined reward weighs each column by its piece's weight in examples/arith.toml.
    spec_weights = {"gold": 1.0, "lenient": 0.5, "noisy": 0.5, "digits": 0.3, "rm": 0.5, "format": 0.1}
    by_hand = sum(right[c] * w for c, w in spec_weights.items())
    np.testing.assert_allclose(right.combined(), by_hand, rtol=1e-15, atol=1e-15)


def test_python_pieces_are_extra_channels(arith_spec: str) -> None:
    length = PythonPiece("length", lambda ts, rs: [len(r) / 10 for r in rs], weight=0.25)
    env = Environment.from_toml(arith_spec).with_pieces(length)
    tasks = env.sample(step=0, count=3)
    m = env.score(tasks, ["a", "bb", "Answer: 3"])
    assert m.channels[-1] == "length" and env.weights[-1] == 0.25
    np.testing.assert_array_equal(m["length"], [0.1, 0.2, 0.9])
    plain = Environment.from_toml(arith_spec).score(tasks, ["a", "bb", "Answer: 3"])
    np.testing.assert_array_equal(m.rewards[:, :-1], plain.rewards)


def test_bad_input_is_a_typed_error_naming_the_problem(arith_spec: str) -> None:
    env = Environment.from_toml(arith_spec)
    tasks = env.sample(step=0, count=2)
    with pytest.raises(gristmill.ShapeError, match="2 task keys but 1 responses"):
        env.score(tasks, ["x"])
    with pytest.raises(gristmill.TaskKeyError, match="is not a task key"):
        env.score(["nonsense"], ["x"])
    with pytest.raises(gristmill.TaskKeyError, match="the gold suite has 256 tasks"):
        env.task("e-99999")
    with pytest.raises(gristmill.ShapeError, match="limit"):
        env.sample(step=0, count=10**9)
    with pytest.raises(gristmill.SpecError, match="steps"):
        Environment.from_toml(arith_spec.replace("steps = 20", "steps = -3"), "bad.toml")
    with pytest.raises(gristmill.SpecError, match="cannot read spec"):
        Environment.load("/nonexistent/spec.toml")
    nan = PythonPiece("nan", lambda ts, rs: [float("nan")] * len(rs))
    with pytest.raises(gristmill.ScoringError, match=r"`nan` gave a non-finite reward nan to responses\[0\]"):
        env.with_pieces(nan).score(tasks, ["a", "b"])
    short = PythonPiece("short", lambda ts, rs: [1.0])
    with pytest.raises(gristmill.ScoringError, match="returned 1 rewards for 2 responses"):
        env.with_pieces(short).score(tasks, ["a", "b"])
    with pytest.raises(gristmill.SpecError, match="already has a channel"):
        env.with_pieces(PythonPiece("gold", lambda ts, rs: rs))
    for cls in (
        gristmill.ShapeError,
        gristmill.TaskKeyError,
        gristmill.SpecError,
        gristmill.ScoringError,
        gristmill.LedgerError,
        gristmill.StoreError,
    ):
        assert issubclass(cls, gristmill.GristmillError)


def _grpo(combined: np.ndarray, g: int) -> np.ndarray:
    """GRPO's advantage on the combined reward, written out independently (population σ, ε 1e-6)."""
    r = combined.reshape(-1, g)
    sd = r.std(axis=1, keepdims=True)
    return ((r - r.mean(axis=1, keepdims=True)) / (sd + 1e-6)).reshape(-1)


def test_group_advantages_split_grpo_exactly_by_channel() -> None:
    rng = np.random.default_rng(5)
    rewards = rng.integers(0, 3, size=(12, 3)).astype(np.float64) * 0.5
    weights = [1.0, 0.5, 0.0]
    adv, _, inv = gristmill.group_advantages(rewards, weights, group_size=4, normalization="shared")
    assert adv.shape == (12, 3) and inv.shape == (3, 3)
    # Σ_c A_c is GRPO's advantage of the combined reward, to rounding of a 3-term sum.
    np.testing.assert_allclose(adv.sum(axis=1), _grpo(rewards @ np.array(weights), 4), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(adv[:, 2], 0.0)  # a zero-weight channel moves nothing
    none, _, _ = gristmill.group_advantages(rewards, weights, 4, "none")
    means = rewards.reshape(3, 4, 3).mean(axis=1).repeat(4, axis=0)
    np.testing.assert_allclose(none, (rewards - means) * np.array(weights), rtol=0, atol=1e-15)
    with pytest.raises(gristmill.ShapeError, match="normalization `zscore`"):
        gristmill.group_advantages(rewards, weights, 4, "zscore")
    with pytest.raises(gristmill.ShapeError, match="not whole groups"):
        gristmill.group_advantages(rewards, weights, 5)
    bad = rewards.copy()
    bad[3, 1] = np.inf
    with pytest.raises(gristmill.ShapeError, match=r"rewards\[3\]\[1\] is inf"):
        gristmill.group_advantages(bad, weights, 4)
