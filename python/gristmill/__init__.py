"""gristmill for Python: environments, per-piece reward matrices, the exact per-channel
advantage split, the channel-split optimizer and the credit ledger, over the Rust engine.

>>> import gristmill
>>> env = gristmill.Environment.load("examples/addition.toml")          # doctest: +SKIP
>>> tasks = env.sample(step=0, count=4)                                  # doctest: +SKIP
>>> m = env.score(tasks, ["Answer: 3"] * 4)                              # doctest: +SKIP
>>> m.rewards.shape, m.channels                                          # doctest: +SKIP

Everything is computed by the Rust crates; this layer converts to NumPy and adds the one
thing only Python can do: pieces written in Python (`PythonPiece`), scored beside the
spec's own as extra channels.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gristmill import _native
from gristmill._native import (
    GristmillError,
    LedgerError,
    ScoringError,
    ShapeError,
    SpecError,
    StoreError,
    Task,
    TaskKeyError,
    __version__,
)
from gristmill.credit import Ledger, SplitOptimizer, SplitStep, group_advantages

__all__ = [
    "Environment",
    "GristmillError",
    "Ledger",
    "LedgerError",
    "PythonPiece",
    "RewardMatrix",
    "ScoringError",
    "ShapeError",
    "SpecError",
    "SplitOptimizer",
    "SplitStep",
    "StoreError",
    "Task",
    "TaskKeyError",
    "__version__",
    "group_advantages",
]

TaskLike = Task | str


def _keys(tasks: Sequence[TaskLike]) -> list[str]:
    return [t if isinstance(t, str) else t.key for t in tasks]


@dataclass(frozen=True)
class PythonPiece:
    """A reward piece written in Python, scored as one more channel.

    `score(tasks, responses)` returns one finite float per response; `tasks` are the
    `Task` objects the responses answer (with `prompt`, `gold`, `key`, `row_id`).
    """

    id: str
    score: Callable[[list[Task], list[str]], Sequence[float]]
    weight: float = 1.0


@dataclass(frozen=True)
class RewardMatrix:
    """Rewards of `n` responses by channel: `rewards[i, c]` is channel `channels[c]`'s
    reward for response `i`; `weights[c]` its weight in the combined reward."""

    rewards: np.ndarray
    channels: list[str]
    weights: np.ndarray = field(repr=False)

    def __getitem__(self, channel: str) -> np.ndarray:
        try:
            return self.rewards[:, self.channels.index(channel)]
        except ValueError:
            raise KeyError(f"no channel `{channel}`; channels are {self.channels}") from None

    def combined(self) -> np.ndarray:
        """The weighted sum over channels: the reward a single-reward trainer would see."""
        return self.rewards @ self.weights


class Environment:
    """An environment built from a gristmill spec, optionally with Python pieces."""

    def __init__(self, native: _native.Environment, pieces: Sequence[PythonPiece] = ()):
        self._native = native
        self._pieces = list(pieces)
        names = list(native.channels)
        for p in self._pieces:
            if p.id in names:
                raise SpecError(f"Python piece `{p.id}`: the environment already has a channel of that id")
            if not np.isfinite(p.weight):
                raise SpecError(f"Python piece `{p.id}`: weight {p.weight} is not finite")
            names.append(p.id)

    @staticmethod
    def from_toml(text: str, origin: str = "<string>") -> Environment:
        """Loads a spec from TOML text (`origin` names it in errors)."""
        return Environment(_native.Environment.from_toml(text, origin))

    @staticmethod
    def load(path: str) -> Environment:
        """Loads a spec file."""
        return Environment(_native.Environment.load(str(path)))

    def with_pieces(self, *pieces: PythonPiece) -> Environment:
        """This environment with more Python pieces (channels after the spec's own)."""
        return Environment(self._native, [*self._pieces, *pieces])

    @property
    def native(self) -> _native.Environment:
        """The Rust environment."""
        return self._native

    @property
    def name(self) -> str:
        return self._native.name

    @property
    def seed(self) -> int:
        return self._native.seed

    @property
    def spec_hash(self) -> str:
        return self._native.spec_hash

    @property
    def channels(self) -> list[str]:
        """Channel ids: the spec's scoring pieces, then the Python pieces."""
        return [*self._native.channels, *(p.id for p in self._pieces)]

    @property
    def weights(self) -> np.ndarray:
        """Each channel's weight."""
        return np.array([*self._native.weights, *(p.weight for p in self._pieces)], dtype=np.float64)

    @property
    def eval_size(self) -> int:
        return self._native.eval_size

    def sample(self, step: int, count: int, seed: int | None = None, offset: int = 0) -> list[Task]:
        """Training tasks `offset .. offset+count` of `step` (keyed by seed, step, index)."""
        return self._native.sample(step, count, seed, offset)

    def eval_tasks(self) -> list[Task]:
        """The gold eval suite."""
        return self._native.eval_tasks()

    def task(self, key: str) -> Task:
        """The task a key names."""
        return self._native.task(key)

    def score(
        self, tasks: Sequence[TaskLike], responses: Sequence[str], samples: Sequence[int] | None = None
    ) -> RewardMatrix:
        """Scores `responses[i]` to `tasks[i]` (tasks or their keys) with every channel."""
        keys = _keys(tasks)
        responses = list(responses)
        raw = self._native.score(keys, responses, None if samples is None else list(samples))
        native = np.frombuffer(raw, dtype=np.float64).reshape(len(keys), len(self._native.channels))
        if not self._pieces:
            return RewardMatrix(native, self.channels, self.weights)
        task_objs = [t if isinstance(t, Task) else self._native.task(t) for t in tasks]
        extra = np.empty((len(keys), len(self._pieces)), dtype=np.float64)
        for j, piece in enumerate(self._pieces):
            extra[:, j] = _python_scores(piece, task_objs, responses)
        return RewardMatrix(np.concatenate([native, extra], axis=1), self.channels, self.weights)

    def gold(self, tasks: Sequence[TaskLike], responses: Sequence[str]) -> np.ndarray:
        """Gold score (1 or 0) of each response."""
        raw = self._native.gold(_keys(tasks), list(responses))
        return np.frombuffer(raw, dtype=np.float64)

    def __repr__(self) -> str:
        return f"Environment(name={self.name!r}, channels={self.channels!r})"


def _python_scores(piece: PythonPiece, tasks: list[Task], responses: list[str]) -> np.ndarray:
    try:
        out: Any = piece.score(tasks, responses)
    except Exception as e:  # a piece's own failure, named
        raise ScoringError(f"Python piece `{piece.id}` raised {type(e).__name__}: {e}") from e
    try:
        values = np.asarray(out, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as e:
        raise ScoringError(f"Python piece `{piece.id}` returned something that is not numbers: {e}") from e
    if values.shape[0] != len(responses):
        raise ScoringError(
            f"Python piece `{piece.id}` returned {values.shape[0]} rewards for {len(responses)} responses"
        )
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        i = int(bad[0])
        raise ScoringError(
            f"Python piece `{piece.id}` gave a non-finite reward {values[i]} to responses[{i}] (task `{tasks[i].key}`)"
        )
    return values
