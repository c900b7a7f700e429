-- dirsync initial schema: tenants, runs, the mirror of synced users, batch results.

-- One dirsync instance: an Entra tenant paired with a Webex org.
CREATE TABLE tenants (
    id                uuid PRIMARY KEY,
    name              text        NOT NULL,
    -- Entra side
    graph_tenant_id   text        NOT NULL,
    graph_login_url   text        NOT NULL,
    graph_base_url    text        NOT NULL,
    client_id         text        NOT NULL,
    client_secret     text        NOT NULL,
    -- Webex side: the SCIM root up to and including /v2
    scim_base_url     text        NOT NULL,
    scim_token        text        NOT NULL,
    -- policy
    allow_hard_delete boolean     NOT NULL DEFAULT false,
    auto_sync         boolean     NOT NULL DEFAULT true,
    sync_interval_s   integer     NOT NULL DEFAULT 2400 CHECK (sync_interval_s > 0),
    -- state
    status            text        NOT NULL DEFAULT 'NotRun'
                      CHECK (status IN ('NotRun', 'Active', 'Quarantine')),
    delta_link        text,
    next_run_at       timestamptz NOT NULL DEFAULT now(),
    lease_owner       text,
    lease_expires_at  timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now()
);

-- One sync cycle of one tenant.
CREATE TABLE runs (
    id                uuid PRIMARY KEY,
    tenant_id         uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kind              text        NOT NULL CHECK (kind IN ('initial', 'incremental')),
    state             text        NOT NULL DEFAULT 'enumerating'
                      CHECK (state IN ('enumerating', 'draining', 'completed', 'failed')),
    -- the link the walk resumes from (checkpoint) while enumerating
    cursor_link       text,
    batches_published integer     NOT NULL DEFAULT 0,
    -- known once enumeration is over
    total_batches     integer,
    -- the deltaLink Graph returned; committed to the tenant only when every batch is recorded
    new_delta_link    text,
    synced            bigint,
    skipped           bigint,
    failed            bigint,
    error             text,
    started_at        timestamptz NOT NULL DEFAULT now(),
    finished_at       timestamptz
);
CREATE INDEX runs_tenant_started ON runs (tenant_id, started_at DESC);
-- at most one unfinished run per tenant
CREATE UNIQUE INDEX runs_one_open_per_tenant ON runs (tenant_id) WHERE state IN ('enumerating', 'draining');

-- What dirsync last wrote to Webex for each Entra user.
CREATE TABLE mirror_users (
    tenant_id    uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    entra_id     text        NOT NULL,
    webex_id     text        NOT NULL,
    -- xxh3 of the canonical mapped attributes: equal hash means nothing to push
    content_hash bigint      NOT NULL,
    active       boolean     NOT NULL,
    -- the mapped attributes (SCIM path -> value) last pushed, for attribute-level diffs
    attributes   jsonb       NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, entra_id)
);

-- One row per processed batch: the exactly-once record of its outcome.
CREATE TABLE batch_results (
    run_id      uuid        NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq         integer     NOT NULL,
    tenant_id   uuid        NOT NULL,
    synced      integer     NOT NULL,
    skipped     integer     NOT NULL,
    failed      integer     NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (run_id, seq)
);

-- Objects that failed in a batch, with the reason shown to operators.
CREATE TABLE failed_objects (
    run_id    uuid NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
    seq       integer NOT NULL,
    entra_id  text NOT NULL,
    reason    text NOT NULL,
    PRIMARY KEY (run_id, seq, entra_id)
);
