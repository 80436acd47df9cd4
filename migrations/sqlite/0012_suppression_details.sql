-- What a customer reads about a suppression: the failure class of the bounce
-- that caused it ('not_exist', 'invalid_addr'), empty for the other reasons.
ALTER TABLE suppressions ADD COLUMN detail TEXT NOT NULL DEFAULT '';
CREATE INDEX suppressions_by_time ON suppressions (customer_id, at, address_key);

-- Suppressions a customer lifted, kept for the record: who was let through
-- again, when, and the reason given.
CREATE TABLE suppression_lifts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id BIGINT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    address_key TEXT NOT NULL,
    reason      TEXT NOT NULL,
    detail      TEXT NOT NULL,
    suppressed_at BIGINT NOT NULL,
    note        TEXT NOT NULL,
    at          BIGINT NOT NULL
);
CREATE INDEX suppression_lifts_customer ON suppression_lifts (customer_id, at);
