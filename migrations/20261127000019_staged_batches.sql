-- Batches a run has staged for publishing and the broker may not have confirmed yet. A run
-- keeps several on their way at once (each row written before its publish, removed once the
-- broker confirmed it); a coordinator resuming the run republishes the exact bytes of every
-- row whose batch is not recorded, so a sequence number never carries two contents.
-- Replaces runs.pending_seq/pending_batch, which allowed one batch at a time.
CREATE TABLE staged_batches (
    run_id uuid    NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq    integer NOT NULL,
    -- lz4: the JSON of a 200-user batch (about 120 KB) is compressed several times faster
    -- than with the default pglz, and this is written once per Graph page
    batch  bytea   COMPRESSION lz4 NOT NULL,
    PRIMARY KEY (run_id, seq)
);

INSERT INTO staged_batches (run_id, seq, batch)
SELECT id, pending_seq, pending_batch FROM runs
WHERE pending_seq IS NOT NULL AND pending_batch IS NOT NULL;

ALTER TABLE runs DROP COLUMN pending_seq, DROP COLUMN pending_batch;
