-- Mapping options of the Webex side.

-- "Clear attributes": a source value that becomes null removes the Webex value (off: nulls
-- never clear, as Webex documents).
ALTER TABLE tenants ADD COLUMN clear_attributes boolean NOT NULL DEFAULT false;

-- Manager references that could not be applied yet because the manager was not in Webex:
-- the user is provisioned without one, and a later pass applies it.
CREATE TABLE deferred_refs (
    tenant_id  uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    entra_id   text        NOT NULL,
    manager_id text        NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, entra_id)
);
-- "Who waits for this manager": the reference pass joins on it.
CREATE INDEX deferred_refs_manager ON deferred_refs (tenant_id, manager_id);
