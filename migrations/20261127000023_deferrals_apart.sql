-- A deferred manager reference moves off the mirror row into a narrow table of its own, and
-- the mirror records the manager as the manager's Entra id instead of its Webex id.
--
-- Why: a user created while its manager was not in Webex yet (about 45 % of an initial
-- cycle, whose users come in no particular order) had its mirror row written twice: once
-- by the create, without the manager, and again by the reference pass, with it. Each second
-- write copied a whole row (about 1 KB of attributes) to a new place, with a new index
-- entry and often a full-page image in the WAL: in a 300,000-user initial cycle the
-- reference pass's upsert was 27 % of PostgreSQL's statement time and 46 % of its WAL,
-- and left the table 45 % larger (BENCHMARKS.md, item 1). Recorded as an Entra id, the
-- manager is known the moment the user is created: the mirror row is right from the first
-- write, and applying the reference later deletes one narrow row here.
--
-- A row here means: the user's manager should be `manager_id` and Webex does not have it
-- yet. `run_id` is the run whose batch last deferred it (the reference pass sends that
-- run's deferrals without checking that the manager is in Webex: their managers were
-- mostly created later in the same run).
CREATE TABLE deferred_refs (
    tenant_id  uuid NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    entra_id   text NOT NULL,
    manager_id text NOT NULL,
    run_id     uuid,
    PRIMARY KEY (tenant_id, entra_id)
);

INSERT INTO deferred_refs (tenant_id, entra_id, manager_id)
SELECT tenant_id, entra_id, deferred_manager FROM mirror_users WHERE deferred_manager <> '';

DROP INDEX mirror_users_deferred;
ALTER TABLE mirror_users DROP COLUMN deferred_manager;

-- The managers recorded so far as Webex ids become the Entra ids of those users. A value
-- that names no mirrored user is left as it is: the next entry of that user patches it.
-- `content_hash` still hashes the old text; the worker then compares the attributes one by
-- one, finds them equal and pushes nothing.
UPDATE mirror_users u
SET attributes = (u.attributes::jsonb || jsonb_build_object(
        'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value', m.entra_id))::json
FROM mirror_users m
WHERE m.tenant_id = u.tenant_id
  AND m.webex_id = u.attributes ->> 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value';
