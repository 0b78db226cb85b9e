"""A client for the gristmill environment protocol over HTTP (standard library only).

    from gristmill_client import Client
    c = Client("http://127.0.0.1:8080")
    env = c.envs()[0]["name"]
    tasks = c.sample(env, seed=7, count=4)                 # prompts + task keys, no gold
    out = c.score(env, [(t["task_key"], my_model(t["prompt"])) for t in tasks])
    out["results"][0]["rewards"]                           # {"piece_id": reward, ...}

    s = c.reset(env, seed=3)                               # multi-turn episodes
    s = c.step(s["session"], "Action: up")
    snap = c.snapshot(s["session"])
    forks = c.fork(snap["token"], 4)["sessions"]

A server started with tokens needs one: `Client(url, token="...")` (or the environment
variable GRISTMILL_TOKEN) sends `Authorization: Bearer <token>` with every request. Gold
answers (`eval=True`) need a token of role `eval`; sessions and snapshots belong to the
token that created them, and are unknown (404) to any other.

Session ids (`s-<32 hex>`) and snapshot ids (`snap-<32 hex>`, the `token` field of a
snapshot) are opaque random strings: pass them back exactly as received.

Every method returns the decoded JSON body. A 4xx/5xx reply raises GristmillError with
the server's error `code` and `message`. The protocol is documented in the server's
`GET /openapi.json`. Each call opens its own connection, so a Client may be shared
between threads.
"""

import json
import os
import urllib.error
import urllib.parse
import urllib.request

__all__ = ["Client", "GristmillError"]


class GristmillError(Exception):
    """An error reply: HTTP `status`, the server's error `code`, and its `message`.

    `parse` holds the parse outcome for `unparsable_action` errors (else None).
    """

    def __init__(self, status, code, message, parse=None):
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.parse = parse


TOKEN_ENV = "GRISTMILL_TOKEN"


class Client:
    """A connection-per-request client for one server at `url`.

    `token` is the bearer token for a server started with tokens; by default it is read
    from the environment variable GRISTMILL_TOKEN, and no token is sent when that is unset.
    """

    def __init__(self, url="http://127.0.0.1:8080", timeout=30.0, token=None):
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.token = token if token is not None else os.environ.get(TOKEN_ENV) or None

    # -- transport ------------------------------------------------------------------

    def request(self, method, path, body=None, raw=None, headers=None):
        """Sends one request; returns the decoded JSON reply or raises GristmillError.

        `body` is JSON-encoded; `raw` (bytes) is sent as is, for testing the server's
        handling of bad input.
        """
        data = raw
        hdrs = {}
        if self.token:
            hdrs["Authorization"] = "Bearer " + self.token
        hdrs.update(headers or {})
        if body is not None:
            data = json.dumps(body).encode("utf-8")
        if data is not None:
            hdrs.setdefault("Content-Type", "application/json")
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as reply:
                return json.loads(reply.read())
        except urllib.error.HTTPError as e:
            payload = e.read()
            try:
                err = json.loads(payload)["error"]
                raise GristmillError(e.code, err["code"], err["message"], err.get("parse")) from None
            except (ValueError, KeyError, TypeError):
                raise GristmillError(e.code, "http_error", payload.decode("utf-8", "replace")) from None

    # -- environments and tasks -----------------------------------------------------

    def health(self):
        """Status, environment names, live sessions and the limits in force."""
        return self.request("GET", "/health")

    def openapi(self):
        """The server's OpenAPI document."""
        return self.request("GET", "/openapi.json")

    def envs(self):
        """Every environment: spec, channels (piece ids), sources, episode sources."""
        return self.request("GET", "/v1/envs")["envs"]

    def env(self, name):
        """One environment's listing."""
        return self.request("GET", "/v1/envs/" + urllib.parse.quote(name, safe=""))

    def sample(self, env, count, seed=None, step=None, split="train", offset=0):
        """Tasks `offset .. offset + count`: dicts with task_key, prompt, source, family,
        answer_format and hinted. `seed` is required for split="train" and must be None
        for split="eval" (the gold suite)."""
        body = {"env": env, "count": count, "split": split, "offset": offset}
        if seed is not None:
            body["seed"] = seed
        if step is not None:
            body["step"] = step
        return self.request("POST", "/v1/sample", body)["tasks"]

    def score(self, env, items, eval=False):
        """Scores a batch. `items` are (task_key, response) or (task_key, response, sample)
        tuples, or dicts with those keys. Returns {"env", "channels", "results"}; each
        result has rewards (by piece id), reward_vector, parse, and gold when eval=True
        (which needs an `eval` token on a server with tokens)."""
        wire = []
        for item in items:
            if isinstance(item, dict):
                wire.append(item)
                continue
            entry = {"task_key": item[0], "response": item[1]}
            if len(item) > 2 and item[2] is not None:
                entry["sample"] = item[2]
            wire.append(entry)
        return self.request("POST", "/v1/score", {"env": env, "items": wire, "eval": bool(eval)})

    def score_one(self, env, task_key, response, sample=None, eval=False):
        """Scores one response; returns its result."""
        return self.score(env, [(task_key, response, sample)], eval=eval)["results"][0]

    # -- episodes -------------------------------------------------------------------

    def reset(self, env, seed, episode=None, step=0, index=0):
        """Starts an episode (the spec's first [[episode]] unless `episode` names one)."""
        body = {"env": env, "seed": seed, "step": step, "index": index}
        if episode is not None:
            body["episode"] = episode
        return self.request("POST", "/v1/episodes/reset", body)

    def session(self, session):
        """A session's current state."""
        return self.request("GET", "/v1/sessions/" + urllib.parse.quote(session, safe=""))

    def step(self, session, action=None, action_index=None):
        """Takes one action: free text (`action`) or an index (`action_index`)."""
        body = {"action": action} if action_index is None else {"action_index": action_index}
        return self.request("POST", "/v1/sessions/%s/step" % urllib.parse.quote(session, safe=""), body)

    def snapshot(self, session):
        """Stores a copy of the session's state; returns {"token", ...state}, where `token`
        is the snapshot's id (`snap-<32 hex>`)."""
        return self.request("POST", "/v1/sessions/%s/snapshot" % urllib.parse.quote(session, safe=""))

    def fork(self, token, n):
        """Creates `n` sessions in the snapshot's state; returns {"token", "sessions"}."""
        return self.request("POST", "/v1/snapshots/%s/fork" % urllib.parse.quote(token, safe=""), {"n": n})

    def close(self, session):
        """Closes a session."""
        return self.request("DELETE", "/v1/sessions/" + urllib.parse.quote(session, safe=""))

    def close_snapshot(self, token):
        """Drops a snapshot."""
        return self.request("DELETE", "/v1/snapshots/" + urllib.parse.quote(token, safe=""))
