-- A deferred manager reference lives on its user's mirror row instead of a table of its
-- own. The worker reads the mirror row of every user of a batch anyway, so it knows which
-- users wait for a manager, and the deferral is set or cleared by the same write that
-- records the user: a batch no longer deletes and inserts `deferred_refs` rows for every
-- user that names a manager (200 index probes a batch, most of them for rows that do not
-- exist). A user not in Webex has nothing to defer: its create carries its manager.
ALTER TABLE mirror_users ADD COLUMN deferred_manager text;

UPDATE mirror_users m SET deferred_manager = d.manager_id
FROM deferred_refs d
WHERE d.tenant_id = m.tenant_id AND d.entra_id = m.entra_id;

DROP TABLE deferred_refs;

-- The reference pass walks the waiting users in id order; only they are in this index.
-- `''` is a settled deferral (the worker writes it when a user's manager is applied or
-- gone), so it stays out of the index like NULL does.
CREATE INDEX mirror_users_deferred ON mirror_users (tenant_id, entra_id)
    WHERE deferred_manager <> '';
