#!/usr/bin/env python3
"""Peer side of bench/math_verify.sh: Hugging Face math-verify on the shared corpus.

For every (gold, response) pair of the corpus it does what math-verify's README does:

    verify(parse("$" + gold + "$"), parse(response))

with the library's default extraction configs (LaTeX and plain expressions) and default
verify options (float_rounding=6, numeric_precision=15, timeouts on). The gold is wrapped in
`$...$` because corpus golds are bare LaTeX, which math-verify only extracts from math mode.
An exception counts as "not equal" and is recorded.

Timing: one untimed warm-up pass over the first 20 pairs (imports, regex compilation,
sympy caches), then one timed pass over the whole corpus in this single process (one core;
the driver pins it with taskset). The timed pass covers parsing both sides and verifying,
exactly like the Rust side.

Writes one JSON object per pair to --out, then prints a summary JSON object on stdout:

    {"pairs": N, "seconds": S, "pairs_per_s": N/S, "errors": E, "math_verify": "0.9.0", ...}

Usage: python math_verify_peer.py --corpus bench/data/math_corpus.jsonl --out peer.jsonl
"""

import argparse
import json
import platform
import sys
import time
from importlib.metadata import version

WARMUP = 20


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    from math_verify import parse, verify

    with open(args.corpus, encoding="utf-8") as f:
        rows = [json.loads(line) for line in f if line.strip()]

    def judge(row):
        try:
            gold = parse("$" + row["gold"] + "$")
            answer = parse(row["response"])
            return bool(verify(gold, answer)), None
        except Exception as e:  # noqa: BLE001 - any failure is a "not equal" verdict
            return False, f"{type(e).__name__}: {e}"

    for row in rows[:WARMUP]:
        judge(row)

    results = []
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    for row in rows:
        equal, error = judge(row)
        results.append({"id": row["id"], "equal": equal, "error": error})
    seconds = time.perf_counter() - t0
    cpu = time.process_time() - cpu0

    with open(args.out, "w", encoding="utf-8") as f:
        for r in results:
            f.write(json.dumps(r) + "\n")
    summary = {
        "pairs": len(rows),
        "seconds": seconds,
        "cpu_seconds": cpu,
        "pairs_per_s": len(rows) / seconds,
        "errors": sum(1 for r in results if r["error"]),
        "math_verify": version("math-verify"),
        "sympy": version("sympy"),
        "latex2sympy2_extended": version("latex2sympy2_extended"),
        "python": platform.python_version(),
    }
    json.dump(summary, sys.stdout)
    print()


if __name__ == "__main__":
    main()
