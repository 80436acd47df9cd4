-- Tracking (issue 6): the links of each task, and the aggregates the
-- reports of chapters 2 and 3 read, kept up to date as hits are written
-- (no report scans raw hits).

-- A task's tracked links in document order; `link_id` counts from 1 and is
-- what click tokens carry. Written once, when the task's messages are first
-- prepared; clicks redirect only to these.
CREATE TABLE task_links (
    task_id      BIGINT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    link_id      BIGINT NOT NULL,
    url          TEXT NOT NULL,
    click_unique BIGINT NOT NULL DEFAULT 0,
    click_total  BIGINT NOT NULL DEFAULT 0,
    click_first  BIGINT,
    click_last   BIGINT,
    PRIMARY KEY (task_id, link_id)
);

-- One row per task that has had a hit: 3.1's figures. Its task id is the
-- `track_id` of 3.1 and 3.4.
CREATE TABLE task_tracking (
    task_id        BIGINT PRIMARY KEY REFERENCES tasks (id) ON DELETE CASCADE,
    open_unique    BIGINT NOT NULL DEFAULT 0,
    open_total     BIGINT NOT NULL DEFAULT 0,
    open_machine   BIGINT NOT NULL DEFAULT 0,
    open_first     BIGINT,
    open_last      BIGINT,
    click_unique   BIGINT NOT NULL DEFAULT 0,
    click_total    BIGINT NOT NULL DEFAULT 0,
    click_machine  BIGINT NOT NULL DEFAULT 0,
    click_first    BIGINT,
    click_last     BIGINT
);

-- One row per recipient who opened or clicked: 3.2 (`email_id` is its id).
-- `*_human` leave out machine hits (proxy prefetches, scanners, HEAD, hits
-- within QUNFA_SCANNER_WINDOW of delivery); the unique counts use them.
CREATE TABLE track_recipients (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id      BIGINT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    delivery_id  BIGINT NOT NULL UNIQUE,
    address      TEXT NOT NULL,
    browser      TEXT NOT NULL DEFAULT '',
    os           TEXT NOT NULL DEFAULT '',
    device       TEXT NOT NULL DEFAULT '',
    ip_first     TEXT NOT NULL DEFAULT '',
    ip_last      TEXT NOT NULL DEFAULT '',
    open_total   BIGINT NOT NULL DEFAULT 0,
    open_human   BIGINT NOT NULL DEFAULT 0,
    open_first   BIGINT,
    open_last    BIGINT,
    click_total  BIGINT NOT NULL DEFAULT 0,
    click_human  BIGINT NOT NULL DEFAULT 0,
    click_first  BIGINT,
    click_last   BIGINT
);
CREATE INDEX track_recipients_task ON track_recipients (task_id, id);

-- One row per (recipient, link) clicked: 3.3 (`click_id` is its id).
CREATE TABLE track_clicks (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id      BIGINT NOT NULL REFERENCES tasks (id) ON DELETE CASCADE,
    delivery_id  BIGINT NOT NULL,
    link_id      BIGINT NOT NULL,
    address      TEXT NOT NULL,
    click_total  BIGINT NOT NULL DEFAULT 0,
    click_human  BIGINT NOT NULL DEFAULT 0,
    click_first  BIGINT,
    click_last   BIGINT,
    UNIQUE (delivery_id, link_id)
);
CREATE INDEX track_clicks_task ON track_clicks (task_id, link_id, id);

-- Hits per customer, local day and task (the console's charts).
CREATE TABLE track_daily (
    customer_id   BIGINT NOT NULL,
    day           TEXT NOT NULL,
    task_id       BIGINT NOT NULL,
    opens         BIGINT NOT NULL DEFAULT 0,
    opens_machine BIGINT NOT NULL DEFAULT 0,
    clicks        BIGINT NOT NULL DEFAULT 0,
    clicks_machine BIGINT NOT NULL DEFAULT 0,
    unsubscribes  BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (customer_id, day, task_id)
);

-- Complaints (type 5, 2.4 `rubbish`), filled by the bounce issue.
ALTER TABLE daily_stats ADD COLUMN complaint BIGINT NOT NULL DEFAULT 0;

-- 2.3: failed addresses of a customer by the time they were recorded.
CREATE INDEX deliveries_failed ON deliveries (customer_id, finished_at, id) WHERE state = 'failed';

-- A complaint (ARF) about a delivered message is counted once.
ALTER TABLE deliveries ADD COLUMN complained BOOLEAN NOT NULL DEFAULT FALSE;
