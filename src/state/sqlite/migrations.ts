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
  `
  CREATE TABLE inbox (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT NOT NULL UNIQUE,
    source      TEXT NOT NULL,
    change      TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    status      TEXT NOT NULL DEFAULT 'pending',
    last_error  TEXT
  );
  CREATE INDEX inbox_status ON inbox (status, seq);

  CREATE TABLE key_sequencers (
    key        TEXT PRIMARY KEY,
    sequencer  TEXT NOT NULL,
    applied_at INTEGER NOT NULL
  ) WITHOUT ROWID;
  `,
  `
  CREATE TABLE ledger (
    file_id         TEXT PRIMARY KEY,
    key             TEXT NOT NULL,
    status          TEXT NOT NULL,
    records_parsed  INTEGER NOT NULL DEFAULT 0,
    records_sent    INTEGER NOT NULL DEFAULT 0,
    records_failed  INTEGER NOT NULL DEFAULT 0,
    batches_acked   INTEGER NOT NULL DEFAULT 0,
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL,
    delivered_at    INTEGER
  ) WITHOUT ROWID;
  CREATE INDEX ledger_key ON ledger (key, updated_at DESC);
  CREATE INDEX ledger_status ON ledger (status);

  CREATE TABLE idempotency (
    id         TEXT PRIMARY KEY,
    status     TEXT NOT NULL,
    owner      TEXT NOT NULL,
    expires_at INTEGER NOT NULL
  ) WITHOUT ROWID;

  CREATE TABLE breakers (
    name       TEXT PRIMARY KEY,
    state      TEXT NOT NULL,
    failures   INTEGER NOT NULL,
    opened_at  INTEGER NOT NULL,
    probe_until INTEGER NOT NULL,
    version    INTEGER NOT NULL
  ) WITHOUT ROWID;
  `,
  `
  CREATE TABLE bundle_members (
    file_id   TEXT PRIMARY KEY,
    key       TEXT NOT NULL,
    size      INTEGER NOT NULL,
    added_at  INTEGER NOT NULL,
    bundle_id TEXT
  ) WITHOUT ROWID;
  CREATE INDEX bundle_members_by_bundle ON bundle_members (bundle_id, added_at);

  CREATE TABLE bundles (
    id            TEXT PRIMARY KEY,
    status        TEXT NOT NULL,
    files         INTEGER NOT NULL,
    bytes         INTEGER NOT NULL,
    archive_key   TEXT,
    archive_bytes INTEGER,
    attempts      INTEGER NOT NULL,
    last_error    TEXT,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE INDEX bundles_status ON bundles (status, created_at);
  `,
  `
  ALTER TABLE runs DROP COLUMN progress;
  `,
  `
  CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    owner      TEXT NOT NULL,
    expires_at INTEGER NOT NULL
  ) WITHOUT ROWID;
  `,
  `
  CREATE TABLE local_values (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
  ) WITHOUT ROWID;
  `,
  `
  CREATE TABLE dead_letters (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT NOT NULL UNIQUE,
    at          TEXT NOT NULL,
    kind        TEXT NOT NULL,
    file_id     TEXT NOT NULL,
    key         TEXT NOT NULL,
    line        INTEGER,
    batch_no    INTEGER,
    first_line  INTEGER,
    last_line   INTEGER,
    reason      TEXT NOT NULL,
    attempts    INTEGER NOT NULL,
    payload     TEXT NOT NULL,
    payload_ref TEXT,
    redriven_at TEXT
  );
  CREATE INDEX dead_letters_pending ON dead_letters (kind, redriven_at, seq);
  `,
  `
  ALTER TABLE idempotency ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
  `,
  `
  ALTER TABLE leases ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
  `,
  `
  ALTER TABLE inbox ADD COLUMN retry_at INTEGER;
  CREATE INDEX inbox_due ON inbox (status, retry_at);
  `,
  `
  CREATE TABLE webhook_signatures (
    signature  TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE INDEX webhook_signatures_expiry ON webhook_signatures (expires_at);
  `,
  `
  CREATE TABLE unlisted (
    run_id TEXT NOT NULL,
    key    TEXT NOT NULL,
    PRIMARY KEY (run_id, key)
  ) WITHOUT ROWID;
  `,
];
