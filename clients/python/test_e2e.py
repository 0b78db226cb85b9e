#!/usr/bin/env python3
"""End-to-end test of a running gristmill server through gristmill_client.

    python3 clients/python/test_e2e.py --url http://127.0.0.1:8080
    python3 clients/python/test_e2e.py --url URL --token EVAL --train-token T --other-token O

Exits 0 and prints "all checks passed" when every check holds, 1 otherwise. Needs an
environment with an `exact_verifier` piece and an `[[episode]]` source (the server crate's
tests/specs/serve.toml has both). Against a server with tokens, pass an `eval` token
(`--token`, used for everything), a `train` token and a second token: then it also checks
that calls without a token are refused, that gold needs the `eval` role, and that one
token's sessions and snapshots do not exist for another.
"""

import argparse
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from gristmill_client import Client, GristmillError  # noqa: E402


class CheckFailed(Exception):
    pass


def check(cond, what):
    if not cond:
        raise CheckFailed(what)


def expect_error(status, code, call, *args, **kwargs):
    try:
        call(*args, **kwargs)
    except GristmillError as e:
        check(e.status == status and e.code == code, f"expected {status} {code}, got {e}")
        check(e.message, "error without a message")
        return e
    raise CheckFailed(f"expected {status} {code}, but the call succeeded")


SESSION_ID = re.compile(r"^s-[0-9a-f]{32}$")
SNAPSHOT_ID = re.compile(r"^snap-[0-9a-f]{32}$")


def run(url, token=None, train_token=None, other_token=None):
    c = Client(url, token=token)
    health = c.health()
    check(health["status"] == "ok", f"health: {health}")
    check(health["auth"] == ("bearer" if token else "none"), f"auth: {health['auth']}")
    limits = health["limits"]

    envs = c.envs()
    check(envs, "no environments")
    env = next((e for e in envs if any(p["kind"] == "exact_verifier" for p in e["pieces"]) and e["episodes"]), None)
    check(env is not None, "need an environment with an exact_verifier and an episode source")
    name = env["name"]
    exact = next(p["id"] for p in env["pieces"] if p["kind"] == "exact_verifier")
    check(c.env(name) == env, "GET /v1/envs/{env} differs from the listing")

    # Tasks come back, with prompts and keys but no gold; the same call gives the same tasks.
    tasks = c.sample(name, count=8, seed=123, step=2)
    check(len(tasks) == 8, f"asked for 8 tasks, got {len(tasks)}")
    for t in tasks:
        check(t["task_key"].startswith("t-7b-2-"), f"task key {t['task_key']}")
        check(t["prompt"] and t["answer_format"], f"empty prompt or format: {t}")
        check("gold" not in t, "gold leaked into a sampled task")
    check(c.sample(name, count=8, seed=123, step=2) == tasks, "sampling is not deterministic")
    floats = c.request("POST", "/v1/sample", {"env": name, "seed": 123.0, "step": 2.0, "count": 8.0})["tasks"]
    check(floats == tasks, "whole-number floats are not the integers they spell")
    check(c.sample(name, count=8, seed=124, step=2) != tasks, "a different seed gave the same tasks")

    # Scoring the gold answer gets 1.0 from the exact verifier; a wrong one gets 0.
    probe = c.score(name, [(t["task_key"], "I don't know") for t in tasks], eval=True)
    check(probe["channels"] == env["channels"], "score channels differ from the listing")
    for r in probe["results"]:
        check(r["parse"]["ok"] is False and r["parse"]["reason"] == "missing", f"parse of a non-answer: {r['parse']}")
        check(r["rewards"][exact] == 0.0, "the exact verifier rewarded a non-answer")
    golds = [r["gold"] for r in probe["results"]]
    items = [(t["task_key"], "Working it out...\n" + g["text"], i) for i, (t, g) in enumerate(zip(tasks, golds))]
    plain = c.score(name, items)
    for r, g in zip(plain["results"], golds):
        check("gold" not in r, "gold returned without eval mode")
        check(r["rewards"][exact] == 1.0, f"gold answer scored {r['rewards']}")
        check(r["parse"] == {"ok": True, "answer": g["answer"]}, f"parse {r['parse']} vs gold {g}")
        check(len(r["reward_vector"]) == len(env["channels"]), "reward vector length")
        check(r["reward_vector"] == [r["rewards"][ch] for ch in env["channels"]], "rewards map and vector disagree")
    check(c.score(name, items)["results"] == plain["results"], "scoring is not deterministic")
    one = c.score_one(name, tasks[0]["task_key"], "Answer: not a number", eval=True)
    check(one["parse"]["ok"] is False and one["parse"]["reason"] == "malformed", f"parse {one['parse']}")
    check(one["gold"]["correct"] is False, "a malformed answer counted as correct")

    # The gold suite.
    suite = c.sample(name, count=4, split="eval")
    check([t["task_key"] for t in suite] == ["e-0", "e-1", "e-2", "e-3"], "eval keys")
    check(not any(t["hinted"] for t in suite), "a gold-suite task was hinted")
    first = c.score_one(name, "e-0", "?", eval=True)
    check(c.score_one(name, "e-0", first["gold"]["text"])["rewards"][exact] == 1.0, "gold-suite answer not accepted")

    # Malformed input gets 4xx with the error shape.
    expect_error(400, "malformed_json", c.request, "POST", "/v1/score", raw=b'{"env": ')
    expect_error(415, "unsupported_media_type", c.request, "POST", "/v1/score", raw=b"{}", headers={"Content-Type": "text/plain"})
    expect_error(422, "invalid_request", c.request, "POST", "/v1/sample", {"env": name, "seed": "seven", "count": 1})
    expect_error(404, "unknown_env", c.sample, "no-such-env", count=1, seed=1)
    expect_error(400, "bad_task_key", c.score_one, name, "t-not-a-key", "Answer: 1")
    expect_error(404, "unknown_task_key", c.score_one, name, "e-%d" % env["eval"]["size"], "Answer: 1")
    expect_error(422, "batch_too_large", c.sample, name, count=limits["max_batch"] + 1, seed=1)
    expect_error(422, "invalid_request", c.request, "POST", "/v1/sample", {"env": name, "seed": None, "count": 1})
    expect_error(400, "bad_task_key", c.score_one, name, "t-7B-2-0", "Answer: 1")
    expect_error(404, "unknown_session", c.step, "s-999999999", "up")
    expect_error(404, "not_found", c.request, "GET", "/no/such/route")

    # Episodes: reset, step, snapshot, fork; forks stepped alike stay alike.
    s = c.reset(name, seed=5)
    sid = s["session"]
    check(SESSION_ID.match(sid), f"session id {sid}")
    check(not s["done"] and s["steps_taken"] == 0 and s["observation"], f"reset: {s}")
    expect_error(404, "unknown_session", c.session, "s-" + sid[2:].upper())
    expect_error(404, "unknown_session", c.session, "s-0" + sid[2:])
    actions = env["episodes"][0]["actions"]
    s = c.step(sid, "I will move. Action: " + actions[0])
    check(s["steps_taken"] == 1 and s["action"]["index"] == 0, f"step: {s}")
    err = expect_error(422, "unparsable_action", c.step, sid, "Action: fly away")
    check(err.parse and err.parse["reason"] == "malformed", f"parse detail {err.parse}")
    snap = c.snapshot(sid)
    check(SNAPSHOT_ID.match(snap["token"]), f"snapshot id {snap['token']}")
    check(snap["state_digest"] == s["state_digest"], "snapshot state differs from the session's")
    forks = c.fork(snap["token"], 3)["sessions"]
    check(len(forks) == 3, "fork count")
    check(len({f["session"] for f in forks} | {sid}) == 4, "fork ids repeat")
    check(all(f["state_digest"] == snap["state_digest"] for f in forks), "a fork does not start in the snapshot's state")
    finals = []
    for f in forks:
        last = f
        for a in [1, 3, 3, 0]:
            try:
                last = c.step(f["session"], action_index=a)
            except GristmillError as e:
                check(e.code == "episode_done", str(e))
        finals.append((last["state_digest"], last["total_reward"], last["steps_taken"]))
    check(len(set(finals)) == 1, f"forks stepped alike diverged: {finals}")
    if token:
        check_tokens(url, name, train_token, other_token, sid, snap["token"])
    for f in forks:
        c.close(f["session"])
    c.close(sid)
    c.close_snapshot(snap["token"])
    expect_error(404, "unknown_session", c.session, sid)
    expect_error(404, "unknown_snapshot", c.fork, snap["token"], 1)


