-- Entra groups and their direct memberships, as read from Graph groups/delta.

-- One Entra group of a tenant. A deleted group keeps its row (deleted = true): a soft delete
-- can be restored with its members, and the row says the group was seen.
CREATE TABLE groups (
    tenant_id    uuid        NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    group_id     text        NOT NULL,
    display_name text,
    deleted      boolean     NOT NULL DEFAULT false,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, group_id)
);

-- Direct members of a group: users, and groups (nesting). Other object types are not kept.
CREATE TABLE group_members (
    tenant_id   uuid NOT NULL,
    group_id    text NOT NULL,
    member_id   text NOT NULL,
    member_kind text NOT NULL CHECK (member_kind IN ('user', 'group')),
    PRIMARY KEY (tenant_id, group_id, member_id),
    FOREIGN KEY (tenant_id, group_id) REFERENCES groups (tenant_id, group_id) ON DELETE CASCADE
);
-- "Groups of a member": which groups a user is in, and which groups nest a group.
CREATE INDEX group_members_member ON group_members (tenant_id, member_id);
