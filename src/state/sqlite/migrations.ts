/** Schema versions, applied in order; PRAGMA user_version records how many have run. Never edit a shipped one. */
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE manifest (
    key           TEXT PRIMARY KEY,
    etag          TEXT NOT NULL,
    size          INTEGER NOT NULL,
    last_modified INTEGER NOT NULL,
    version_id    TEXT,
    sequencer     TEXT,
    checksum      TEXT,
    verified_by   TEXT NOT NULL,
    local_path    TEXT NOT NULL,
    synced_at     INTEGER NOT NULL
  ) WITHOUT ROWID;

  CREATE TABLE listing (
    run_id TEXT NOT NULL,
    key    TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
  ) WITHOUT ROWID;

  CREATE TABLE runs (
    id          TEXT PRIMARY KEY,
    prefix      TEXT NOT NULL,
    trigger     TEXT NOT NULL,
    dry_run     INTEGER NOT NULL,
    status      TEXT NOT NULL,
    message     TEXT,
    started_at  INTEGER NOT NULL,
    finished_at INTEGER,
    counts      TEXT NOT NULL,
    progress    TEXT NOT NULL
  );
  CREATE INDEX runs_started ON runs (started_at DESC);

  CREATE TABLE run_items (
    run_id    TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq       INTEGER NOT NULL,
    operation TEXT NOT NULL,
    key       TEXT NOT NULL,
    status    TEXT NOT NULL,
    message   TEXT,
    PRIMARY KEY (run_id, seq)
  ) WITHOUT ROWID;
  `,
];
