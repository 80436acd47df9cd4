-- A claim read every claimable delivery of the sending tasks and sorted them
-- all to take the first 256: a 100,000-recipient task cost a sort of what
-- was left of it per batch (most of SQLite's time in a campaign, and
-- quadratic in the task's size). Now each sending task's due deliveries are
-- read in order from an index of its own, and the leases that ran out (a
-- worker died) from another; neither holds a delivery in flight.
DROP INDEX deliveries_claimable;
CREATE INDEX deliveries_due ON deliveries (task_id, next_attempt, id) WHERE state IN ('queued', 'deferred');
CREATE INDEX deliveries_leased ON deliveries (lease_until, id) WHERE state = 'sending';
