-- The mirror's attributes as `json` (the text as the worker wrote it) rather than `jsonb`.
-- Nothing queries inside them but `->>` reads (a display name, a photo path), which `json` has;
-- every batch writes them and the reference pass and incremental runs read them back whole.
-- `jsonb` parsed each value into its binary form on the way in (sorting its keys) and
-- printed it back to text on the way out: in a 300,000-user initial cycle that was about a
-- third of inserting a mirror row and half of reading one (BENCHMARKS.md, item 1). `json`
-- only checks the text going in and returns it as stored.
ALTER TABLE mirror_users ALTER COLUMN attributes TYPE json USING attributes::json;
