-- Stored files (attachments, import files). With a files dir their bytes are
-- a file named by the id there; without one (PostgreSQL, several nodes) they
-- are kept here in 1 MiB chunks, so no file is ever one huge value.
CREATE TABLE files (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    customer_id BIGINT NOT NULL REFERENCES customers (id) ON DELETE CASCADE,
    size        BIGINT NOT NULL,
    in_db       BOOLEAN NOT NULL,
    created_at  BIGINT NOT NULL
);
CREATE INDEX files_customer ON files (customer_id);

CREATE TABLE file_chunks (
    file_id BIGINT NOT NULL REFERENCES files (id) ON DELETE CASCADE,
    seq     BIGINT NOT NULL,
    data    BLOB NOT NULL,
    PRIMARY KEY (file_id, seq)
);
