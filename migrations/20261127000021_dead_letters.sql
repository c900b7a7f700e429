-- Poison batches: what the batch queue and the priority lane dead-lettered (a body no worker
-- could decode, a batch that can never succeed, or one handed back past the delivery limit),
-- kept for operators to see and re-drive. The coordinator that takes a dead letter records
-- its batch as failed (a `batch_results` row with every object failed) so the run completes.
CREATE TABLE dead_letters (
    id               uuid        PRIMARY KEY,
    -- attribution, from the body or, for a body nobody can decode, from the headers the
    -- coordinator stamped at publish time; NULL when neither says
    tenant_id        uuid,
    run_id           uuid,
    seq              integer,
    -- the queue it died in and why (x-death: rejected, delivery_limit, ...)
    queue            text        NOT NULL,
    reason           text        NOT NULL,
    -- the broker's x-delivery-count when the message carried one
    delivery_count   integer,
    -- why this coordinator could not decode the body (NULL: decodable)
    decode_error     text,
    -- the objects counted failed for it
    users            integer     NOT NULL DEFAULT 0,
    groups           integer     NOT NULL DEFAULT 0,
    -- whether the failed result row of its batch was written for it (false: the batch was
    -- recorded already, or its run is unknown)
    recorded_failed  boolean     NOT NULL DEFAULT false,
    headers          jsonb       NOT NULL,
    body             bytea       COMPRESSION lz4 NOT NULL,
    -- held: waiting for an operator; redriving: its failed row removed, being republished;
    -- redriven: republished to the batch queue; resolved: the re-driven batch was recorded
    state            text        NOT NULL DEFAULT 'held'
                     CHECK (state IN ('held', 'redriving', 'redriven', 'resolved')),
    dead_lettered_at timestamptz NOT NULL DEFAULT now(),
    redriven_at      timestamptz,
    redriven_by      text
);
-- One open dead letter per batch: the broker's at-least-once dead-lettering may hand the
-- same message over twice, and a batch republished on resume may die twice.
CREATE UNIQUE INDEX dead_letters_one_open_per_batch ON dead_letters (run_id, seq)
    WHERE state IN ('held', 'redriving') AND run_id IS NOT NULL AND seq IS NOT NULL;
CREATE INDEX dead_letters_by_time ON dead_letters (dead_lettered_at DESC);
CREATE INDEX dead_letters_by_tenant ON dead_letters (tenant_id, dead_lettered_at DESC);
CREATE INDEX dead_letters_redriven ON dead_letters (redriven_at) WHERE state = 'redriven';
