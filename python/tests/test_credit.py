"""The split optimizer and the store-backed ledger."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import gristmill
from gristmill import Environment, Ledger, SplitOptimizer


def _adamw_reference(grads: list[np.ndarray], theta: np.ndarray, lr: float, wd: float) -> list[np.ndarray]:
    """Plain AdamW (torch's update order: decay, then the Adam step) on total gradients."""
    b1, b2, eps = 0.9, 0.999, 1e-8
    m = np.zeros_like(theta)
    v = np.zeros_like(theta)
    steps = []
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        step = -lr * wd * theta + lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
        theta = theta + step
        steps.append(step)
    return steps


def test_adam_split_is_exact_bounded_null_and_symmetric() -> None:
    rng = np.random.default_rng(11)
    n, cells = 50, 4
    opt = SplitOptimizer("adam", 1e-2, rows=cells, columns=1, length=n, weight_decay=0.1)
    theta = rng.normal(size=n)
    history = []
    for _ in range(6):
        shared = rng.normal(size=n)
        # cell 0 and 1 identical, cell 2 opposes cell 0, cell 3 never has a gradient
        g = [shared, shared.copy(), -0.7 * shared + 0.1 * rng.normal(size=n), None]
        st = opt.step(g, params=theta)
        # Σ shares + decay = the real step: Adam's Owen split is exact in exact arithmetic; the
        # float sum of 2^3 coalition terms is within a few ulps of a step of size ~lr.
        assert st.decay is not None
        np.testing.assert_allclose(st.cells.sum(axis=0) + st.decay, st.real, rtol=0, atol=1e-15)
        np.testing.assert_array_equal(st.cells[0], st.cells[1])  # symmetry: bit for bit
        np.testing.assert_array_equal(st.cells[3], 0.0)  # null: exactly zero
        bound = 2 * (opt.step_bound or 0)  # the bound of the next step, at least this one's
        assert np.abs(st.cells).max() <= bound
        history.append((sum(x for x in g if x is not None), st.real))
        theta = theta + st.real
    theta0 = theta - sum(r for _, r in history)
    ref = _adamw_reference([g for g, _ in history], theta0, 1e-2, 0.1)
    for (_, real), want in zip(history, ref, strict=True):
        np.testing.assert_allclose(real, want, rtol=1e-12, atol=1e-16)


def test_optimizer_state_round_trips_to_the_same_steps() -> None:
    rng = np.random.default_rng(3)
    a = SplitOptimizer("adam", 1e-3, rows=2, columns=1, length=8)
    grads = [[rng.normal(size=8), rng.normal(size=8)] for _ in range(4)]
    a.step(grads[0])
    a.step(grads[1])
    b = SplitOptimizer.from_json(a.to_json())
    for g in grads[2:]:
        sa, sb = a.step(g), b.step(g)
        np.testing.assert_array_equal(sa.cells, sb.cells)
        np.testing.assert_array_equal(sa.real, sb.real)
    assert a.t == b.t == 4


def test_split_optimizer_refuses_bad_shapes() -> None:
    opt = SplitOptimizer("adam", 1e-3, rows=2, columns=1, length=4)
    with pytest.raises(gristmill.ShapeError, match="1 gradients for 2 × 1 = 2 cells"):
        opt.step([np.zeros(4)])
    with pytest.raises(gristmill.ShapeError, match=r"grads\[1\] has 3 values; the parameters have 4"):
        opt.step([np.zeros(4), np.zeros(3)])
    with pytest.raises(gristmill.GristmillError, match=r"grads\[0\]\[2\] is NaN"):
        opt.step([np.array([0, 0, np.nan, 0.0]), None])
    with pytest.raises(gristmill.ShapeError, match="neither `adam` nor `sgd`"):
        SplitOptimizer("lion", 1e-3, 1, 1, 4)
    with pytest.raises(gristmill.ShapeError, match="cells; the split takes 1 to 128"):
        SplitOptimizer("adam", 1e-3, 200, 1, 4)
    with pytest.raises(gristmill.ShapeError, match="needs the parameters"):
        SplitOptimizer("adam", 1e-3, 1, 1, 4, weight_decay=0.1).step([np.ones(4)])
    assert opt.t == 0, "a refused step moves nothing"


def _feed(ledger: Ledger, steps: range) -> None:
    for t in steps:
        # M = t / 8 is exact in binary, so one step's `after` is the next step's `before`.
        ledger.observe(t, t / 8, (t + 1) / 8, [0.06, 0.03, 0.0], delta_se=0.01)


def test_ledger_efficiency_and_refusals(arith_spec: str) -> None:
    env = Environment.from_toml(arith_spec)
    ledger = Ledger.create(env, ["exact", "format", "control"], steps=3)
    ledger.observe(0, 0.0, 0.1, [0.06, 0.03, 0.0], delta_se=0.01)
    ledger.observe(1, 0.1, 0.25, [0.1, 0.04, 0.0], delta_se=0.01)
    report = ledger.report()
    credit = report["credit"]
    assert credit["rows"] == ["exact", "format", "control"]
    # efficiency: Σ credit + residual = ΔM (additions of a handful of doubles)
    assert sum(credit["cells"]) + credit["residual"] == pytest.approx(credit["delta_metric"], abs=1e-15)
    assert credit["delta_metric"] == pytest.approx(0.25, abs=1e-15)
    assert credit["residual"] == pytest.approx(0.02, abs=1e-15)
    assert report["delta_se"] == pytest.approx(np.sqrt(2) * 0.01, rel=1e-12)
    with pytest.raises(gristmill.LedgerError, match="expects step 2 next"):
        ledger.observe(5, 0.25, 0.3, [0, 0, 0])
    with pytest.raises(gristmill.LedgerError, match="not a finite number"):
        ledger.observe(2, 0.25, float("nan"), [0, 0, 0])
    with pytest.raises(gristmill.LedgerError, match="2 cell contributions, but the ledger has 3"):
        ledger.observe(2, 0.25, 0.3, [0, 0])
    with pytest.raises(gristmill.LedgerError, match="previous step's metric after"):
        ledger.observe(2, 0.2, 0.3, [0, 0, 0])
    ledger.finish()
    with pytest.raises(gristmill.LedgerError, match="finished"):
        ledger.observe(2, 0.25, 0.3, [0, 0, 0])


def test_a_killed_trainer_resumes_its_ledger_from_the_store(tmp_path, arith_spec: str, gristmill_bin) -> None:
    db = tmp_path / "runs.db"
    spec = tmp_path / "arith.toml"
    spec.write_text(arith_spec)
    child = textwrap.dedent(
        f"""
        import os, signal, gristmill
        env = gristmill.Environment.load({str(spec)!r})
        ledger = gristmill.Ledger.create(env, ["exact", "format", "control"], steps=6, db={str(db)!r}, trainer="trl")
        for t in range(3):
            ledger.observe(t, t / 8, (t + 1) / 8, [0.06, 0.03, 0.0], delta_se=0.01)
        ledger.checkpoint()
        ledger.observe(3, 3 / 8, 4 / 8, [0.06, 0.03, 0.0])  # never checkpointed
        print(ledger.run_id, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    # cwd away from python/: `python -c` puts the cwd first on sys.path, and the source tree's
    # `gristmill` (no compiled extension) would shadow the installed package.
    out = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, check=False, cwd=tmp_path)
    assert out.returncode == -signal.SIGKILL, out.stderr
    run_id = int(out.stdout.strip())
    ledger = Ledger.resume(str(db), run_id)
    assert ledger.next_step == 3
    _feed(ledger, range(3, 6))
    curves = ledger.curves()
    assert [s for s, _ in curves["credit/exact"]] == list(range(6))
    done = ledger.finish()
    assert done["steps"] == 6 and done["trainer"] == "trl"
    assert done["credit"]["cells"][0] == pytest.approx(0.36, abs=1e-14)
    listing = subprocess.run(
        [str(gristmill_bin), "--db", str(db), "runs"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert "outside" in listing.stdout and str(run_id) in listing.stdout, listing.stdout
    shown = subprocess.run(
        [str(gristmill_bin), "--db", str(db), "credit", "--run", str(run_id), "--json", str(tmp_path / "c.json")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "exact" in shown.stdout and "residual" in shown.stdout, shown.stdout
    assert json.loads((tmp_path / "c.json").read_text())["credit"]["rows"] == ["exact", "format", "control"]
