-- Keys of the JSON API. A key is `qk_<lookup>_<secret>`: `lookup` finds the
-- row with one indexed read, only a SHA-256 of the secret is kept (the key
-- itself is shown once, when it is made).
CREATE TABLE api_keys (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id  BIGINT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    lookup       TEXT NOT NULL UNIQUE,
    secret_hash  BLOB NOT NULL,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at   BIGINT
);
CREATE INDEX api_keys_customer ON api_keys (customer_id, id);
