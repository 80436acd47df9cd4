-- Templates and their attachments (API.md 5.2–5.7); sender domains with their
-- DKIM keys, and the mailboxes under them (chapter 7). Secrets (mailbox
-- passwords, DKIM private keys) are sealed by the application before they
-- get here.

CREATE TABLE templates (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id  BIGINT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    name         TEXT NOT NULL,
    subject      TEXT NOT NULL,
    content      TEXT NOT NULL,
    text_content TEXT NOT NULL DEFAULT '',
    encoding     TEXT NOT NULL DEFAULT 'base64' CHECK (encoding IN ('base64', 'quoted-printable')),
    content_type TEXT NOT NULL DEFAULT 'html',
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX templates_customer ON templates (customer_id, id);

-- An attachment's bytes are a stored file (0002); deleting either removes the row.
CREATE TABLE template_attachments (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    template_id  BIGINT NOT NULL REFERENCES templates (id) ON DELETE CASCADE,
    file_id      BIGINT NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    file_name    TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size         BIGINT NOT NULL,
    created_at   BIGINT NOT NULL
);
CREATE INDEX template_attachments_template ON template_attachments (template_id, id);
CREATE INDEX template_attachments_file ON template_attachments (file_id);

-- customer_id NULL: a system domain (customer_id 0 in the API), open to every
-- customer. relay_*: 'remote' sending through the customer's own server.
CREATE TABLE sender_domains (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id BIGINT REFERENCES customers (id) ON DELETE CASCADE,
    domain      TEXT NOT NULL UNIQUE,
    relay_host  TEXT,
    relay_port  BIGINT,
    relay_tls   BOOLEAN NOT NULL DEFAULT FALSE,
    created_at  BIGINT NOT NULL
);
CREATE INDEX sender_domains_customer ON sender_domains (customer_id, domain);

CREATE TABLE dkim_keys (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    domain_id   BIGINT NOT NULL REFERENCES sender_domains (id) ON DELETE CASCADE,
    algorithm   TEXT NOT NULL CHECK (algorithm IN ('rsa', 'ed25519')),
    selector    TEXT NOT NULL,
    private_key BLOB NOT NULL,
    public_key  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    UNIQUE (domain_id, selector)
);

-- customer_id NULL: a platform mailbox (customer_id 0), in a system domain.
CREATE TABLE mailboxes (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    domain_id   BIGINT NOT NULL REFERENCES sender_domains (id) ON DELETE CASCADE,
    customer_id BIGINT REFERENCES customers (id) ON DELETE CASCADE,
    local_part  TEXT NOT NULL,
    address     TEXT NOT NULL,
    address_key TEXT NOT NULL UNIQUE,
    password    BLOB NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL
);
CREATE INDEX mailboxes_domain ON mailboxes (domain_id, address_key);
CREATE INDEX mailboxes_customer ON mailboxes (customer_id, address_key);
