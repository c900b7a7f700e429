-- Escrow: users whose push failed for a reason of their own (bad data, a 4xx about them).
-- A later run reads them again by id once their retry is due (6 h, 12 h, 24 h, then daily by
-- default); a run that pushes them, or finds nothing to do, releases them.
CREATE TABLE escrow (
    tenant_id       uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    entra_id        text        NOT NULL,
    reason          text        NOT NULL,
    -- runs in which the user failed
    attempts        integer     NOT NULL DEFAULT 1,
    first_failed_at timestamptz NOT NULL DEFAULT now(),
    last_failed_at  timestamptz NOT NULL DEFAULT now(),
    -- the run that failed it last: failing twice in one run is one attempt
    last_run_id     uuid        NOT NULL,
    PRIMARY KEY (tenant_id, entra_id)
);
