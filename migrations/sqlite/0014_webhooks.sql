-- Webhooks: a customer's HTTP endpoints and the event types each hears.
-- `events` is the comma-separated list of types; the secret signs each POST
-- and is sealed at rest (bound to the webhook's id).
CREATE TABLE webhooks (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id BIGINT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    url         TEXT NOT NULL,
    events      TEXT NOT NULL,
    secret      BLOB NOT NULL,
    created_at  BIGINT NOT NULL,
    deleted_at  BIGINT
);
CREATE INDEX webhooks_customer ON webhooks (customer_id, id) WHERE deleted_at IS NULL;

-- The outbox: one row per event and webhook, written in the transaction of
-- the outcome that caused it, and delivered at least once. `data` is the
-- event's JSON `data` object.
CREATE TABLE webhook_events (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id      BIGINT NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    customer_id     BIGINT NOT NULL,
    type            TEXT NOT NULL,
    data            TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    lease_until     BIGINT NOT NULL DEFAULT 0,
    attempts        BIGINT NOT NULL DEFAULT 0,
    state           TEXT NOT NULL DEFAULT 'pending'
);
CREATE INDEX webhook_events_due ON webhook_events (next_attempt_at, id) WHERE state = 'pending';

-- Every attempt to deliver an event: the answer's status code or the error.
CREATE TABLE webhook_attempts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id    BIGINT NOT NULL REFERENCES webhook_events (id) ON DELETE CASCADE,
    webhook_id  BIGINT NOT NULL,
    at          BIGINT NOT NULL,
    status_code BIGINT,
    error       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX webhook_attempts_webhook ON webhook_attempts (webhook_id, id);
