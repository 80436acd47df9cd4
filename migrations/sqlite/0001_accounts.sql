-- Accounts, services and credits (issue 2). Instants are UTC seconds;
-- dates are local dates in QUNFA_TIMEZONE written YYYY-MM-DD.

CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Agents and managers: the non-customer accounts of API.md 8.1.
CREATE TABLE operators (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    role          TEXT NOT NULL CHECK (role IN ('agent', 'manager')),
    username      TEXT NOT NULL,
    username_key  TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    BIGINT NOT NULL,
    UNIQUE (role, username_key)
);

CREATE TABLE customers (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    username      TEXT NOT NULL,
    username_key  TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    company       TEXT NOT NULL DEFAULT '',
    contact       TEXT NOT NULL DEFAULT '',
    phone         TEXT NOT NULL DEFAULT '',
    mobile        TEXT NOT NULL DEFAULT '',
    email         TEXT NOT NULL DEFAULT '',
    im            TEXT NOT NULL DEFAULT '',
    address       TEXT NOT NULL DEFAULT '',
    agent_id      BIGINT REFERENCES operators (id),
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    BIGINT NOT NULL
);
CREATE INDEX customers_agent ON customers (agent_id);

-- One bulk-send service per customer (API.md 1.2).
CREATE TABLE services (
    customer_id   BIGINT PRIMARY KEY REFERENCES customers (id) ON DELETE CASCADE,
    status        TEXT NOT NULL DEFAULT 'enabled' CHECK (status IN ('enabled', 'disabled')),
    service_type  TEXT NOT NULL DEFAULT 'all' CHECK (service_type IN ('all', 'day')),
    send_type     TEXT NOT NULL DEFAULT 'local' CHECK (send_type IN ('local', 'remote')),
    begin_date    TEXT,
    end_date      TEXT,
    qty_available BIGINT NOT NULL DEFAULT 0 CHECK (qty_available >= 0),
    qty_buytotal  BIGINT NOT NULL DEFAULT 0 CHECK (qty_buytotal >= 0),
    -- service_type=day: the local date qty_available belongs to.
    day_of        TEXT
);

-- Every change to a customer's credits is one row.
CREATE TABLE credit_ledger (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id BIGINT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    at          BIGINT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('buy', 'set', 'pre_deduct', 'charge', 'refund', 'day_reset')),
    amount      BIGINT NOT NULL,
    balance     BIGINT NOT NULL CHECK (balance >= 0),
    task_id     BIGINT,
    reason      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX credit_ledger_customer_at ON credit_ledger (customer_id, at);

-- Console sessions (issue 7); the token itself is never stored.
CREATE TABLE sessions (
    token_hash  TEXT PRIMARY KEY,
    role        TEXT NOT NULL CHECK (role IN ('customer', 'agent', 'manager')),
    account_id  BIGINT NOT NULL,
    csrf        TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX sessions_expires ON sessions (expires_at);
