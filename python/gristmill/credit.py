"""The per-channel advantage split, the channel-split optimizer and the credit ledger, as
NumPy-facing wrappers of the Rust implementations."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gristmill import _native


def _f64(a: Any, what: str) -> np.ndarray:
    try:
        return np.ascontiguousarray(a, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise _native.ShapeError(f"{what}: not an array of numbers: {e}") from e


def group_advantages(
    rewards: np.ndarray, weights: Sequence[float], group_size: int, normalization: str = "shared"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-sample, per-channel GRPO advantages of `rewards` (`n × C`, rows in consecutive
    groups of `group_size`). Returns `(advantages n×C, centred n×C, inv_sigma groups×C)`;
    `advantages.sum(1)` is the advantage of the combined reward for `shared`.

    `normalization`: `shared` (σ of the combined reward per group, as GRPO), `per_channel`
    (each channel's own σ), `none` (no σ, as Dr. GRPO). σ is the population standard
    deviation, guarded by `1e-6`.
    """
    r = _f64(rewards, "rewards")
    if r.ndim != 2 or r.shape[1] != len(weights):
        raise _native.ShapeError(
            f"rewards must be (samples, {len(weights)} channels), one column per weight; got shape {r.shape}"
        )
    adv, centred, inv = _native.group_advantages(r.tobytes(), list(map(float, weights)), group_size, normalization)
    c = len(weights)
    return (
        np.frombuffer(adv, dtype=np.float64).reshape(-1, c),
        np.frombuffer(centred, dtype=np.float64).reshape(-1, c),
        np.frombuffer(inv, dtype=np.float64).reshape(-1, c),
    )


@dataclass(frozen=True)
class SplitStep:
    """One split step: `cells[i]` is cell `i`'s share, `real` the step applied, `decay` the
    weight-decay share (or `None`). `cells.sum(0) + decay == real` up to rounding."""

    cells: np.ndarray
    real: np.ndarray
    decay: np.ndarray | None


class SplitOptimizer:
    """The channel-split optimizer over a flat parameter vector (see the Rust
    `gristmill_learn::optim`): SGD, or Adam split by the Owen value of its update over the
    cells (exact, symmetric, null, bounded), with AdamW's decoupled weight decay as its own
    share. Steps are **ascent** steps on the objective whose per-cell gradients it is given."""

    def __init__(
        self,
        kind: str,
        lr: float,
        rows: int,
        columns: int,
        length: int,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        *,
        _native_opt: _native.SplitOptimizer | None = None,
    ):
        self._opt = _native_opt or _native.SplitOptimizer(
            kind, lr, rows, columns, length, beta1, beta2, eps, weight_decay
        )
        self.rows, self.columns, self.length = rows, columns, length

    @property
    def t(self) -> int:
        return self._opt.t

    @property
    def step_bound(self) -> float | None:
        return self._opt.step_bound

    def step(
        self, grads: Sequence[np.ndarray | None], params: np.ndarray | None = None, lr: float | None = None
    ) -> SplitStep:
        """One step from per-cell gradients (`None` for a cell without one)."""
        raw = [b"" if g is None else _f64(g, f"grads[{i}]").reshape(-1).tobytes() for i, g in enumerate(grads)]
        p = None if params is None else _f64(params, "params").reshape(-1).tobytes()
        cells, real, decay = self._opt.step(raw, p, lr)
        cells_arr = (
            np.stack([np.frombuffer(c, dtype=np.float64) for c in cells]) if cells else np.zeros((0, self.length))
        )
        return SplitStep(
            cells_arr,
            np.frombuffer(real, dtype=np.float64),
            None if decay is None else np.frombuffer(decay, dtype=np.float64),
        )

    def to_json(self) -> str:
        """The whole state, for a checkpoint."""
        return json.dumps(
            {
                "rows": self.rows,
                "columns": self.columns,
                "length": self.length,
                "native": json.loads(self._opt.to_json()),
            }
        )

    @staticmethod
    def from_json(text: str) -> SplitOptimizer:
        try:
            d = json.loads(text)
            native = _native.SplitOptimizer.from_json(json.dumps(d["native"]))
            return SplitOptimizer("sgd", 1.0, d["rows"], d["columns"], d["length"], _native_opt=native)
        except (KeyError, TypeError, json.JSONDecodeError) as e:
            raise _native.GristmillError(f"optimizer state: {e}") from e


class Ledger:
    """The credit ledger of a run trained in Python, kept in a gristmill run store.

    Per step: each cell's credit (`Δθ_cell · ∇M`, flat `[row][column]`), `M` before and
    after, and the standard error of the change when `M` is estimated. Out: cumulative
    credit per cell, the residual `ΔM − Σ credit` (never hidden), per-step curves. The run is
    read back by `gristmill runs` and `gristmill credit --run ID`.
    """

    def __init__(self, native: _native.Ledger):
        self._native = native

    @staticmethod
    def create(
        env: Any,
        rows: Sequence[str],
        steps: int,
        columns: Sequence[str] = ("all",),
        db: str | None = None,
        trainer: str = "python",
        config: dict[str, Any] | None = None,
    ) -> Ledger:
        """A new run for `env` (a `gristmill.Environment`) in the store at `db` (in memory
        when `None`)."""
        native_env = getattr(env, "native", env)
        return Ledger(
            _native.Ledger.create(
                native_env,
                list(rows),
                list(columns),
                steps,
                None if db is None else str(db),
                trainer,
                json.dumps(config or {}),
            )
        )

    @staticmethod
    def resume(db: str, run_id: int) -> Ledger:
        """Run `run_id` of the store at `db`, from its latest checkpoint."""
        return Ledger(_native.Ledger.resume(str(db), run_id))

    @property
    def run_id(self) -> int:
        return self._native.run_id

    @property
    def next_step(self) -> int:
        return self._native.next_step

    @property
    def rows(self) -> list[str]:
        return self._native.rows

    @property
    def columns(self) -> list[str]:
        return self._native.columns

    def observe(
        self,
        step: int,
        metric_before: float,
        metric_after: float,
        cells: Sequence[float] | np.ndarray,
        delta_se: float | None = None,
    ) -> dict[str, Any]:
        """Feeds one step; returns it as credited (`cells`, `delta_metric`, `residual`, `rows`)."""
        flat = [float(x) for x in np.asarray(cells, dtype=np.float64).reshape(-1)]
        return json.loads(
            self._native.observe(
                step, float(metric_before), float(metric_after), flat, None if delta_se is None else float(delta_se)
            )
        )

    def checkpoint(self) -> None:
        """Makes everything observed so far durable."""
        self._native.checkpoint()

    def report(self) -> dict[str, Any]:
        """The report as it stands: `credit` (rows, columns, cells, residual…), `gold_after`…"""
        return json.loads(self._native.report())

    def curves(self) -> dict[str, list[tuple[int, float]]]:
        """Per-step series: `gold`, `delta`, `residual`, `delta_se`, `credit/<row>`."""
        return {k: [(int(s), float(v)) for s, v in pts] for k, pts in json.loads(self._native.curves()).items()}

    def finish(self) -> dict[str, Any]:
        """Stores the report as the run's `credit` result and finishes the run."""
        return json.loads(self._native.finish())
