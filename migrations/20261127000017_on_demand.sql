-- Provision on demand: each call is a run of its own kind, 'on_demand', so that its one
-- batch has the `runs` row that `batch_results`, `failed_objects` and `escrow` refer to.
-- Such a run never counts as the tenant's open cycle: the one-open-run index, resumption,
-- job status, summaries and progress all leave it out, and it never moves the deltaLink.
ALTER TABLE runs DROP CONSTRAINT runs_kind_check;
ALTER TABLE runs ADD CONSTRAINT runs_kind_check
    CHECK (kind IN ('initial', 'incremental', 'on_demand'));
DROP INDEX runs_one_open_per_tenant;
CREATE UNIQUE INDEX runs_one_open_per_tenant ON runs (tenant_id)
    WHERE state IN ('enumerating', 'draining', 'awaiting_approval') AND kind <> 'on_demand';
-- The on-demand runs of a tenant since a time: what a full enumeration's reconciliation
-- counts as seen (a provisioned user is stamped with its on-demand run).
CREATE INDEX runs_on_demand ON runs (tenant_id, started_at) WHERE kind = 'on_demand';
