#!/usr/bin/env python3
"""Peer measurement for `gristmill-bench rollouts`: reasoning-gym items per second.

One *item* here = generate one dataset entry (`dataset[i]`, which reseeds a `random.Random`
with `seed + i` and builds the question, the gold answer and the metadata) + score the gold
answer + score one wrong answer with `dataset.score_answer(answer=..., entry=...)`.

Each dataset runs at its default config in one Python process (one core) for a fixed wall
budget: a few untimed warm-up items first, then items are generated and scored one after the
other until the budget is spent. The last item may overrun the budget (basic_arithmetic has a
heavy tail); the elapsed time that is reported includes the overrun, so the rate is honest.

Prints one JSON object on stdout:

    {"basic_arithmetic": items/s, "chain_sum": ..., "gcd": ..., "leg_counting": ...,
     "overall": harmonic mean (items/s of a stream with equal item counts per dataset),
     "overall_total": total items / total seconds,
     "_detail": {per-dataset items, seconds, mean gold score, mean wrong score, slowest item,
                 CPU used and run-queue wait in cores (Linux), versions}}

Usage: python peer_reasoning_gym.py [--seconds S] [--seed N] [--datasets a,b,...]
(also runs when the program text is piped in: `python - --seconds S < peer_reasoning_gym.py`).
"""

import argparse
import json
import platform
import sys
import time

DATASETS = ["basic_arithmetic", "chain_sum", "gcd", "leg_counting"]
WARMUP_ITEMS = 20
SIZE = 10**9  # virtual size: entries are generated on demand from seed + index


def wrong_answer(gold: str) -> str:
    """A wrong answer in the dataset's own format: the integer plus one."""
    try:
        return str(int(gold) + 1)
    except ValueError:
        return gold + "0"


def schedstat():
    """(run ns, run-queue wait ns) of this process's thread (Linux), or None."""
    try:
        with open("/proc/self/schedstat") as f:
            run, wait = f.read().split()[:2]
        return int(run), int(wait)
    except (OSError, ValueError):
        return None


def measure(name: str, seconds: float, seed: int) -> dict:
    import reasoning_gym

    ds = reasoning_gym.create_dataset(name, size=SIZE, seed=seed)
    for i in range(WARMUP_ITEMS):
        entry = ds[SIZE - 1 - i]
        ds.score_answer(answer=entry["answer"], entry=entry)
        ds.score_answer(answer=wrong_answer(entry["answer"]), entry=entry)

    items = 0
    gold_sum = 0.0
    wrong_sum = 0.0
    slowest = 0.0
    clock = time.perf_counter
    sched = schedstat()
    start = clock()
    deadline = start + seconds
    now = start
    while now < deadline:
        entry = ds[items]
        gold_sum += ds.score_answer(answer=entry["answer"], entry=entry)
        wrong_sum += ds.score_answer(answer=wrong_answer(entry["answer"]), entry=entry)
        items += 1
        t = clock()
        slowest = max(slowest, t - now)
        now = t
    elapsed = now - start
    after = schedstat()
    cpu = {}
    if sched and after:
        cpu = {
            "cores_used": (after[0] - sched[0]) / 1e9 / elapsed,
            "cores_waited": (after[1] - sched[1]) / 1e9 / elapsed,
        }
    return {
        **cpu,
        "items": items,
        "seconds": elapsed,
        "items_per_s": items / elapsed,
        "mean_gold_score": gold_sum / items,
        "mean_wrong_score": wrong_sum / items,
        "slowest_item_s": slowest,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="wall budget per dataset")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--datasets", default=",".join(DATASETS))
    args = parser.parse_args()
    if not args.seconds > 0:
        parser.error("--seconds must be positive")
    names = [n for n in args.datasets.split(",") if n]

    import reasoning_gym

    try:
        from importlib.metadata import version

        rg_version = version("reasoning-gym")
    except Exception:  # noqa: BLE001 - the version is informational only
        rg_version = getattr(reasoning_gym, "__version__", "unknown")

    detail = {}
    out = {}
    for name in names:
        r = measure(name, args.seconds, args.seed)
        detail[name] = r
        out[name] = r["items_per_s"]
    rates = [out[n] for n in names]
    out["overall"] = len(rates) / sum(1.0 / r for r in rates)
    out["overall_total"] = sum(d["items"] for d in detail.values()) / sum(d["seconds"] for d in detail.values())
    out["_detail"] = {
        "datasets": detail,
        "item": "generate entry + score gold answer + score a wrong answer",
        "seconds_per_dataset": args.seconds,
        "seed": args.seed,
        "reasoning_gym_version": rg_version,
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
    }
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
