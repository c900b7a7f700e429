-- "Sync user avatars": the avatar pass checks in-scope users' Entra photos and keeps the
-- Webex photo URL (served by dirsync) in step.
ALTER TABLE tenants
    ADD COLUMN sync_avatars boolean NOT NULL DEFAULT false;

-- When each user's photo was last looked at: users never looked at come first, then the
-- longest unchecked, so every run checks the ones most likely to be stale.
CREATE TABLE photo_checks (
    tenant_id  uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    entra_id   text        NOT NULL,
    checked_at timestamptz NOT NULL,
    PRIMARY KEY (tenant_id, entra_id)
);
CREATE INDEX photo_checks_oldest ON photo_checks (tenant_id, checked_at);
