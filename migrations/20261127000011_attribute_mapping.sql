-- A tenant's own attribute mapping (dirsync_proto::mapping::MappingRule list, checked when
-- saved); NULL: the default mapping, the seed's attribute table.
ALTER TABLE tenants ADD COLUMN mapping jsonb;
