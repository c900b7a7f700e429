-- "Save and authorize later": a tenant that is configured but may not be synced yet.
-- "Sync now": a one-off request honoured even when auto-sync is off.
ALTER TABLE tenants
    ADD COLUMN authorized     boolean NOT NULL DEFAULT true,
    ADD COLUMN sync_requested boolean NOT NULL DEFAULT false;
