CREATE TABLE specs (
    hash          TEXT NOT NULL PRIMARY KEY CHECK (hash <> ''),
    name          TEXT NOT NULL,
    text          TEXT NOT NULL,
    created_at_ms INTEGER NOT NULL
) STRICT;

CREATE TABLE runs (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    kind          TEXT NOT NULL CHECK (kind <> ''),
    spec_hash     TEXT NOT NULL REFERENCES specs (hash),
    seed          INTEGER NOT NULL,
    steps         INTEGER NOT NULL CHECK (steps >= 0),
    steps_done    INTEGER NOT NULL DEFAULT 0 CHECK (steps_done >= 0),
    threads       INTEGER NOT NULL CHECK (threads >= 0),
    status        TEXT NOT NULL DEFAULT 'running'
                  CHECK (status IN ('running', 'finished', 'failed', 'stopped')),
    digest        TEXT CHECK (digest IS NULL OR (digest <> '' AND digest NOT GLOB '*[^0-9a-f]*')),
    summary       TEXT CHECK (summary IS NULL OR json_valid(summary)),
    error         TEXT,
    config        TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(config)),
    parent_id     INTEGER REFERENCES runs (id),
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    CHECK (status <> 'finished' OR digest IS NOT NULL),
    CHECK (status <> 'failed' OR error IS NOT NULL)
) STRICT;
CREATE INDEX runs_by_spec ON runs (spec_hash);
CREATE INDEX runs_by_parent ON runs (parent_id);

CREATE TABLE step_metrics (
    run_id INTEGER NOT NULL REFERENCES runs (id),
    step   INTEGER NOT NULL CHECK (step >= 0),
    name   TEXT NOT NULL CHECK (name <> ''),
    bits   INTEGER NOT NULL,
    value  REAL NOT NULL,
    PRIMARY KEY (run_id, step, name)
) STRICT, WITHOUT ROWID;

CREATE TABLE piece_summaries (
    run_id        INTEGER NOT NULL REFERENCES runs (id),
    piece_id      TEXT NOT NULL CHECK (piece_id <> ''),
    kind          TEXT NOT NULL,
    summary       TEXT NOT NULL CHECK (json_valid(summary)),
    updated_at_ms INTEGER NOT NULL,
    PRIMARY KEY (run_id, piece_id)
) STRICT;

CREATE TABLE checkpoints (
    run_id        INTEGER NOT NULL REFERENCES runs (id),
    step          INTEGER NOT NULL CHECK (step >= 0),
    bytes         BLOB NOT NULL,
    digest        TEXT NOT NULL CHECK (digest <> '' AND digest NOT GLOB '*[^0-9a-f]*'),
    created_at_ms INTEGER NOT NULL,
    PRIMARY KEY (run_id, step)
) STRICT;

CREATE TABLE results (
    run_id        INTEGER NOT NULL REFERENCES runs (id),
    name          TEXT NOT NULL CHECK (name <> ''),
    body          TEXT NOT NULL CHECK (json_valid(body)),
    created_at_ms INTEGER NOT NULL,
    updated_at_ms INTEGER NOT NULL,
    PRIMARY KEY (run_id, name)
) STRICT;

CREATE TABLE artifacts (
    hash          TEXT NOT NULL PRIMARY KEY CHECK (hash <> ''),
    kind          TEXT NOT NULL CHECK (kind <> ''),
    name          TEXT NOT NULL,
    body          TEXT NOT NULL CHECK (json_valid(body)),
    source_run_id INTEGER REFERENCES runs (id),
    created_at_ms INTEGER NOT NULL
) STRICT;
CREATE INDEX artifacts_by_kind ON artifacts (kind, created_at_ms);
