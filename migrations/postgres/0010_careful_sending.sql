-- Sending like a careful sender: the reputation guard's counts and pauses,
-- and daily caps (with warm-up) of sending domains and mailboxes.

-- Hard failures (not_exist, invalid_addr) and complaints of each task.
ALTER TABLE tasks ADD COLUMN hard_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN complaint_count BIGINT NOT NULL DEFAULT 0;
-- The counts at the task's last resume: the guard counts from there.
ALTER TABLE tasks ADD COLUMN guard_outcomes BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN guard_hard BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN guard_complaints BIGINT NOT NULL DEFAULT 0;
-- Why a guard paused the task ('' none, 'bounce_guard', 'complaint_guard'),
-- with the figures it saw and the limit in force.
ALTER TABLE tasks ADD COLUMN pause_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE tasks ADD COLUMN pause_outcomes BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN pause_count BIGINT NOT NULL DEFAULT 0;
ALTER TABLE tasks ADD COLUMN pause_limit TEXT NOT NULL DEFAULT '';
ALTER TABLE tasks ADD COLUMN paused_at BIGINT;
UPDATE tasks SET
    hard_count = (SELECT COALESCE(SUM(d.not_exist + d.invalid_addr), 0) FROM daily_stats d WHERE d.task_id = tasks.id),
    complaint_count = (SELECT COALESCE(SUM(d.complaint), 0) FROM daily_stats d WHERE d.task_id = tasks.id);

-- A sending domain's daily cap: a fixed one, a warm-up, or both (the lower
-- one holds). The warm-up's cap is warmup_start on warmup_from (a local
-- day) and grows by warmup_growth percent a day for warmup_days days.
CREATE TABLE domain_caps (
    domain_id     BIGINT PRIMARY KEY REFERENCES sender_domains (id) ON DELETE CASCADE,
    per_day       BIGINT CHECK (per_day >= 0),
    warmup_start  BIGINT CHECK (warmup_start >= 1),
    warmup_days   BIGINT CHECK (warmup_days >= 1),
    warmup_growth DOUBLE PRECISION,
    warmup_from   TEXT
);

CREATE TABLE mailbox_caps (
    mailbox_id BIGINT PRIMARY KEY REFERENCES mailboxes (id) ON DELETE CASCADE,
    per_day    BIGINT NOT NULL CHECK (per_day >= 0)
);

-- Messages handed to SMTP from a capped domain or mailbox, per local day.
CREATE TABLE cap_usage (
    scope     TEXT NOT NULL CHECK (scope IN ('domain', 'mailbox')),
    target_id BIGINT NOT NULL,
    day       TEXT NOT NULL,
    used      BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (scope, target_id, day)
);

-- Per-destination limits held for every process on this database
-- (delivery::throttle): each group's next start time (tat) and when a process
-- last asked for its connection slots, and the slots leased to processes.
-- Times are the database's epoch seconds. Coordination only, rewritten
-- many times a second: unlogged (a crash of the database voids the leases,
-- and every process takes its slots again).
CREATE UNLOGGED TABLE dest_groups (
    grp       TEXT PRIMARY KEY,
    tat       DOUBLE PRECISION NOT NULL DEFAULT 0,
    -- The last booking came after a quiet second: its starts went at once.
    quiet     BOOLEAN NOT NULL DEFAULT TRUE,
    wanted_at DOUBLE PRECISION NOT NULL DEFAULT 0
);

CREATE UNLOGGED TABLE dest_slots (
    grp        TEXT NOT NULL,
    slot       INTEGER NOT NULL,
    holder     TEXT NOT NULL,
    expires_at DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (grp, slot)
);
CREATE INDEX dest_slots_holder ON dest_slots (holder);
