-- Bulk-send tasks and their deliveries (issue 5).

CREATE TABLE tasks (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id    BIGINT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    -- The batch identifier of D-21, fixed at creation.
    ident          TEXT NOT NULL UNIQUE,
    tpl_id         BIGINT NOT NULL,
    list_id        BIGINT NOT NULL,
    acct_type      TEXT NOT NULL CHECK (acct_type IN ('all', 'domain', 'address')),
    acct_domain    TEXT NOT NULL DEFAULT '',
    acct_address   TEXT NOT NULL DEFAULT '',
    sender_name    TEXT NOT NULL DEFAULT '',
    replyto        TEXT NOT NULL DEFAULT '',
    send_qty       BIGINT NOT NULL DEFAULT 0,
    send_qty_start BIGINT NOT NULL DEFAULT 1,
    send_qty_remak BIGINT NOT NULL DEFAULT 0,
    send_time      BIGINT NOT NULL,
    time_start     BIGINT,
    time_end       BIGINT,
    send_status    BIGINT NOT NULL CHECK (send_status IN (-3, -2, -1, 1, 2, 3)),
    track_status   BIGINT NOT NULL DEFAULT 0 CHECK (track_status IN (0, 1, 2)),
    subs_link      BOOLEAN NOT NULL DEFAULT TRUE,
    track_domain   TEXT NOT NULL DEFAULT '',
    addr_type      BIGINT NOT NULL DEFAULT 0,
    -- Credits taken from the service for this task and not yet given back (all-type services).
    reserved       BIGINT NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    -- Paused by the platform because the service became unusable (H-3): resumes by itself.
    service_paused BOOLEAN NOT NULL DEFAULT FALSE,
    recipients     BIGINT NOT NULL DEFAULT 0,
    sent_count     BIGINT NOT NULL DEFAULT 0,
    error_count    BIGINT NOT NULL DEFAULT 0,
    skipped_count  BIGINT NOT NULL DEFAULT 0,
    deleted_at     BIGINT,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);
CREATE INDEX tasks_customer ON tasks (customer_id, id);
CREATE INDEX tasks_due ON tasks (send_status, send_time);

-- One row per recipient, a snapshot of the address at the task's start.
CREATE TABLE deliveries (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id       BIGINT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    customer_id   BIGINT NOT NULL,
    address_id    BIGINT NOT NULL,
    address       TEXT NOT NULL,
    fullname      TEXT NOT NULL DEFAULT '',
    var1 TEXT NOT NULL DEFAULT '', var2 TEXT NOT NULL DEFAULT '', var3 TEXT NOT NULL DEFAULT '',
    var4 TEXT NOT NULL DEFAULT '', var5 TEXT NOT NULL DEFAULT '', var6 TEXT NOT NULL DEFAULT '',
    var7 TEXT NOT NULL DEFAULT '', var8 TEXT NOT NULL DEFAULT '', var9 TEXT NOT NULL DEFAULT '',
    var10 TEXT NOT NULL DEFAULT '',
    -- queued → sending (leased by a worker) → sent | deferred (retry later) | failed | skipped | cancelled
    state         TEXT NOT NULL DEFAULT 'queued'
                  CHECK (state IN ('queued', 'sending', 'sent', 'deferred', 'failed', 'skipped', 'cancelled')),
    failure_class BIGINT,
    attempts      BIGINT NOT NULL DEFAULT 0,
    next_attempt  BIGINT NOT NULL DEFAULT 0,
    lease_until   BIGINT NOT NULL DEFAULT 0,
    sender        TEXT NOT NULL DEFAULT '',
    smtp_code     BIGINT,
    smtp_status   TEXT NOT NULL DEFAULT '',
    smtp_text     TEXT NOT NULL DEFAULT '',
    sent_at       BIGINT,
    finished_at   BIGINT
);
CREATE INDEX deliveries_task ON deliveries (task_id, id);
-- Only the rows a worker may claim: small, and what SKIP LOCKED needs.
CREATE INDEX deliveries_claimable ON deliveries (next_attempt, id) WHERE state IN ('queued', 'deferred', 'sending');

-- Outcomes per customer, local day and task, kept as they land (the reports read these).
CREATE TABLE daily_stats (
    customer_id  BIGINT NOT NULL,
    day          TEXT NOT NULL,
    task_id      BIGINT NOT NULL,
    sent         BIGINT NOT NULL DEFAULT 0,
    failed       BIGINT NOT NULL DEFAULT 0,
    not_exist    BIGINT NOT NULL DEFAULT 0,
    over_quota   BIGINT NOT NULL DEFAULT 0,
    user_reject  BIGINT NOT NULL DEFAULT 0,
    invalid_addr BIGINT NOT NULL DEFAULT 0,
    format_error BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (customer_id, day, task_id)
);
