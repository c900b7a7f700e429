-- A tenant's own quarantine failure thresholds (`dirsync tenant quarantine-thresholds`):
-- judged from this many failures, more than this percentage failed or more than this many
-- failures quarantine. NULL: the deployment's default (DIRSYNC_QUARANTINE_*).
ALTER TABLE tenants
    ADD COLUMN quarantine_min_failures bigint  CHECK (quarantine_min_failures >= 1),
    ADD COLUMN quarantine_max_percent  integer CHECK (quarantine_max_percent BETWEEN 1 AND 100),
    ADD COLUMN quarantine_max_failures bigint  CHECK (quarantine_max_failures >= 1);
