-- Dry runs: what a sync would do, computed by the fleet without writing to Webex or to the
-- sync's own state. The report is the seed's CSV, one row per object, streamed from here.

CREATE TABLE dry_runs (
    id                uuid        PRIMARY KEY,
    tenant_id         uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    -- requested (by an operator) → running (claimed by a coordinator) → completed | failed
    status            text        NOT NULL DEFAULT 'requested'
                                  CHECK (status IN ('requested', 'running', 'completed', 'failed')),
    requested_by      text,
    owner             text,
    error             text,
    requested_at      timestamptz NOT NULL DEFAULT now(),
    started_at        timestamptz,
    finished_at       timestamptz,
    -- the coordinator doing the dry run touches this as it goes: a running dry run whose
    -- heartbeat is old was abandoned (its coordinator stopped)
    heartbeat_at      timestamptz NOT NULL DEFAULT now(),
    pages             integer     NOT NULL DEFAULT 0,
    users_read        bigint      NOT NULL DEFAULT 0,
    batches_published integer     NOT NULL DEFAULT 0,
    enumeration_done  boolean     NOT NULL DEFAULT false
);
CREATE INDEX dry_runs_by_tenant ON dry_runs (tenant_id, requested_at DESC);
CREATE INDEX dry_runs_requested ON dry_runs (requested_at) WHERE status = 'requested';

-- One row per batch a worker reported: the idempotency key of a dry run's batch.
CREATE TABLE dry_run_batches (
    dry_run_id uuid    NOT NULL REFERENCES dry_runs (id) ON DELETE CASCADE,
    seq        integer NOT NULL,
    reported   integer NOT NULL,
    skipped    integer NOT NULL,
    failed     integer NOT NULL,
    PRIMARY KEY (dry_run_id, seq)
);

-- The report: the seed's columns, one row per object.
CREATE TABLE dry_run_rows (
    dry_run_id  uuid    NOT NULL REFERENCES dry_runs (id) ON DELETE CASCADE,
    object_type text    NOT NULL CHECK (object_type IN ('user', 'group')),
    entra_id    text    NOT NULL,
    action      text    NOT NULL CHECK (action IN ('Matched', 'Add', 'Update', 'Deactivate')),
    azure_name  text,
    webex_name  text,
    reason      text    NOT NULL,
    -- the sync would try and fail (the reason says why)
    fails       boolean NOT NULL DEFAULT false,
    PRIMARY KEY (dry_run_id, object_type, entra_id)
);

-- The users a filtered scope holds for one dry run (the sync's own `scope_members` is the
-- last run's, and a dry run does not change it).
CREATE TABLE dry_run_scope (
    dry_run_id uuid NOT NULL REFERENCES dry_runs (id) ON DELETE CASCADE,
    entra_id   text NOT NULL,
    PRIMARY KEY (dry_run_id, entra_id)
);
