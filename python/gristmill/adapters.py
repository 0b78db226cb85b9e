"""Bringing an existing environment to gristmill without rewriting it.

* `reasoning_gym_environment`: a reasoning-gym dataset as a gristmill task source (its rows
  exported once to JSON lines and read by gristmill's `dataset` source, so sampling is keyed
  and replayable like any other source) with its own `score_answer` as a piece.
* `trl_reward_piece`: a TRL-style reward function (`f(prompts, completions, **columns)`) as
  a gristmill piece.
* `rubric_pieces`: the reward functions of a `verifiers` rubric (or anything with `funcs`
  and `weights`, or `get_reward_funcs()` / `get_reward_weights()`) as one piece each.

Each becomes its own reward channel, so gristmill scores, splits and credits it separately.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import pathlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from gristmill import Environment, PythonPiece, SpecError, Task

__all__ = ["reasoning_gym_environment", "rubric_pieces", "trl_reward_piece"]


def _toml_str(text: str) -> str:
    return json.dumps(text)  # a JSON string literal is a valid TOML basic string


def reasoning_gym_environment(
    dataset: Iterable[dict[str, Any]],
    path: str | pathlib.Path,
    name: str = "reasoning-gym",
    seed: int = 0,
    eval_size: int = 32,
    extra_pieces: str = "",
    score_weight: float = 1.0,
) -> Environment:
    """An environment over a reasoning-gym dataset: its entries (`question`, `answer`,
    `metadata`) written to `path` as JSON lines, a `dataset` source over that file, and the
    dataset's `score_answer(answer, entry)` as the piece `score_answer` (weight
    `score_weight`). `extra_pieces` is more `[[piece]]` TOML (gristmill's own verifiers,
    shaping) for the same environment. The dataset must have `score_answer`."""
    score = getattr(dataset, "score_answer", None)
    if not callable(score):
        raise SpecError("a reasoning-gym dataset has a `score_answer(answer, entry)` method; this one has none")
    entries: dict[str, dict[str, Any]] = {}
    path = pathlib.Path(path)
    with path.open("w", encoding="utf-8") as f:
        for i, entry in enumerate(dataset):
            if "question" not in entry or "answer" not in entry:
                raise SpecError(f"reasoning-gym entry {i}: needs `question` and `answer`; has {sorted(entry)}")
            row_id = str(i)
            entries[row_id] = entry
            row = {"id": row_id, "question": entry["question"], "answer": str(entry["answer"])}
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    if not entries:
        raise SpecError("the reasoning-gym dataset has no entries")
    spec = f"""
name = {_toml_str(name)}
description = "A reasoning-gym dataset as a gristmill source, scored by its own score_answer."

[run]
seed = {int(seed)}
steps = 10
tasks_per_step = 8
responses_per_task = 4

[eval]
size = {int(eval_size)}

[[source]]
id = "rg"
kind = "dataset"
knobs = {{ path = {_toml_str(str(path))}, prompt = "question", gold = "answer", gold_kind = "text", id = "id" }}

[[piece]]
id = "match"
kind = "match_verifier"
weight = 0.0
{extra_pieces}
"""
    env = Environment.from_toml(spec, f"reasoning-gym spec over {path}")

    def score_answer(tasks: list[Task], responses: list[str]) -> list[float]:
        out = []
        for t, r in zip(tasks, responses, strict=True):
            entry = entries.get(t.row_id or "")
            if entry is None:
                raise SpecError(f"task `{t.key}`: row `{t.row_id}` is not one this adapter exported")
            out.append(float(score(answer=r, entry=entry)))
        return out

    return env.with_pieces(PythonPiece("score_answer", score_answer, score_weight))


def trl_reward_piece(
    fn: Callable[..., Sequence[float | None]], id: str | None = None, weight: float = 1.0
) -> PythonPiece:
    """A TRL-style reward function as a piece: called as `fn(prompts=…, completions=…,
    task_key=…, gold=…)` on the batch; `None` rewards (TRL's "not applicable") are refused,
    since a channel must score every response."""
    name = id or getattr(fn, "__name__", None) or "reward"

    def score(tasks: list[Task], responses: list[str]) -> list[float]:
        out = fn(
            prompts=[t.prompt for t in tasks],
            completions=list(responses),
            task_key=[t.key for t in tasks],
            gold=[t.gold for t in tasks],
        )
        values = list(out)
        for i, v in enumerate(values):
            if v is None:
                raise SpecError(f"reward function `{name}` returned None for responses[{i}]")
        return [float(v) for v in values]  # type: ignore[arg-type]

    return PythonPiece(name, score, weight)


def _call(func: Callable[..., Any], available: dict[str, Any]) -> Any:
    params = inspect.signature(func).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        kwargs = available
    else:
        kwargs = {k: v for k, v in available.items() if k in params}
    value = func(**kwargs)
    if inspect.isawaitable(value):
        value = asyncio.run(_await(value))
    return value


async def _await(value: Any) -> Any:
    return await value


def rubric_pieces(rubric: Any, prefix: str = "") -> list[PythonPiece]:
    """One piece per reward function of a `verifiers` rubric, weighted as the rubric weights
    it. Each function is called per response with the arguments it declares among
    `completion`, `answer`, `prompt`, `state`, `info`, `task` (async ones are awaited)."""
    if hasattr(rubric, "get_reward_funcs"):
        funcs, weights = list(rubric.get_reward_funcs()), list(rubric.get_reward_weights())
    else:
        funcs, weights = list(getattr(rubric, "funcs", [])), list(getattr(rubric, "weights", []))
    if not funcs:
        raise SpecError("the rubric has no reward functions")
    if len(weights) != len(funcs):
        raise SpecError(f"the rubric has {len(funcs)} reward functions but {len(weights)} weights")
    pieces = []
    for func, weight in zip(funcs, weights, strict=True):
        name = prefix + getattr(func, "__name__", f"rubric_{len(pieces)}")

        def score(tasks: list[Task], responses: list[str], _f: Callable[..., Any] = func) -> list[float]:
            return [
                float(
                    _call(
                        _f,
                        {
                            "completion": r,
                            "answer": t.gold,
                            "prompt": t.messages,
                            "state": {},
                            "info": {"task_key": t.key},
                            "task": t.source,
                        },
                    )
                )
                for t, r in zip(tasks, responses, strict=True)
            ]

        pieces.append(PythonPiece(name, score, float(weight)))
    return pieces
