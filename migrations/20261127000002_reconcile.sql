-- Reconciliation of full enumerations and the accidental-deletion guard.

-- Which run (and batch) last saw each mirrored user: after a full enumeration, active rows
-- not stamped by it are users Entra no longer returns.
ALTER TABLE mirror_users
    ADD COLUMN last_seen_run uuid,
    ADD COLUMN last_seen_seq integer;

-- Per-tenant guard: a run that would deactivate or delete more than guard_max_count users,
-- or more than guard_max_percent of the tenant's active mirrored users, waits for an operator.
ALTER TABLE tenants
    ADD COLUMN guard_max_count   integer NOT NULL DEFAULT 500 CHECK (guard_max_count >= 0),
    ADD COLUMN guard_max_percent integer NOT NULL DEFAULT 10
        CHECK (guard_max_percent BETWEEN 0 AND 100);

-- A run may now wait for an operator's decision; it stays open meanwhile.
ALTER TABLE runs DROP CONSTRAINT runs_state_check;
ALTER TABLE runs ADD CONSTRAINT runs_state_check
    CHECK (state IN ('enumerating', 'draining', 'awaiting_approval', 'completed', 'failed'));
DROP INDEX runs_one_open_per_tenant;
CREATE UNIQUE INDEX runs_one_open_per_tenant ON runs (tenant_id)
    WHERE state IN ('enumerating', 'draining', 'awaiting_approval');
ALTER TABLE runs
    -- first batch of the run's full enumeration (a resync can start one mid-run); NULL with
    -- kind 'initial' means 0
    ADD COLUMN full_from_seq   integer,
    -- set once the run's deactivations are decided (the reconciliation ran, the guard judged)
    ADD COLUMN deactivations   integer,
    ADD COLUMN held            boolean NOT NULL DEFAULT false,
    ADD COLUMN hold_reason     text,
    ADD COLUMN decision        text CHECK (decision IN ('approved', 'rejected')),
    ADD COLUMN decided_by      text,
    ADD COLUMN decided_at      timestamptz;

-- The entries of a run that deactivate or delete: Graph tombstones and disables diverted
-- from the pages (with every later entry of the same user), and the reconciliation's gone
-- users. They are pushed after every other batch, once the guard allows it; a rejected
-- run keeps them here as its record of what was not pushed.
CREATE TABLE run_deactivations (
    run_id   uuid    NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    -- md5 of the page URL the entry came from, or 'reconcile'; with idx, makes a re-read
    -- page (a coordinator restarted before its checkpoint) insert nothing twice
    page     text    NOT NULL,
    idx      integer NOT NULL,
    ord      bigint  GENERATED ALWAYS AS IDENTITY,
    entra_id text    NOT NULL,
    -- the dirsync_proto::SourceUser to publish
    entry    jsonb   NOT NULL,
    PRIMARY KEY (run_id, page, idx)
);
CREATE INDEX run_deactivations_user ON run_deactivations (run_id, entra_id);
