-- Contact lists, their addresses, unsubscribes, suppressions, import jobs (issue 3).

CREATE TABLE lists (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id BIGINT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    subject     TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    status      TEXT NOT NULL CHECK (status IN ('enabled', 'disabled')),
    -- Kept up to date by every write that adds or removes addresses.
    addr_count  BIGINT NOT NULL DEFAULT 0 CHECK (addr_count >= 0),
    created_at  BIGINT NOT NULL
);
CREATE INDEX lists_customer ON lists (customer_id, id);

-- Bumped by every change to a customer's addresses, so cached page anchors
-- know when they are stale.
ALTER TABLE customers ADD COLUMN address_version BIGINT NOT NULL DEFAULT 0;

-- list_id 0 = unclassified addresses (4.8, 4.9.1).
CREATE TABLE addresses (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id BIGINT NOT NULL,
    list_id     BIGINT NOT NULL,
    address     TEXT NOT NULL,
    -- Duplicates are compared on this: the A-label form, lower case (D-15).
    address_key TEXT NOT NULL,
    fullname    TEXT NOT NULL DEFAULT '',
    var1 TEXT NOT NULL DEFAULT '', var2 TEXT NOT NULL DEFAULT '', var3 TEXT NOT NULL DEFAULT '',
    var4 TEXT NOT NULL DEFAULT '', var5 TEXT NOT NULL DEFAULT '', var6 TEXT NOT NULL DEFAULT '',
    var7 TEXT NOT NULL DEFAULT '', var8 TEXT NOT NULL DEFAULT '', var9 TEXT NOT NULL DEFAULT '',
    var10 TEXT NOT NULL DEFAULT '',
    sex         TEXT NOT NULL DEFAULT '',
    birthday    TEXT NOT NULL DEFAULT '',
    phone       TEXT NOT NULL DEFAULT '',
    area        TEXT NOT NULL DEFAULT '',
    created_at  BIGINT NOT NULL
);
CREATE UNIQUE INDEX addresses_key ON addresses (customer_id, list_id, address_key);
CREATE INDEX addresses_list ON addresses (customer_id, list_id, id);
CREATE INDEX addresses_customer ON addresses (customer_id, id);

-- The unsubscribe log of each list (4.7), oldest first.
CREATE TABLE unsubscribes (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id BIGINT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    list_id     BIGINT NOT NULL,
    address     TEXT NOT NULL,
    at          BIGINT NOT NULL
);
CREATE INDEX unsubscribes_list ON unsubscribes (customer_id, list_id, at, id);

-- Addresses a customer's tasks never send to (H-5).
CREATE TABLE suppressions (
    customer_id BIGINT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    address_key TEXT NOT NULL,
    reason      TEXT NOT NULL CHECK (reason IN ('unsubscribe', 'complaint', 'bounce', 'manual')),
    at          BIGINT NOT NULL,
    PRIMARY KEY (customer_id, address_key)
);

-- File imports (4.9.3), processed by the engine a batch at a time; each batch
-- commits its rows with the job's new offset and counts, so a restart resumes
-- where the last batch ended and never doubles rows or counts.
CREATE TABLE import_jobs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id  BIGINT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    list_id      BIGINT NOT NULL,
    file_id      BIGINT,
    file_name    TEXT NOT NULL,
    encoding     TEXT NOT NULL CHECK (encoding IN ('utf-8', 'gb18030')),
    state        TEXT NOT NULL CHECK (state IN ('queued', 'running', 'done', 'failed')),
    size         BIGINT NOT NULL,
    offset_done  BIGINT NOT NULL DEFAULT 0,
    lines_done   BIGINT NOT NULL DEFAULT 0,
    added        BIGINT NOT NULL DEFAULT 0,
    invalid      BIGINT NOT NULL DEFAULT 0,
    duplicate    BIGINT NOT NULL DEFAULT 0,
    error        TEXT NOT NULL DEFAULT '',
    lease_until  BIGINT NOT NULL DEFAULT 0,
    created_at   BIGINT NOT NULL,
    finished_at  BIGINT
);
CREATE INDEX import_jobs_open ON import_jobs (state, id);
CREATE INDEX import_jobs_customer ON import_jobs (customer_id, id);
