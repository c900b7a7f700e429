-- Scope (the seed's Users and Groups tabs) and the groups walk of a run.

ALTER TABLE tenants
    -- "Select all users": every user of the tenant is in scope; the lists below are ignored
    ADD COLUMN scope_all          boolean NOT NULL DEFAULT true,
    -- chosen users (Entra object ids)
    ADD COLUMN scope_users        text[]  NOT NULL DEFAULT '{}',
    -- chosen groups (Entra object ids): their direct user members are in scope
    ADD COLUMN scope_groups       text[]  NOT NULL DEFAULT '{}',
    -- "Sync children groups": members of groups nested in the chosen ones, at any depth
    ADD COLUMN scope_nested       boolean NOT NULL DEFAULT false,
    -- "Sync group objects": the chosen groups themselves go to Webex
    ADD COLUMN sync_group_objects boolean NOT NULL DEFAULT false,
    -- "Identify and sync room objects"
    ADD COLUMN sync_rooms         boolean NOT NULL DEFAULT false,
    -- the groups/delta deltaLink, committed with the users' one when a run completes
    ADD COLUMN groups_delta_link  text,
    -- the next run walks all users from scratch: the scope widened in a way no delta shows
    -- (back to all users, rooms turned on); cleared when that run is created
    ADD COLUMN full_walk_requested boolean NOT NULL DEFAULT false;

-- The users in scope of a tenant that does not sync all users, as of its latest run's groups
-- walk. Replaced in the same transaction as the memberships it is computed from.
CREATE TABLE scope_members (
    tenant_id uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    entra_id  text NOT NULL,
    PRIMARY KEY (tenant_id, entra_id)
);

ALTER TABLE runs
    -- the run's groups walk is applied (memberships and scope are current); the new
    -- groups deltaLink waits here for the run to complete
    ADD COLUMN scope_done        boolean NOT NULL DEFAULT false,
    ADD COLUMN new_groups_delta_link text;

-- Users who entered the scope in a run through membership alone: read from Graph by id
-- ($filter, 50 at a time) and published as batches of the run. `seq` is the batch that
-- carried them (NULL until published), so a resumed run fetches only the rest.
CREATE TABLE run_entering (
    run_id   uuid    NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    entra_id text    NOT NULL,
    seq      integer,
    PRIMARY KEY (run_id, entra_id)
);

-- The walk a diverted entry came from (the batch number where that walk began; NULL for the
-- reconciliation's rows): after a resync, only the new walk's entries count as "seen".
ALTER TABLE run_deactivations ADD COLUMN walk integer;
