"""Scoring from Python: responses/s through the binding (`gristmill.Environment.score`)
against the Rust scorer called directly (`score-bench`, the same work per response), and
gristmill's verifier against reasoning-gym's own `score_answer` on the same items.

usage: python bench/python_scoring.py [--n 20000] [--repeats 5] [--score-bench target/release/score-bench]
Prints `name value` lines, the ratios, and one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import subprocess
import tempfile
import time

import gristmill

ROOT = pathlib.Path(__file__).resolve().parents[1]


def best_of(repeats: int, f) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--spec", default=str(ROOT / "examples" / "arith.toml"))
    ap.add_argument("--n", type=int, default=20000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--score-bench", default=str(ROOT / "target" / "release" / "score-bench"))
    a = ap.parse_args()
    out: dict[str, float] = {}

    env = gristmill.Environment.load(a.spec)
    tasks = env.sample(0, a.n)
    keys = [t.key for t in tasks]
    responses = [t.gold if i % 2 == 0 else "Answer: 0" for i, t in enumerate(tasks)]
    native = env.native
    secs = best_of(a.repeats, lambda: native.score(keys, responses))
    out["binding_responses_per_s"] = a.n / secs
    secs_np = best_of(a.repeats, lambda: env.score(keys, responses))
    out["binding_numpy_responses_per_s"] = a.n / secs_np
    rust = subprocess.run(
        [a.score_bench, a.spec, str(a.n), str(a.repeats)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ},
    )
    for line in rust.stdout.splitlines():
        name, value = line.split()
        if name == "rust_direct_responses_per_s":
            out[name] = float(value)
    out["binding_over_rust"] = out["binding_responses_per_s"] / out["rust_direct_responses_per_s"]

    try:
        import reasoning_gym as rg

        from gristmill.adapters import reasoning_gym_environment
    except ImportError:
        rg = None
    if rg is not None:
        size = min(a.n, 5000)
        data = rg.create_dataset("basic_arithmetic", size=size, seed=1)
        with tempfile.TemporaryDirectory() as tmp:
            genv = reasoning_gym_environment(
                data,
                pathlib.Path(tmp) / "rg.jsonl",
                extra_pieces='[[piece]]\nid = "numeric"\nkind = "numeric_verifier"\n',
            )
            plain = gristmill.Environment(genv.native)  # the spec's own pieces, no Python piece
            rtasks = plain.sample(0, size)
            entries = {str(i): data[i] for i in range(size)}
            answers = [entries[t.row_id]["answer"] if i % 2 == 0 else "0" for i, t in enumerate(rtasks)]
            rkeys = [t.key for t in rtasks]
            g = best_of(a.repeats, lambda: plain.native.score(rkeys, answers))
            r = best_of(
                a.repeats,
                lambda: [
                    data.score_answer(answer=x, entry=entries[t.row_id]) for x, t in zip(answers, rtasks, strict=True)
                ],
            )
            out["gristmill_rg_items_per_s"] = size / g
            out["reasoning_gym_score_answer_per_s"] = size / r
            out["gristmill_over_reasoning_gym"] = (
                out["gristmill_rg_items_per_s"] / out["reasoning_gym_score_answer_per_s"]
            )
    for k, v in out.items():
        print(f"{k} {v:.4g}")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
