-- Set-up of an instance: how it was set up, and the operator's decision to block
-- Directory Connector for its org (the seed's "Block" dialog), when it had to be made.
ALTER TABLE tenants
    ADD COLUMN setup_mode text NOT NULL DEFAULT 'custom' CHECK (setup_mode IN ('default', 'custom')),
    ADD COLUMN directory_connector_blocked_at timestamptz,
    ADD COLUMN directory_connector_blocked_by text;
