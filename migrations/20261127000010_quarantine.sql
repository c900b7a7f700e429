-- Tenant quarantine: at once on refused credentials (Graph or Webex), or when a run fails too
-- many objects. A quarantined tenant's cycles back off (the interval doubling, up to daily);
-- a clean run lifts it; after 4 weeks auto-sync is turned off.
ALTER TABLE tenants
    ADD COLUMN quarantine_kind       text CHECK (quarantine_kind IN ('credentials', 'failures')),
    ADD COLUMN quarantine_reason     text,
    ADD COLUMN quarantined_since     timestamptz,
    -- last time a credential refusal was seen: a run attempt that started before it stops
    ADD COLUMN quarantine_updated_at timestamptz,
    ADD COLUMN quarantine_backoff_s  integer;
