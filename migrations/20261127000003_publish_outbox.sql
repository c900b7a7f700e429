-- The batch a coordinator is about to publish, kept until the next page is staged or the
-- enumeration ends. A coordinator that dies between publishing and checkpointing would
-- otherwise re-read the page on resume and might publish different content under the same
-- sequence number; with this, it republishes exactly what it may already have published.
ALTER TABLE runs
    ADD COLUMN pending_seq   integer,
    ADD COLUMN pending_batch bytea;
