-- "Sync group objects": what dirsync last wrote to Webex for each chosen Entra group, and the
-- group outcomes of batches and runs.

CREATE TABLE mirror_groups (
    tenant_id    uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    entra_id     text        NOT NULL,
    webex_id     text        NOT NULL,
    display_name text        NOT NULL,
    -- Webex ids of the members dirsync put in the group
    members      text[]      NOT NULL,
    -- Entra members that were not in Webex yet: the group is "to be synced" while > 0
    pending      integer     NOT NULL DEFAULT 0,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, entra_id)
);

ALTER TABLE batch_results
    ADD COLUMN groups_synced  integer NOT NULL DEFAULT 0,
    ADD COLUMN groups_pending integer NOT NULL DEFAULT 0,
    ADD COLUMN groups_failed  integer NOT NULL DEFAULT 0;

ALTER TABLE runs
    ADD COLUMN groups_synced  bigint,
    ADD COLUMN groups_pending bigint,
    ADD COLUMN groups_failed  bigint;