def check_tokens(url, name, train_token, other_token, sid, snapshot):
    """What tokens decide: who may call, who sees gold, who owns `sid` and `snapshot`."""
    check(train_token and other_token, "--train-token and --other-token are needed with --token")
    anonymous = Client(url, token="")
    check(anonymous.health()["status"] == "ok", "/health needs no token")
    expect_error(401, "unauthorized", anonymous.envs)
    expect_error(401, "unauthorized", Client(url, token="x" * 32).envs)
    train = Client(url, token=train_token)
    key = train.sample(name, count=1, seed=9)[0]["task_key"]
    check("gold" not in train.score_one(name, key, "Answer: 1"), "gold without eval mode")
    expect_error(403, "forbidden", train.score_one, name, key, "Answer: 1", eval=True)
    # Another token's session and snapshot do not exist for it, whatever it tries.
    other = Client(url, token=other_token)
    expect_error(404, "unknown_session", other.session, sid)
    expect_error(404, "unknown_session", other.step, sid, action_index=0)
    expect_error(404, "unknown_session", other.snapshot, sid)
    expect_error(404, "unknown_session", other.close, sid)
    expect_error(404, "unknown_snapshot", other.fork, snapshot, 1)
    expect_error(404, "unknown_snapshot", other.close_snapshot, snapshot)
    mine = other.reset(name, seed=5)["session"]
    expect_error(404, "unknown_session", train.session, mine)
    other.close(mine)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--url", default="http://127.0.0.1:8080")
    ap.add_argument("--token", help="an `eval` token, for a server with tokens")
    ap.add_argument("--train-token", help="a `train` token (with --token)")
    ap.add_argument("--other-token", help="a second token, for the ownership checks (with --token)")
    args = ap.parse_args()
    try:
        run(args.url, args.token, args.train_token, args.other_token)
    except (CheckFailed, GristmillError, OSError) as e:
        print(f"FAILED: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
