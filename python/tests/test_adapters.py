"""Adapters: a reasoning-gym dataset as a source with its own scorer as a piece, TRL-style
reward functions and verifiers rubrics as pieces."""

from __future__ import annotations

import numpy as np
import pytest

import gristmill
from gristmill.adapters import reasoning_gym_environment, rubric_pieces, trl_reward_piece


class FakeGym(list):
    """A reasoning-gym dataset's interface: entries with question/answer/metadata, score_answer."""

    def score_answer(self, answer: str | None, entry: dict) -> float:
        return 1.0 if answer is not None and answer.strip().endswith(str(entry["answer"])) else 0.0


def _gym() -> FakeGym:
    return FakeGym(
        {"question": f"What is {a} + {b}?", "answer": str(a + b), "metadata": {"a": a, "b": b}}
        for a in range(8)
        for b in range(8)
    )


def test_a_reasoning_gym_dataset_is_a_keyed_source_scored_by_its_own_scorer(tmp_path) -> None:
    gym = _gym()
    env = reasoning_gym_environment(gym, tmp_path / "rg.jsonl", eval_size=8)
    assert env.channels == ["match", "score_answer"]
    tasks = env.sample(step=0, count=12)
    assert [t.key for t in tasks] == [t.key for t in env.sample(step=0, count=12)]
    by_id = {str(i): e for i, e in enumerate(gym)}
    for t in tasks:
        assert t.prompt == by_id[t.row_id]["question"]
    right = env.score(tasks, [f"The answer is {by_id[t.row_id]['answer']}" for t in tasks])
    wrong = env.score(tasks, ["no idea"] * len(tasks))
    np.testing.assert_array_equal(right["score_answer"], np.ones(len(tasks)))
    np.testing.assert_array_equal(wrong["score_answer"], np.zeros(len(tasks)))
    with pytest.raises(gristmill.SpecError, match="score_answer"):
        reasoning_gym_environment([{"question": "q", "answer": "a"}], tmp_path / "x.jsonl")


def test_real_reasoning_gym_when_installed(tmp_path) -> None:
    rg = pytest.importorskip("reasoning_gym")
    data = rg.create_dataset("basic_arithmetic", size=40, seed=3)
    env = reasoning_gym_environment(data, tmp_path / "rg.jsonl", eval_size=8)
    tasks = env.sample(step=1, count=10)
    entries = {str(i): data[i] for i in range(len(data))}
    answers = [entries[t.row_id]["answer"] for t in tasks]
    m = env.score(tasks, answers)
    want = [data.score_answer(answer=a, entry=entries[t.row_id]) for a, t in zip(answers, tasks, strict=True)]
    np.testing.assert_array_equal(m["score_answer"], want)
    assert min(want) == 1.0


def test_trl_reward_functions_and_rubrics_become_pieces(arith_spec: str) -> None:
    def brevity(prompts, completions, **kwargs):
        assert len(kwargs["task_key"]) == len(completions)
        return [1.0 / (1 + len(c)) for c in completions]

    class Rubric:
        def correct(self, completion, answer):
            return float(completion.strip() == answer)

        async def polite(self, completion, **kwargs):
            return 0.5 if "please" in completion else 0.0

        def __init__(self):
            self.funcs = [self.correct, self.polite]
            self.weights = [1.0, 0.2]

    env = gristmill.Environment.from_toml(arith_spec).with_pieces(
        trl_reward_piece(brevity, weight=0.1), *rubric_pieces(Rubric(), prefix="rubric/")
    )
    assert env.channels[-3:] == ["brevity", "rubric/correct", "rubric/polite"]
    np.testing.assert_array_equal(env.weights[-3:], [0.1, 1.0, 0.2])
    tasks = env.sample(step=0, count=2)
    m = env.score(tasks, [tasks[0].gold, "please"])
    np.testing.assert_array_equal(m["brevity"], [1.0 / (1 + len(tasks[0].gold)), 1.0 / 7])
    np.testing.assert_array_equal(m["rubric/correct"], [1.0, 0.0])
    np.testing.assert_array_equal(m["rubric/polite"], [0.0, 0.5])

    def none_reward(prompts, completions, **kwargs):
        return [None for _ in completions]

    with pytest.raises(gristmill.ScoringError, match="returned None"):
        gristmill.Environment.from_toml(arith_spec).with_pieces(trl_reward_piece(none_reward)).score(tasks, ["a", "b"])
