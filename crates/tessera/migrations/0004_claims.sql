-- Claims go destination by destination (src/store/sql/claim.rs): pending
-- deliveries by destination and due time, so skipping a saturated
-- destination or finding its newest due delivery is a seek, not a scan of
-- its backlog. It replaces the index by due time alone, which nothing else
-- reads.
CREATE INDEX deliveries_pending_by_destination ON webhook_deliveries (destination, next_attempt_at)
    WHERE status = 'pending';
DROP INDEX deliveries_due;
